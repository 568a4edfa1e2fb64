#!/bin/sh
# The image's entry point: picks the role, then `exec`s the server, so the server is PID 1 and gets SIGTERM itself.
#   web      granian, WSGI: WEB_PORT (8000), WEB_WORKERS (2) processes of WEB_THREADS (4) threads each
#   events   uvicorn, ASGI, one process (docker/events_server.py): the live-event streams (SSE, websockets) on
#            EVENTS_PORT (8000); on SIGTERM the streams are ended with a retryable reason, within
#            EVENTS_SHUTDOWN_GRACE (10) seconds
#   grpc     manage.py grpcserver: GRPC_PORT (50051), its own /metrics on GRPC_METRICS_PORT (9464; 0: none)
#   migrate  waits for the database (WAIT_TIMEOUT seconds, 60), then manage.py migrate --no-input
#   anything else runs as given (`manage.py seed_demo`, `python`, `sh`)
# WAIT_FOR_MIGRATIONS=true makes web, events and grpc wait until every migration is applied before they serve.
# Extra arguments after the role go to the server.
set -eu
role="${1:-web}"
[ "$#" -gt 0 ] && shift

wait_for_migrations() {
    case "${WAIT_FOR_MIGRATIONS:-false}" in
        1 | true | yes | on) python /app/docker/wait.py migrations ;;
    esac
}

# The metrics files of an earlier process (a restarted container keeps an emptyDir) would be summed with
# this one's. The directory itself may be a mount point (Kubernetes), so empty it rather than remove it.
empty_metrics_dir() {
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
}

# The one place the events server's command is written (why not the `uvicorn` command: docker/events_server.py).
serve_events() {
    exec python /app/docker/events_server.py --host 0.0.0.0 --port "${EVENTS_PORT:-8000}" \
        --graceful-shutdown "${EVENTS_SHUTDOWN_GRACE:-10}" "$@"
}

case "$role" in
    web)
        wait_for_migrations
        # Each granian worker is a process: they count metrics in one directory, emptied at each start.
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/taskhub-metrics}"
        empty_metrics_dir
        exec granian --interface wsgi --host 0.0.0.0 --port "${WEB_PORT:-8000}" \
            --workers "${WEB_WORKERS:-2}" --blocking-threads "${WEB_THREADS:-4}" \
            --respawn-failed-workers "$@" config.wsgi:application
        ;;
    events)
        wait_for_migrations
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/taskhub-metrics}"
        empty_metrics_dir
        serve_events "$@"
        ;;
    grpc)
        wait_for_migrations
        if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then empty_metrics_dir; fi
        exec python manage.py grpcserver --host 0.0.0.0 --port "${GRPC_PORT:-50051}" \
            --metrics-port "${GRPC_METRICS_PORT:-9464}" "$@"
        ;;
    migrate)
        exec python /app/docker/wait.py migrate "$@"
        ;;
    manage.py)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
