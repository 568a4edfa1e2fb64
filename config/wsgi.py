"""The WSGI application, which granian (and gunicorn) serve: Django's handler, under a class of its own."""

import os

import django
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application does

from core.db import serve_requests_of  # noqa: E402 - needs the settings above
from core.startup import freeze_startup_heap  # noqa: E402


class Application(WSGIHandler):
    """Django's WSGI handler. Its own class names its requests to the request signals: their
    connections are kept by core.db's per-thread receivers (`serve_requests_of`)."""


application = Application()
serve_requests_of(Application)
freeze_startup_heap()
