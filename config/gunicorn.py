"""gunicorn settings for serving taskhub with several workers:

    gunicorn -c config/gunicorn.py config.wsgi:application

Workers are forked before they import Django (no `preload_app`), so each one opens its own database
and Redis connections and sets up tracing after the fork. With PROMETHEUS_MULTIPROC_DIR set (an
empty directory per host, e.g. a Kubernetes emptyDir), /metrics sums every worker and the gRPC
server; `child_exit` drops a dead worker's in-flight gauge at once (docs/operations.md, "Metrics").
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"  # keeps connections alive, unlike the sync worker
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
accesslog = None  # the application writes one access line per request (observability.middleware)
control_socket_disable = True  # gunicorn 27's control socket path is shared by every gunicorn of the user


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
