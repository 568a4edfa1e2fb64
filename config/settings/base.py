"""Settings for every environment.

Everything lives here and is switched by environment variables (config/env.py); `local`, `test`
and `production` only override. Each concern has its own module in `components/`, imported at the end.
"""

from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, env
from config.env import DEBUG as ENV_DEBUG

DEBUG = ENV_DEBUG

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    # Development only: a fixed, publicly known key is fine because nothing it signs leaves the laptop.
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "corsheaders",
    "csp",
    "observability",
    "core",
    "tasks",
    "api_rest",
    "api_graphql",
    "api_grpc",
    "strawberry_django",
    "config",  # the `serve` command of `make run` (HTTP and gRPC in one process)
]

MIDDLEWARE = [
    "observability.middleware.ObservabilityMiddleware",
    # Compresses what everything below produces; switched by COMPRESSION_ENABLED.
    "config.middleware.CompressionMiddleware",
    "config.middleware.RateLimitHeadersMiddleware",
    # Cache-Control: private, no-cache on API answers (what they say depends on who asks).
    "config.middleware.PrivateAPIResponsesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (switched by CSP_ENABLED): django-csp, its policy built once.
    "config.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # CORS before CommonMiddleware, so preflights are answered before redirects (switched by CORS_ENABLED):
    # django-cors-headers', reading no header but Origin when a request sends none.
    "config.middleware.CorsMiddleware",
    # The session, and below its user and messages: Django's, which an API client's call (its own
    # credential, under /api/v1/ or to /graphql/, no HTML) passes straight through
    # (config.middleware.api_client_call);
    # the messages' storage is made only when a request uses it (the admin's and DRF's pages).
    "config.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # 429 for a login form refused by the login rate limit (core.backends).
    "config.middleware.RateLimitedMiddleware",
    # A body without Content-Length (chunked) would reach the views empty: 411 instead. Last, so that
    # every layer above sets its headers on the refusal as on any answer (security, CSP, CORS, frame
    # options). No layer reads the body on the way down; CSRF reads a form in process_view, which
    # Django calls only once the request has passed every layer.
    "config.middleware.LengthRequiredMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "var" / "static")
# WhiteNoise serves the admin's, the browsable API's and Swagger UI / ReDoc's files from this server,
# compressed and with far-future caching of hashed names: no CDN, no separate web server needed.
# Production runs `manage.py collectstatic` once (docs/operations.md); in DEBUG they are found in place.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "config.storage.StaticFilesStorage"
        if not ENV_DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = ENV_DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

from config.settings.components.cache import *  # noqa: E402,F403
from config.settings.components.database import *  # noqa: E402,F403
from config.settings.components.events import *  # noqa: E402,F403
from config.settings.components.graphql import *  # noqa: E402,F403
from config.settings.components.grpc import *  # noqa: E402,F403
from config.settings.components.http import *  # noqa: E402,F403
from config.settings.components.jwt import *  # noqa: E402,F403
from config.settings.components.logging import *  # noqa: E402,F403
from config.settings.components.observability import *  # noqa: E402,F403
from config.settings.components.rest import *  # noqa: E402,F403
from config.settings.components.security import *  # noqa: E402,F403

if not CORS_ENABLED:  # noqa: F405
    MIDDLEWARE.remove("config.middleware.CorsMiddleware")
if not CSP_ENABLED:  # noqa: F405
    MIDDLEWARE.remove("config.middleware.CSPMiddleware")
