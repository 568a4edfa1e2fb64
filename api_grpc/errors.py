"""gRPC error mapping: the status of each `core.errors` code comes from `core.errors.OUTCOMES` (docs/api/errors.md);
never UNKNOWN.

The status message is the error's safe message. Trailing metadata carries `taskhub-error-code`
(the protocol-neutral code), `taskhub-field-errors` (JSON: field -> messages) for invalid input,
`taskhub-current-version` for a stale version and `retry-after` for rate limits. Anything
unexpected is logged with its traceback and answered INTERNAL with a generic message.
"""

from __future__ import annotations

import json
import logging
from typing import NoReturn

import grpc

from api_grpc.context import current_call
from core import errors

logger = logging.getLogger(__name__)

# Domain names of list parameters -> the request fields that carry them.
_FIELD_NAMES = {"limit": "page_size", "cursor": "page_token"}


def abort_with(exc: BaseException, context: grpc.ServicerContext) -> NoReturn:
    """End the call with the status that `exc` stands for."""
    call = current_call()
    app_error = errors.translate(exc)
    if app_error is None:
        logger.error("unexpected error in %s", call.method, exc_info=exc)
        app_error = errors.InternalError()
    status_name = errors.outcome_of(app_error).grpc_status
    if status_name is None:  # an error of the HTTP transport cannot come from a servicer: a bug
        logger.error("%s raised in %s, where gRPC has no status for it", type(app_error).__name__, call.method)
    if status_name is None or status_name == "INTERNAL":
        app_error, status_name = errors.InternalError(), "INTERNAL"
    call.add_trailer(context, "taskhub-error-code", app_error.code)
    if fields := app_error.extra.get("fields"):
        renamed = {_FIELD_NAMES.get(name, name): messages for name, messages in fields.items()}
        call.add_trailer(context, "taskhub-field-errors", json.dumps(renamed))
    if "current_version" in app_error.extra:
        call.add_trailer(context, "taskhub-current-version", str(app_error.extra["current_version"]))
    if isinstance(app_error, errors.RateLimited):
        call.add_trailer(context, "retry-after", str(app_error.retry_after))
    _abort(context, grpc.StatusCode[status_name], app_error.message)


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)  # raises; grpc's stubs do not say so
    raise AssertionError("unreachable")
