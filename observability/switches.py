"""Switches: boolean settings read once, and read again when a test changes them.

Every request and call asks whether metrics, rate limits and the cache are on, and a read through
`django.conf.settings` (LazySettings' Python `__getattribute__`) costs ~3,700 instructions, 0.6% of a
cached gRPC GetTask. A `Switch` keeps the value once read and forgets it on `setting_changed`, which
`override_settings` and pytest-django's `settings` send; production settings never change.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.signals import setting_changed


class Switch:
    """`bool(settings.<name>)`, kept. `value` is None until read and after a change: a hot path may
    read `value` itself and call the switch only when it is None.

    A read that a change overtakes (a test's server thread reading while the test changes the
    setting) does not keep what it read: `changes` counts the changes, and the value is kept only if
    none came in between."""

    __slots__ = ("changes", "lock", "name", "value")

    def __init__(self, name: str) -> None:
        self.name = name
        self.value: bool | None = None
        self.changes = 0
        self.lock = threading.Lock()
        setting_changed.connect(self._changed, weak=False)

    def __call__(self) -> bool:
        value = self.value
        if value is None:
            changes = self.changes
            value = bool(getattr(settings, self.name))
            with self.lock:
                if self.changes == changes:
                    self.value = value
        return value

    def _changed(self, *, setting: str, **kwargs: object) -> None:
        if setting == self.name:
            with self.lock:
                self.changes += 1
                self.value = None
