"""The ASGI application: HTTP goes to Django's handler (every view and middleware, as under WSGI), and
websockets to GraphQL subscriptions over graphql-transport-ws at /graphql/ (api_graphql/websocket.py)."""

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

http_application = get_asgi_application()

from api_graphql.websocket import websocket_application  # noqa: E402 - needs the settings above
from core.startup import freeze_startup_heap  # noqa: E402

Message = MutableMapping[str, Any]
_websocket_application = websocket_application()


async def application(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    if scope["type"] == "websocket":
        await _websocket_application(scope, receive, send)
    else:  # http, and lifespan, which Django's handler refuses as it always did
        await http_application(scope, receive, send)  # type: ignore[arg-type]


freeze_startup_heap()
