"""Actors of every role for the domain tests (the users come from tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from core.types import Actor
from tests.factories import actor_of


@pytest.fixture
def other_actor(other_user: Any) -> Actor:
    return actor_of(other_user)


@pytest.fixture
def viewer_actor(viewer: Any) -> Actor:
    return actor_of(viewer)


@pytest.fixture
def manager_actor(manager: Any) -> Actor:
    return actor_of(manager)


@pytest.fixture
def read_only_actor(user: Any) -> Actor:
    """The user's own identity through a read-only API key."""
    return dataclasses.replace(actor_of(user), read_only=True)
