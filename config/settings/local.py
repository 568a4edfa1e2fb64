"""Development: everything from base; DEBUG still comes from DJANGO_DEBUG (the README's run sets it)."""

from config.settings.base import *  # noqa: F403
