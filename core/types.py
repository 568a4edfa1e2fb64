"""The identity every protocol hands to the domain."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class Role(StrEnum):
    """Roles are Django groups of these names, created by a data migration (docs/domain.md)."""

    VIEWER = "viewer"  # read own tasks
    EDITOR = "editor"  # read and write own tasks; every new user gets it
    MANAGER = "manager"  # read and write every task


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: built from a JWT's claims, an API key or a session, without a query per request.

    Roles travel in the access token, so a role change reaches a JWT client with its next refresh
    (at most the access-token lifetime later) and an API-key client within the key cache TTL.
    """

    id: int
    username: str
    roles: frozenset[str]
    is_staff: bool = False
    read_only: bool = False  # an API key created read-only

    # Enough of Django's user interface for DRF permissions and the browsable API.
    is_authenticated: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False
    is_active: ClassVar[bool] = True

    @property
    def pk(self) -> int:
        return self.id

    @property
    def sees_all(self) -> bool:
        """Managers and staff read and write every task; everybody else only their own."""
        return self.is_staff or Role.MANAGER in self.roles

    @property
    def can_write(self) -> bool:
        if self.read_only:
            return False
        return self.is_staff or bool(self.roles & {Role.EDITOR, Role.MANAGER})

    def __str__(self) -> str:
        return self.username
