"""Authentication shared by every protocol: JWT bearer tokens and API keys, both giving an `Actor`.

Adapters only pull the credential out of their transport (HTTP header, gRPC metadata) and call
`authenticate_bearer` or `authenticate_api_key`. Neither costs a database query on the hot path:
the JWT carries the user's roles, and API keys are cached for `API_KEY_CACHE_TTL` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from core.cache import safe_cache
from core.errors import InvalidInput, NotAuthenticated, NotFound
from core.models import ApiKey
from core.types import Actor, Role

API_KEY_PREFIX = "th"
API_KEY_CACHE_TTL = 60
API_KEY_NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length or 100
# The exact shape `api_key_create` issues: `th_`, 12 hex digits (token_hex(6)), `_`, 43 URL-safe
# base64 characters (token_urlsafe(32)). Anything else is refused before the cache and the database
# see it: a NUL or an over-long prefix would otherwise reach a query (a DataError on PostgreSQL).
_API_KEY_SHAPE = re.compile(rf"{API_KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})")
_ROLE_NAMES = frozenset(role.value for role in Role)


def actor_from_user(user: User | AnonymousUser | Actor) -> Actor:
    """Build the Actor of a Django user (one query for the groups); the session path uses it."""
    if isinstance(user, Actor):
        return user
    if not user.is_authenticated or not user.is_active:
        raise NotAuthenticated()
    roles = frozenset(user.groups.filter(name__in=_ROLE_NAMES).values_list("name", flat=True))
    return Actor(id=user.pk, username=user.get_username(), roles=roles, is_staff=bool(user.is_staff))


def token_claims(user: User) -> dict[str, Any]:
    """Claims added to every access token so requests need no user query."""
    actor = actor_from_user(user)
    return {"username": actor.username, "roles": sorted(actor.roles), "staff": actor.is_staff}


class _VerifiedTokens:
    """Access tokens already verified by this process, kept until they expire (bounded, LRU).

    Verifying a JWT (base64 checks, HMAC, claim checks) costs more than the rest of a cache-hit GET;
    clients send the same token for minutes. A token's verdict cannot change before its expiry
    (access tokens are not revocable), so remembering it is exact, not an approximation.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[Actor, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw_token: str) -> Actor | None:
        with self._lock:
            entry = self._entries.get(raw_token)
            if entry is None:
                return None
            if entry[1] <= time.time():
                del self._entries[raw_token]
                return None
            self._entries.move_to_end(raw_token)
            return entry[0]

    def put(self, raw_token: str, actor: Actor, expires_at: float) -> None:
        with self._lock:
            self._entries[raw_token] = (actor, expires_at)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verified_tokens = _VerifiedTokens()


def decode_access_token(raw_token: str) -> dict[str, Any]:
    """The claims of a valid, unexpired access token, checked with PyJWT against the SIMPLE_JWT settings.

    simplejwt issues, rotates and revokes tokens at the REST token endpoints; every protocol verifies
    them here, with the JWT library itself, so the domain needs nothing of DRF. The checks are the ones
    simplejwt's AccessToken makes: signature and algorithm, expiry (with the configured leeway), a
    token id, and the token type "access" (a refresh token is not a bearer credential).
    Raises jwt.InvalidTokenError.
    """
    options = settings.SIMPLE_JWT
    type_claim, user_claim, jti_claim = options["TOKEN_TYPE_CLAIM"], options["USER_ID_CLAIM"], options["JTI_CLAIM"]
    claims: dict[str, Any] = jwt.decode(
        raw_token,
        options["SIGNING_KEY"],
        algorithms=[options["ALGORITHM"]],
        leeway=options["LEEWAY"],
        options={"require": ["exp", type_claim, user_claim, jti_claim]},
    )
    if claims[type_claim] != "access":
        raise jwt.InvalidTokenError("Not an access token.")
    return claims


