"""Content negotiation: DRF's, its answer remembered for the Accept headers clients keep sending."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# At most this many answers are kept; past it the memo starts again empty. Accept headers are client
# input, so the memo must stay small whatever clients send; real clients send a handful of values.
MAX_ANSWERS = 256
# Longer headers are negotiated every time (and never kept).
MAX_REMEMBERED_ACCEPT = 256


class RememberedNegotiation(DefaultContentNegotiation):
    """DRF's `DefaultContentNegotiation`, which parses `Accept` and matches it against every renderer on
    each request (a tenth of a cached GET's time). Its answer depends only on the `Accept` header, the
    format asked for (`?format=` or a suffix) and the view's renderer classes, so it is remembered per
    process under exactly those: the next request with the same three gets the same renderer (this
    request's instance of that class) and media type. Refusals (406, 404 for an unknown format) are
    not remembered: they are negotiated, and raised, every time."""

    _answers: dict[tuple[str | None, str | None, tuple[type[BaseRenderer], ...]], tuple[int, str]] = {}

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        meta = request._request.META  # not request.META: DRF finds that only after an AttributeError
        accept = meta.get("HTTP_ACCEPT")
        if accept is not None and len(accept) > MAX_REMEMBERED_ACCEPT:
            return super().select_renderer(request, renderers, format_suffix)
        # Without a query string there is no ?format=, and no QueryDict needs to be made to say so.
        query = meta.get("QUERY_STRING")
        key = (
            accept,
            format_suffix or (request.query_params.get(self.settings.URL_FORMAT_OVERRIDE) if query else None),
            tuple(map(type, renderers)),
        )
        answer = self._answers.get(key)
        if answer is None:
            renderer, media_type = super().select_renderer(request, renderers, format_suffix)
            answer = (next(i for i, candidate in enumerate(renderers) if candidate is renderer), media_type)
            if len(self._answers) >= MAX_ANSWERS:
                type(self)._answers = {}
            self._answers[key] = answer
        return renderers[answer[0]], answer[1]
