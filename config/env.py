"""The one place that reads the environment.

Every setting that may differ between machines comes from an environment variable read here
through django-environ; `.env.example` lists them all with their defaults.
"""

import math
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


def integer(name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    """The integer variable `name` (else `default`), from `minimum` to `maximum` (no bound when None)."""
    what = f"an integer from {minimum} to {maximum}" if maximum is not None else f"an integer of at least {minimum}"
    try:
        value = env.int(name, default=default)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be {what}, not {env.str(name, default=str(default))!r}.")
    return value


def seconds(name: str, default: float, *, minimum: float = 0.0, strict: bool = False) -> float:
    """The number of seconds in the variable `name` (else `default`): finite, and over `minimum` when
    `strict` is set, else at least `minimum`."""
    what = f"a number of seconds {'greater than' if strict else 'of at least'} {minimum:g}"
    try:
        value = env.float(name, default=default)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise ImproperlyConfigured(f"{name} must be {what}, not {env.str(name, default=str(default))!r}.")
    return value
