"""Production: identical to base. Nothing exists only here; features are switched by environment."""

from config.settings.base import *  # noqa: F403
