"""The ASGI application: Django's handler for HTTP (every view and middleware, as under WSGI), which
hands websockets to GraphQL subscriptions over graphql-transport-ws at /graphql/
(api_graphql/websocket.py)."""

import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from api_graphql.websocket import Receive, Scope, Send, websocket_application  # noqa: E402 - needs the settings above
from core.startup import freeze_startup_heap  # noqa: E402

_websocket_application = websocket_application()


class Application(ASGIHandler):
    """Django's ASGI handler, and the websocket route: one application, so whatever wraps Django's
    handler (the development server's static files) wraps both."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await _websocket_application(scope, receive, send)
        else:  # http, and lifespan, which Django's handler refuses as it always did
            await super().__call__(scope, receive, send)


application = Application()

freeze_startup_heap()
