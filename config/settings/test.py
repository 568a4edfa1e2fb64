"""Tests: base plus a fast password hasher and fixed keys; services come from the environment."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-" + "x" * 50)
os.environ.setdefault("JWT_SIGNING_KEY", "test-jwt-signing-key-" + "y" * 40)
# /metrics and /health's details need it outside DJANGO_DEBUG; live servers inherit it.
os.environ.setdefault("METRICS_TOKEN", "test-metrics-token-" + "z" * 20)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("CACHE_KEY_PREFIX", "taskhub-test")
# Rate-limit tests switch limits on themselves; elsewhere they would only add noise.
os.environ.setdefault("RATE_LIMITS_ENABLED", "false")

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files straight from the apps, as in development: tests do not run collectstatic.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
