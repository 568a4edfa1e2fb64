"""The one place that reads the environment.

Every setting that may differ between machines comes from an environment variable read here
through django-environ; `.env.example` lists them all with their defaults.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# A developer may keep local values in `.env` (never committed); real environments set variables.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# Read once here because several settings components depend on it.
DEBUG = env.bool("DJANGO_DEBUG", default=False)


# -- numbers, checked when the process starts ---------------------------------------------------
# A number out of its range would otherwise surface much later, far from its cause (a timeout of 0
# as a fault of every cache call, a negative TTL as entries that never stay): the process refuses to
# start instead, naming the variable.


# What PostgreSQL, libpq and grpcio take as a number: a 32-bit signed integer.
INT32_MAX = 2**31 - 1
# The longest any of the settings' durations may be (a timeout, an interval, a window, a grace).
A_DAY = 86_400.0


def integer(name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    """The integer variable `name` (else `default`), from `minimum` to `maximum` (no bound when None)."""
    what = f"an integer from {minimum} to {maximum}" if maximum is not None else f"an integer of at least {minimum}"
    raw = env.str(name, default=str(default))
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be {what}, not {raw!r}.")
    return value


def seconds(name: str, default: float, *, minimum: float = 0.0, strict: bool = False) -> float:
    """The number of seconds in the variable `name` (else `default`): over `minimum` when `strict` is
    set, else at least `minimum`, and at most a day. Read with `float()`: django-environ's float cast
    drops every character but digits, signs and separators first, which reads "250ms" as 250 seconds."""
    what = f"a number of seconds {'greater than' if strict else 'of at least'} {minimum:g} and at most {A_DAY:g}"
    raw = env.str(name, default=str(default))
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= A_DAY or (strict and value == minimum):  # NaN compares false
        raise ImproperlyConfigured(f"{name} must be {what}, not {raw!r}.")
    return value