def authenticate_bearer(raw_token: str) -> Actor:
    """Verify a JWT access token (signature, expiry, type) and return who it speaks for.

    Raises NotAuthenticated for anything that is not a valid, unexpired access token.
    """
    if (actor := verified_tokens.get(raw_token)) is not None:
        return actor
    try:
        claims = decode_access_token(raw_token)
        actor = Actor(
            id=int(claims[settings.SIMPLE_JWT["USER_ID_CLAIM"]]),  # simplejwt writes the id as a string
            username=str(claims.get("username", "")),
            roles=frozenset(claims.get("roles", ())) & _ROLE_NAMES,
            is_staff=bool(claims.get("staff", False)),
        )
        expires_at = float(claims["exp"])
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError) as exc:
        raise NotAuthenticated("The access token is invalid or has expired.") from exc
    verified_tokens.put(raw_token, actor, expires_at)
    return actor


# -- API keys -------------------------------------------------------------------------------------


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _cache_key(prefix: str) -> str:
    return f"apikey:{prefix}"


def api_key_input(*, name: str, expires_at: datetime | None) -> str:
    """The name a new key is stored under (stripped), once `name` and `expires_at` hold; raises
    InvalidInput naming the field otherwise. The admin's form runs it too, to answer with a field
    error instead of failing in `api_key_create` after the form validated."""
    name = name.strip()
    if not name:
        raise InvalidInput.for_fields({"name": ["This field may not be blank."]})
    if len(name) > API_KEY_NAME_MAX_LENGTH:
        # Checked here, not left to the column: SQLite would store it, PostgreSQL raise a DataError.
        raise InvalidInput.for_fields(
            {"name": [f"Ensure this field has no more than {API_KEY_NAME_MAX_LENGTH} characters."]}
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput.for_fields({"expires_at": ["The expiry must be in the future."]})
    return name


def api_key_create(
    *, user: User, name: str, read_only: bool = False, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Create a key for `user` and return it with the raw key, which is never stored nor shown again."""
    name = api_key_input(name=name, expires_at=expires_at)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        read_only=read_only,
        expires_at=expires_at,
    )
    return key, f"{API_KEY_PREFIX}_{prefix}_{secret}"


@transaction.atomic
def api_key_revoke(*, prefix: str) -> ApiKey:
    """Revoke the key with this prefix; requests using it fail from the moment the change commits."""
    key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
    if key is None:
        raise NotFound("No API key has this prefix.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])  # its cache entry: refresh_cached_api_key, on commit
    return key


_UNUSABLE: dict[str, Any] = {"secret_hash": "", "usable": False, "expires_at": None, "actor": None}


def refresh_cached_api_key(prefix: str) -> None:
    """Once the change in progress commits, the key's cache entry becomes what the database holds then
    (unusable if the key is revoked or gone). Run for every saved or deleted key (core.signals): a
    revocation, an edit or a deletion (`api_key_revoke`, the admin's form and delete, a user deleted
    with their keys) takes effect at once, not API_KEY_CACHE_TTL seconds later. `replace`, not
    delete: a reader that loaded the key just before only ever `add`s, so it cannot put an older
    copy back."""
    transaction.on_commit(
        lambda: safe_cache.replace(_cache_key(prefix), _load_api_key(prefix) or _UNUSABLE, timeout=API_KEY_CACHE_TTL)
    )


def _load_api_key(prefix: str) -> dict[str, Any] | None:
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    if key is None:
        return None
    user = key.user
    actor = actor_from_user(user) if user.is_active else None
    return {
        "secret_hash": key.secret_hash,
        "usable": key.revoked_at is None and actor is not None,
        "expires_at": key.expires_at,
        "actor": actor
        and Actor(
            id=actor.id, username=actor.username, roles=actor.roles, is_staff=actor.is_staff, read_only=key.read_only
        ),
    }


def authenticate_api_key(raw_key: str) -> Actor:
    """Check a raw API key and return its user's Actor (read-only if the key is).

    Raises NotAuthenticated for a malformed, unknown, revoked or expired key.
    """
    return _check_api_key(raw_key)[0]


def _check_api_key(raw_key: str) -> tuple[Actor, datetime | None]:
    """authenticate_api_key, with the key's expiry."""
    shape = _API_KEY_SHAPE.fullmatch(raw_key)
    if shape is None:
        raise NotAuthenticated("The API key is not valid.")
    prefix, secret = shape.groups()
    entry = safe_cache.get(_cache_key(prefix))
    if entry is None:
        entry = _load_api_key(prefix) or _UNUSABLE
        safe_cache.add(_cache_key(prefix), entry, timeout=API_KEY_CACHE_TTL)
    if not hmac.compare_digest(entry["secret_hash"], _hash_secret(secret)) or not entry["usable"]:
        raise NotAuthenticated("The API key is not valid.")
    if entry["expires_at"] is not None and entry["expires_at"] <= timezone.now():
        raise NotAuthenticated("The API key has expired.")
    actor: Actor = entry["actor"]
    return actor, entry["expires_at"]


def bearer_token(authorization: str | None) -> str | None:
    """The access token of an `Authorization: Bearer <token>` value; None when there is no header.

    Credentials that are sent but not understood are refused, never skipped for the next ones
    (docs/architecture.md, "Authentication"): any other scheme (`Basic …`), and a header without a
    token, raise NotAuthenticated, even beside a valid API key or session.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send `Authorization: Bearer <access token>`.")
    return token.strip()


def authenticate_credentials(*, authorization: str | None, api_key: str | None) -> Actor | None:
    """The Actor named by the `Authorization` value (`bearer_token`) or the API key, the one rule of
    every protocol (REST and GraphQL headers, gRPC metadata); None when neither is given.

    A header that is present is checked, even empty. Both at once are refused, whatever each holds:
    which one counts would be a guess, and an ignored credential is one never checked
    (docs/architecture.md, "Authentication"). Raises NotAuthenticated.
    """
    if authorization is not None and api_key is not None:
        raise NotAuthenticated("Send one credential: an `Authorization: Bearer` token or an API key, not both.")
    if (token := bearer_token(authorization)) is not None:
        return authenticate_bearer(token)
    if api_key is not None:
        return authenticate_api_key(api_key.strip())
    return None


# -- long-lived streams -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    """The credential a stream was opened with, kept to check it again while the stream lives
    (a revoked API key, a deactivated user) and to end the stream when it expires."""

    authorization: str | None
    api_key: str | None
    expires_at: float | None  # a Unix time; None for an API key without expiry

    def recheck(self, opened_with: Actor, *, writes: bool = False) -> None:
        """Authenticate again. NotAuthenticated once the credential expired or was revoked, or no
        longer gives the access the stream was opened with as `opened_with`: another user, a manager
        demoted, and for a stream that writes (`writes`), a user who can no longer write."""
        actor, _ = authenticate_stream(authorization=self.authorization, api_key=self.api_key)
        if (actor.id, actor.sees_all) != (opened_with.id, opened_with.sees_all) or (
            writes and actor.can_write != opened_with.can_write
        ):
            raise NotAuthenticated("The credential no longer gives the access this stream was opened with.")


def authenticate_stream(*, authorization: str | None, api_key: str | None) -> tuple[Actor, Credential]:
    """`authenticate_credentials` for an event stream: a credential is required (what a stream may
    carry depends on who reads it), and its expiry is kept so the stream ends with it.

    Raises NotAuthenticated.
    """
    if authorization is not None and api_key is not None:
        authenticate_credentials(authorization=authorization, api_key=api_key)  # raises: both at once
    if (token := bearer_token(authorization)) is not None:
        actor = authenticate_bearer(token)
        expires_at: float | None = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    elif api_key is not None:
        actor, key_expiry = _check_api_key(api_key.strip())
        expires_at = key_expiry.timestamp() if key_expiry is not None else None
    else:
        raise NotAuthenticated("Event streams need a credential: an `Authorization: Bearer` token or an API key.")
    return actor, Credential(authorization=authorization, api_key=api_key, expires_at=expires_at)
