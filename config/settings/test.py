"""Tests: base plus a fast password hasher and fixed keys; services come from the environment."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-" + "x" * 50)
os.environ.setdefault("JWT_SIGNING_KEY", "test-jwt-signing-key-" + "y" * 40)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("CACHE_KEY_PREFIX", "taskhub-test")

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
