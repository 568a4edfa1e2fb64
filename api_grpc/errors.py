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
from dataclasses import dataclass
from typing import NoReturn

import grpc

from api_grpc.context import current_call
from core import errors

logger = logging.getLogger(__name__)

# Domain names of list parameters -> the request fields that carry them.
_FIELD_NAMES = {"limit": "page_size", "cursor": "page_token"}


@dataclass(frozen=True, slots=True)
class Failure:
    """How a call ends for an exception: its status, its safe message and its trailing metadata."""

    status: grpc.StatusCode
    message: str
    trailers: tuple[tuple[str, str], ...]


def describe(exc: BaseException, method: str) -> Failure:
    """The status, message and trailers `exc` stands for; logs what is unexpected. SyncTasks sends the
    same description of a failed command in a message, so a command fails exactly as its unary call."""
    app_error = errors.translate(exc)
    if app_error is None:
        logger.error("unexpected error in %s", method, exc_info=exc)
        app_error = errors.InternalError()
    status_name = errors.outcome_of(app_error).grpc_status
    if status_name is None:  # an error of the HTTP transport cannot come from a servicer: a bug
        logger.error("%s raised in %s, where gRPC has no status for it", type(app_error).__name__, method)
    if status_name is None or status_name == "INTERNAL":
        app_error, status_name = errors.InternalError(), "INTERNAL"
    trailers = [("taskhub-error-code", app_error.code)]
    if fields := app_error.extra.get("fields"):
        renamed = {_FIELD_NAMES.get(name, name): messages for name, messages in fields.items()}
        trailers.append(("taskhub-field-errors", json.dumps(renamed)))
    if "current_version" in app_error.extra:
        trailers.append(("taskhub-current-version", str(app_error.extra["current_version"])))
    if isinstance(app_error, errors.RateLimited):
        trailers.append(("retry-after", str(app_error.retry_after)))
    return Failure(grpc.StatusCode[status_name], app_error.message, tuple(trailers))


def abort_with(exc: BaseException, context: grpc.ServicerContext) -> NoReturn:
    """End the call with the status that `exc` stands for."""
    call = current_call()
    failure = describe(exc, call.method)
    for key, value in failure.trailers:
        call.add_trailer(context, key, value)
    _abort(context, failure.status, failure.message)


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)  # raises; grpc's stubs do not say so
    raise AssertionError("unreachable")
