"""What a serving process does once, after Django is set up and before its first request or call.

`freeze_startup_heap()` loads what Django would otherwise load on the first request (the URLconf,
and through it every view module and the GraphQL schema), collects, and moves every object alive
at that point into the garbage collector's permanent generation (`gc.freeze()`, as the Python docs
suggest for servers). Those objects - modules, classes, settings, the schema - live as long as the
process, yet every full collection used to walk all of them, and under load those collections
were the tail latency of a cached GET (bench/README.md, "The cost of metrics and tracing", has the
measurements). Objects made later are collected as before.

It runs in every process that serves: `config.wsgi` and `config.asgi` (each gunicorn/granian
worker imports them after the fork) and `manage.py grpcserver`.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf, the views and the GraphQL schema
    gc.collect()
    gc.freeze()
