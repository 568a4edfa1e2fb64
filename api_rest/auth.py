"""DRF hooks for `core.auth`: the Authorization / X-API-Key headers and the token endpoints' serializers."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from core.auth import actor_from_user, authenticate_credentials, bearer_token, token_claims
from core.errors import NotAuthenticated
from core.types import Actor


def actor_of(request: Request) -> Actor:
    """The authenticated Actor of a request (every authentication class here yields one)."""
    user = request.user
    if not isinstance(user, Actor):
        raise exceptions.NotAuthenticated()
    return user


class CredentialsAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <access token>` or `X-API-Key: th_<prefix>_<secret>`, by the one rule of
    every protocol (`core.auth.authenticate_credentials`): any other `Authorization` value, and both
    headers at once, are refused, never passed over to the other credential or the session."""

    def authenticate(self, request: Request) -> tuple[Actor, str | None] | None:
        meta = request._request.META  # not request.META: DRF finds that only after an AttributeError
        authorization = meta.get("HTTP_AUTHORIZATION")
        try:
            actor = authenticate_credentials(authorization=authorization, api_key=meta.get("HTTP_X_API_KEY"))
        except NotAuthenticated as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        if actor is None:
            return None
        return actor, bearer_token(authorization)

    def authenticate_header(self, request: Request) -> str:
        """First of the authentication classes, so DRF answers "not authenticated" with 401 and this
        challenge rather than 403."""
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication (CSRF-checked), giving an Actor like the other two."""

    def authenticate(self, request: Request) -> tuple[Actor, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        return actor_from_user(result[0]), None


class TokenObtainSerializer(jwt_serializers.TokenObtainPairSerializer):
    """Username + password → access and refresh tokens carrying the user's roles."""

    @classmethod
    def get_token(cls, user: Any) -> RefreshToken:
        token = super().get_token(user)
        for claim, value in token_claims(user).items():
            token[claim] = value
        return token  # type: ignore[return-value]


class RoleRefreshToken(RefreshToken):
    """A refresh token that re-reads its user when it is presented: a missing or inactive user is
    refused, and the user's current roles replace the claims, so the access token made from it (and
    the rotated refresh token) carry them."""

    def verify(self) -> None:
        super().verify()
        user_id = self.payload.get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first() if user_id else None
        if user is None or not user.is_active:
            raise TokenError("No active account found for the given token.")
        for claim, value in token_claims(user).items():
            self[claim] = value

    def blacklist(self) -> Any:
        """simplejwt's blacklist, whose check (`check_blacklist`, in `verify`) and write are apart:
        two refreshes of one token at once both pass the check. The write is the arbiter: the
        blacklist row is unique per token, so of two concurrent `get_or_create`s only one creates
        it, and the other found the token already used: refused, so each refresh token gives one
        new pair."""
        # simplejwt's annotation says BlacklistedToken; it returns get_or_create's (row, created).
        blacklisted: tuple[Any, bool] = super().blacklist()  # type: ignore[assignment]
        if not blacklisted[1]:
            raise TokenError(_("Token is blacklisted"))
        return blacklisted


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """Refresh → a new access token with the user's current roles, and a new refresh token
    (rotation); the old refresh token is blacklisted (SIMPLE_JWT settings)."""

    token_class = RoleRefreshToken
