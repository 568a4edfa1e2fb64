"""JWT (djangorestframework-simplejwt): short-lived access, rotating refresh, blacklist, own key."""

from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from config.env import DEBUG, env, integer

JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="")
if not JWT_SIGNING_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("JWT_SIGNING_KEY must be set when DJANGO_DEBUG is off.")
    JWT_SIGNING_KEY = "jwt-development-only-signing-key-do-not-use-in-production"

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=integer("JWT_ACCESS_TOKEN_LIFETIME", 300, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=integer("JWT_REFRESH_TOKEN_LIFETIME", 86_400, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    # Stated here because core.auth verifies access tokens with PyJWT from these same settings.
    "TOKEN_TYPE_CLAIM": "token_type",
    "JTI_CLAIM": "jti",
    "LEEWAY": 0,
    "TOKEN_OBTAIN_SERIALIZER": "api_rest.auth.TokenObtainSerializer",
    "TOKEN_REFRESH_SERIALIZER": "api_rest.auth.TokenRefreshSerializer",
}
