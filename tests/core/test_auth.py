import time
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib import admin
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from core.admin import ApiKeyAdmin
from core.auth import (
    api_key_create,
    api_key_revoke,
    authenticate_api_key,
    authenticate_bearer,
    authenticate_credentials,
    bearer_token,
)
from core.errors import InvalidInput, NotAuthenticated, NotFound
from core.models import ApiKey
from core.types import Role
from tests.conftest import access_token
from tests.factories import UserFactory


def test_bearer_token_gives_the_users_actor_without_a_query(user, django_assert_num_queries) -> None:
    token = access_token(user)
    with django_assert_num_queries(0):
        actor = authenticate_bearer(token)
    assert (actor.id, actor.username, actor.roles) == (user.pk, user.username, frozenset({Role.EDITOR}))
    assert actor.can_write and not actor.sees_all


def test_manager_role_travels_in_the_token(manager) -> None:
    actor = authenticate_bearer(access_token(manager))
    assert actor.sees_all and actor.roles == frozenset({Role.MANAGER})


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda user: "not-a-jwt", id="garbage"),
        pytest.param(lambda user: str(RefreshToken.for_user(user)), id="refresh-token-as-access"),
        pytest.param(lambda user: access_token(user)[:-3] + "abc", id="bad-signature"),
        pytest.param(lambda user: "", id="empty"),
    ],
)
def test_invalid_bearer_tokens_are_not_authenticated(user, make_token) -> None:
    with pytest.raises(NotAuthenticated):
        authenticate_bearer(make_token(user))


def _forged(user, **changes) -> str:
    """An access token's claims with some changed (None drops a claim), signed as `changes` say."""
    key = changes.pop("key", settings.SIMPLE_JWT["SIGNING_KEY"])
    algorithm = changes.pop("algorithm", "HS256")
    claims = {**AccessToken.for_user(user).payload, **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"key": "another-signing-key-of-32-bytes-or-more"}, id="other-key"),
        pytest.param({"algorithm": "HS384"}, id="other-algorithm"),
        pytest.param({"token_type": "refresh"}, id="refresh-type"),
        pytest.param({"token_type": None}, id="no-type"),
        pytest.param({"jti": None}, id="no-token-id"),
        pytest.param({"user_id": None}, id="no-user"),
        pytest.param({"exp": None}, id="no-expiry"),
    ],
)
def test_access_tokens_are_checked_as_simplejwt_checks_them(user, changes) -> None:
    """core.auth verifies with PyJWT; every check of simplejwt's AccessToken must hold there too."""
    with pytest.raises(NotAuthenticated):
        authenticate_bearer(_forged(user, **changes))
    assert authenticate_bearer(_forged(user)).id == user.pk  # the forger itself makes valid tokens


def test_an_unsigned_token_is_not_authenticated(user) -> None:
    with pytest.raises(NotAuthenticated):
        authenticate_bearer(_forged(user, key=None, algorithm="none"))


def test_expired_bearer_token_is_not_authenticated(user) -> None:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=5))
    with pytest.raises(NotAuthenticated):
        authenticate_bearer(str(token))


def test_api_key_is_stored_hashed_and_authenticates(user, django_assert_max_num_queries) -> None:
    key, raw = api_key_create(user=user, name="ci")
    assert raw.startswith(f"th_{key.prefix}_")
    secret = raw.split("_", 2)[2]
    stored = ApiKey.objects.get(pk=key.pk)
    assert secret not in (stored.secret_hash, stored.prefix) and len(stored.secret_hash) == 64
    assert authenticate_api_key(raw).id == user.pk
    with django_assert_max_num_queries(0):  # served from the key cache now
        assert authenticate_api_key(raw).id == user.pk


def test_read_only_api_key_cannot_write(user) -> None:
    _, raw = api_key_create(user=user, name="reports", read_only=True)
    actor = authenticate_api_key(raw)
    assert actor.read_only and not actor.can_write


@pytest.mark.parametrize("mangle", [lambda raw: raw + "x", lambda raw: raw.replace("th_", "xx_"), lambda raw: "th__"])
def test_wrong_or_malformed_api_key_is_refused(user, mangle) -> None:
    _, raw = api_key_create(user=user, name="ci")
    with pytest.raises(NotAuthenticated):
        authenticate_api_key(mangle(raw))


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda raw: "th_ab\x00cd_secret", id="nul-in-prefix"),
        pytest.param(lambda raw: raw[:-1] + "\x00", id="nul-in-secret"),
        # Not the issued prefix upper-cased: twelve random hex digits are all decimal once in ~280 keys.
        pytest.param(lambda raw: raw[:3] + "ABCDEF012345" + raw[15:], id="prefix-not-lower-hex"),
        pytest.param(lambda raw: raw[:3] + "0" + raw[3:], id="prefix-too-long"),
        pytest.param(lambda raw: raw[:-1], id="secret-too-short"),
        pytest.param(lambda raw: raw[:-1] + "=", id="secret-not-url-safe-base64"),
        pytest.param(lambda raw: raw + "\n", id="trailing-newline"),
    ],
)
def test_an_api_key_not_of_the_issued_shape_is_refused_before_any_lookup(
    user, mangle, django_assert_num_queries
) -> None:
    """Only `th_` + 12 lower-case hex digits + `_` + 43 URL-safe base64 characters is ever issued;
    anything else is refused before the cache and the database see it (a NUL reaching a PostgreSQL
    query was a DataError: a 500, a websocket that never closed)."""
    _, raw = api_key_create(user=user, name="ci")
    with django_assert_num_queries(0), pytest.raises(NotAuthenticated, match=r"The API key is not valid\."):
        authenticate_api_key(mangle(raw))
    assert authenticate_api_key(raw).id == user.pk  # the key as issued still works


