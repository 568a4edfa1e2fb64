"""Switches and kept settings: settings read once, and read again when a test changes them.

Every request and call asks whether metrics, rate limits and the cache are on (and the rate limit
for its windows and the proxies to trust), and a read through `django.conf.settings` (LazySettings'
Python `__getattribute__`) costs ~3,400 instructions, 0.6% of a cached gRPC GetTask. A `KeptSetting`
keeps what it made of the value once read and forgets it on `setting_changed`, which
`override_settings` and pytest-django's `settings` send; production settings never change. A
`Switch` is the kept setting of a boolean.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.signals import setting_changed

T = TypeVar("T")
_REQUIRED = object()


class KeptSetting(Generic[T]):
    """`convert(settings.<name>)`, kept (`convert` never returns None). `value` is None until read
    and after a change: a hot path may read `value` itself and call the kept setting only when it is
    None.

    A read that a change overtakes (a test's server thread reading while the test changes the
    setting) does not keep what it read: `changes` counts the changes, and the value is kept only if
    none came in between."""

    __slots__ = ("changes", "convert", "default", "lock", "name", "value")

    def __init__(self, name: str, convert: Callable[[Any], T], default: Any = _REQUIRED) -> None:
        """`default`: the value when the setting is absent (by default, reading it raises)."""
        self.name = name
        self.convert = convert
        self.default = default
        self.value: T | None = None
        self.changes = 0
        self.lock = threading.Lock()
        setting_changed.connect(self._changed, weak=False)

    def __call__(self) -> T:
        value = self.value
        if value is None:
            changes = self.changes
            value = self.convert(
                getattr(settings, self.name)
                if self.default is _REQUIRED
                else getattr(settings, self.name, self.default)
            )
            with self.lock:
                if self.changes == changes:
                    self.value = value
        return value

    def _changed(self, *, setting: str, **kwargs: object) -> None:
        if setting == self.name:
            with self.lock:
                self.changes += 1
                self.value = None


class Switch(KeptSetting[bool]):
    """`bool(settings.<name>)`, kept."""

    __slots__ = ()

    def __init__(self, name: str) -> None:
        super().__init__(name, bool)
