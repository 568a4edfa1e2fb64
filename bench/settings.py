"""Settings of the benchmark server: production settings plus the baseline URL (bench/urls.py).

Everything else, including DEBUG (off), secrets, database and cache, comes from the environment that
bench/run.py sets, exactly as in production.
"""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