def test_revoked_api_key_is_refused_even_when_cached(user, django_capture_on_commit_callbacks) -> None:
    key, raw = api_key_create(user=user, name="ci")
    authenticate_api_key(raw)  # now cached
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(prefix=key.prefix)
    with pytest.raises(NotAuthenticated):
        authenticate_api_key(raw)


def _expire_as_the_admin_does(key: ApiKey) -> None:
    key.expires_at = timezone.now() - timedelta(seconds=1)
    ApiKeyAdmin(ApiKey, admin.site).save_model(None, key, None, change=True)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda key: key.delete(), id="deleted"),
        pytest.param(_expire_as_the_admin_does, id="expired-in-the-admin"),
        pytest.param(lambda key: key.user.delete(), id="user-deleted"),
    ],
)
def test_an_api_key_changed_outside_revoke_is_refused_even_when_cached(
    user, django_capture_on_commit_callbacks, change
) -> None:
    """docs/security.md: revocable at once, even when cached; not API_KEY_CACHE_TTL seconds later."""
    key, raw = api_key_create(user=user, name="ci")
    authenticate_api_key(raw)  # now cached
    with django_capture_on_commit_callbacks(execute=True):
        change(key)
    with pytest.raises(NotAuthenticated):
        authenticate_api_key(raw)


def test_an_api_key_renamed_in_the_admin_keeps_working(user, django_capture_on_commit_callbacks) -> None:
    key, raw = api_key_create(user=user, name="ci")
    authenticate_api_key(raw)
    key.name = "renamed"
    with django_capture_on_commit_callbacks(execute=True):
        ApiKeyAdmin(ApiKey, admin.site).save_model(None, key, None, change=True)
    assert authenticate_api_key(raw).id == user.id


def test_expired_api_key_is_refused(user) -> None:
    key, raw = api_key_create(user=user, name="ci", expires_at=timezone.now() + timedelta(hours=1))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(NotAuthenticated):
        authenticate_api_key(raw)


def test_api_key_of_inactive_user_is_refused(db) -> None:
    owner = UserFactory(is_active=False)
    _, raw = api_key_create(user=owner, name="ci")
    with pytest.raises(NotAuthenticated):
        authenticate_api_key(raw)


def test_api_key_create_validates(user) -> None:
    with pytest.raises(InvalidInput):
        api_key_create(user=user, name="  ")
    with pytest.raises(InvalidInput):
        api_key_create(user=user, name="old", expires_at=timezone.now() - timedelta(days=1))


def test_an_api_key_name_over_the_columns_length_is_invalid_input(user) -> None:
    """Refused by the domain, on every database (SQLite stored it, PostgreSQL raised a DataError)."""
    with pytest.raises(InvalidInput) as info:
        api_key_create(user=user, name="n" * 101)
    assert info.value.extra["fields"] == {"name": ["Ensure this field has no more than 100 characters."]}
    assert not ApiKey.objects.exists()
    assert api_key_create(user=user, name=" " + "n" * 100 + " ")[0].name == "n" * 100  # counted once stripped


def test_revoking_an_unknown_prefix_is_not_found(db) -> None:
    with pytest.raises(NotFound):
        api_key_revoke(prefix="nope")


def test_new_users_are_editors(db) -> None:
    assert list(UserFactory().groups.values_list("name", flat=True)) == [Role.EDITOR]


def test_a_verified_token_is_remembered_until_it_expires(user) -> None:
    from core.auth import verified_tokens

    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=1))
    raw = str(token)
    assert authenticate_bearer(raw).id == user.pk
    assert verified_tokens.get(raw) is not None
    time.sleep(1.1)
    assert verified_tokens.get(raw) is None
    with pytest.raises(NotAuthenticated):
        authenticate_bearer(raw)


def test_the_verified_token_memory_is_bounded(user) -> None:
    from core.auth import _VerifiedTokens

    memory = _VerifiedTokens(size=2)
    actor = authenticate_bearer(access_token(user))
    for name in ("a", "b", "c"):
        memory.put(name, actor, time.time() + 60)
    assert memory.get("a") is None and memory.get("c") is actor


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "", "Token abc", "bearer-x"])
def test_an_authorization_that_is_not_a_bearer_token_is_refused_even_beside_an_api_key(user, authorization) -> None:
    """Credentials sent but not understood are refused, never skipped (docs/architecture.md, "Authentication")."""
    _, raw = api_key_create(user=user, name="beside")

    with pytest.raises(NotAuthenticated):
        authenticate_credentials(authorization=authorization, api_key=raw)
    assert authenticate_credentials(authorization=None, api_key=raw).id == user.pk


@pytest.mark.parametrize("api_key", ["valid", "th_nope", ""])
def test_a_bearer_token_and_an_api_key_at_once_are_refused(user, api_key) -> None:
    """Whichever counted, the other would go unchecked (docs/architecture.md, "Authentication")."""
    raw = api_key_create(user=user, name="beside")[1] if api_key == "valid" else api_key

    with pytest.raises(NotAuthenticated, match="not both"):
        authenticate_credentials(authorization=f"Bearer {access_token(user)}", api_key=raw)
    assert authenticate_credentials(authorization=f"Bearer {access_token(user)}", api_key=None).id == user.pk


def test_no_credentials_is_nobody_and_an_empty_api_key_is_refused(db) -> None:
    assert authenticate_credentials(authorization=None, api_key=None) is None
    assert bearer_token(None) is None
    assert bearer_token("Bearer  abc ") == "abc"
    assert bearer_token("bearer abc") == "abc"
    with pytest.raises(NotAuthenticated):
        authenticate_credentials(authorization=None, api_key="")
