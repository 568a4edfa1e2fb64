"""DRF hook for `core.ratelimit`: one throttle class, scopes and rates from RATE_LIMITS."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core import ratelimit


class RateLimitThrottle(BaseThrottle):
    """Per user when authenticated, per client IP otherwise; a view may name a stricter scope
    (`rate_limit_scope = "token"`). The decision is kept on the request for the RateLimit headers."""

    def allow_request(self, request: Request, view: Any) -> bool:
        decision = getattr(request._request, "rate_limit", None)
        if decision is None:  # one hit per request, however often DRF asks
            scope = getattr(view, "rate_limit_scope", None)
            if not ratelimit.enabled():  # nothing is counted: not even the address is needed
                decision = ratelimit.ALLOW_ALL
            else:
                meta = request._request.META
                ip = ratelimit.client_ip(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"))
                if scope:
                    decision = ratelimit.hit(scope, f"ip:{ip}")
                else:
                    decision = ratelimit.hit_caller(request.user.pk if request.user.is_authenticated else None, ip)
            request._request.rate_limit = decision  # type: ignore[attr-defined]
            request._request.rate_limit_scope = scope  # type: ignore[attr-defined]  # see core.ratelimit.check_login
        self.decision = decision
        return decision.allowed

    def wait(self) -> float:
        return float(self.decision.retry_after)
