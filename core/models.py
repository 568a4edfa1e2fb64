"""API keys: shown once, stored hashed, identified by a public prefix (docs/architecture.md, "Authentication")."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """A long-lived credential for one user.

    The raw key is `th_<prefix>_<secret>`. Only the prefix (to find the row) and the SHA-256 of the
    secret are stored: the secret is 256 random bits, so a fast hash is as safe as a password hash
    and costs microseconds per request instead of the password hasher's hundreds of milliseconds.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    read_only = models.BooleanField(default=False, help_text="A read-only key cannot create, change or delete.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (th_{self.prefix}_…)"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
