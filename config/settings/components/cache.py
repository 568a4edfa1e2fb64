"""Cache: Redis when REDIS_URL is set, Django's local memory otherwise (docs/architecture.md, "Cache")."""

from config.env import env, integer, seconds
from config.settings.components.observability import METRICS_ENABLED

REDIS_URL = env.str("REDIS_URL", default="")

CACHE_ENABLED = env.bool("CACHE_ENABLED", default=True)
# Seconds a cached task or list page lives; writes replace or drop entries on commit long before that.
CACHE_TTL = integer("CACHE_TTL", 300, minimum=1)
# After a cache fault, requests skip the cache for this many seconds instead of waiting on a dead server.
CACHE_RETRY_AFTER = seconds("CACHE_RETRY_AFTER", 1.0)
# With Redis: seconds a process may answer a cached read from its own copy, kept exact by the
# invalidation messages Redis sends (core.redis_copy); 0 keeps no copy: every read asks Redis.
CACHE_LOCAL_SECONDS = seconds("CACHE_LOCAL_SECONDS", 5.0)
# With the copy on: seconds a copy answers after it last heard from Redis (a PING answered), and so
# seconds a write that changed a copied entry waits, after Redis answered it, before it is
# acknowledged. The same in every process: a write must wait as long as any copy may answer.
CACHE_LOCAL_LEASE = seconds("CACHE_LOCAL_LEASE", 0.005, strict=True)
# Seconds to connect to Redis and to wait for an answer (cache, rate limits, the event log's appends).
REDIS_CONNECT_TIMEOUT = seconds("REDIS_CONNECT_TIMEOUT", 0.25, strict=True)
REDIS_SOCKET_TIMEOUT = seconds("REDIS_SOCKET_TIMEOUT", 0.25, strict=True)

# django-redis' default, said here: it keeps its connection pool across requests (Django's
# request_finished signal asks it to close; it reads this setting then, and an absent setting costs
# a caught AttributeError on every request).
DJANGO_REDIS_CLOSE_CONNECTION = False

if REDIS_URL:
    CACHES = {
        "default": {
            # django-prometheus' subclass of django-redis' backend counts gets, hits and misses
            # (core.redis_cache: the same, with its metrics' label children looked up once).
            "BACKEND": "core.redis_cache.RedisCache" if METRICS_ENABLED else "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="taskhub"),
            "OPTIONS": {
                # django-redis' client; a pickled value skips its int() attempt (core.redis_cache).
                "CLIENT_CLASS": "core.redis_cache.RedisClient",
                # A slow or dead Redis must not eat the request's time budget.
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                # The process's copy of cached reads (core.redis_copy): tasks, list pages and
                # their generations, API keys.
                **(
                    {
                        "LOCAL_COPY": {
                            "seconds": CACHE_LOCAL_SECONDS,
                            "prefixes": ["task:", "tasks:", "apikey:"],
                            "max_entries": 10_000,
                            "retry_after": CACHE_RETRY_AFTER,
                            # A PING twice a lease while reads come; one Redis has not answered
                            # within REDIS_SOCKET_TIMEOUT drops the listener (an outage).
                            "lease": CACHE_LOCAL_LEASE,
                            "ping_every": CACHE_LOCAL_LEASE / 2,
                            "answer_within": REDIS_SOCKET_TIMEOUT,
                        }
                    }
                    if CACHE_LOCAL_SECONDS > 0
                    else {}
                ),
            },
        }
    }
else:
    CACHES = {
        "default": {
            # Not django-prometheus' LocMemCache: its get() answers a stored 0 or "" with the default.
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "taskhub",
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }
