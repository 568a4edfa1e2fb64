"""observability.switches: a setting (KeptSetting) or a boolean (Switch) kept once read, read again
after a change."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from observability.switches import KeptSetting, Switch


def test_a_switch_follows_its_setting_through_changes(settings: Any) -> None:
    settings.TASKHUB_TEST_SWITCH = True
    switch = Switch("TASKHUB_TEST_SWITCH")
    assert switch.value is None  # nothing read yet

    assert switch() is True and switch.value is True
    settings.TASKHUB_TEST_SWITCH = 0  # the fixture sends setting_changed
    assert switch.value is None
    assert switch() is False
    with override_settings(TASKHUB_TEST_SWITCH="yes"):
        assert switch() is True
    assert switch() is False


def test_a_switch_keeps_its_value_through_other_settings_changes(settings: Any) -> None:
    settings.TASKHUB_TEST_SWITCH = True
    switch = Switch("TASKHUB_TEST_SWITCH")
    switch()

    settings.TASKHUB_OTHER_SETTING = 1

    assert switch.value is True


def test_a_read_that_a_change_overtakes_is_not_kept(settings: Any) -> None:
    """A thread reads the setting, the setting changes before the thread keeps what it read: the
    switch must not keep the old value until the next change."""
    settings.TASKHUB_TEST_SWITCH = True
    switch = Switch("TASKHUB_TEST_SWITCH")

    class ChangedWhileRead:
        def __bool__(self) -> bool:
            settings.TASKHUB_TEST_SWITCH = False  # the change lands mid-read
            return True

    settings.TASKHUB_TEST_SWITCH = ChangedWhileRead()
    assert switch() is True  # what this read saw
    assert switch.value is None  # not kept
    assert switch() is False


def test_a_kept_setting_keeps_what_it_made_of_the_value_until_a_change(settings: Any) -> None:
    settings.TASKHUB_TEST_RATES = {"anon": ["1/m"]}
    made: list[object] = []

    def convert(value: dict[str, list[str]]) -> int:
        made.append(value)
        return len(value)

    kept = KeptSetting("TASKHUB_TEST_RATES", convert)

    assert (kept(), kept(), kept.value) == (1, 1, 1)
    assert len(made) == 1  # converted once, however often asked
    settings.TASKHUB_TEST_RATES = {"anon": ["1/m"], "user": ["2/m"]}
    assert kept.value is None
    assert kept() == 2 and len(made) == 2


def test_a_kept_setting_without_its_setting_is_its_default_or_an_error(settings: Any) -> None:
    assert not hasattr(settings, "TASKHUB_ABSENT_SETTING")

    assert KeptSetting("TASKHUB_ABSENT_SETTING", str.upper, default="all")() == "ALL"
    with pytest.raises(AttributeError):
        KeptSetting("TASKHUB_ABSENT_SETTING", str.upper)()
