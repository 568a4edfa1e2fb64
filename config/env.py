"""The one place that reads the environment.

Every setting that may differ between machines comes from an environment variable read here
through django-environ; `.env.example` lists them all with their defaults.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# A developer may keep local values in `.env` (never committed); real environments set variables.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# Read once here because several settings components depend on it.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
