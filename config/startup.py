"""What a serving process does once, after Django is set up and before its first request or call.

`freeze_startup_heap()` loads what Django would otherwise load on the first request (the URLconf,
and through it every view module and the GraphQL schema), collects, and moves every object alive
at that point into the garbage collector's permanent generation (`gc.freeze()`, as the Python docs
suggest for servers). Those objects - modules, classes, settings, the schema - live as long as the
process, yet every full collection used to walk all ~130,000 of them: measured in one worker under
load, one full collection took ~100 ms (the p99 of a cached GET), and with tracing on (a queue of
finished spans keeps the heap growing) full collections cost ~75 µs per request on average against
~6 µs once frozen (bench/README.md, "The cost of metrics and tracing"). Objects made later are
collected as before.

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
