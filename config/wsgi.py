import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()

from core.startup import freeze_startup_heap  # noqa: E402 - needs the settings above

freeze_startup_heap()
