"""The authentication backend of every password login (docs/architecture.md, "Rate limits").

`django.contrib.auth.authenticate()` is what all three password logins call: the token endpoint
(simplejwt's serializer), the admin's login form and the browsable API's login view (Django's
`LoginView`). Wrapping ModelBackend here puts the login rate limit under all three, written once,
with no hook in any view. Django's `authenticate()` lets any exception but PermissionDenied through,
so the RateLimited raised here reaches the view: REST maps it to 429 problem JSON, and
`config.middleware.RateLimitedMiddleware` answers it for the form logins.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.http import HttpRequest

from core import ratelimit


class RateLimitedModelBackend(ModelBackend):
    """ModelBackend, with `core.ratelimit.check_login` before the password is checked. Calls without a
    request (a management command, a shell) are not counted: no client sent them."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if request is not None:
            ratelimit.check_login(request, username if username is not None else kwargs.get(self._username_field()))
        return super().authenticate(request, username=username, password=password, **kwargs)

    async def aauthenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        """ModelBackend's async twin does not go through `authenticate`: route it there, counted too."""
        return await sync_to_async(self.authenticate)(request, username=username, password=password, **kwargs)

    @staticmethod
    def _username_field() -> str:
        return str(get_user_model().USERNAME_FIELD)
