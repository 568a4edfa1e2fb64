"""The image's HEALTHCHECK: checks the role the container runs (its PID 1, docker/entrypoint.sh).

- granian (web): GET http://127.0.0.1:$WEB_PORT/healthz with Host $HEALTHCHECK_HOST (localhost) answers 200
  (liveness: the process serves);
- events_server.py (uvicorn, events): the same on $EVENTS_PORT;
- grpcserver (grpc): grpc.health.v1.Health/Check of the whole server on 127.0.0.1:$GRPC_PORT is SERVING;
- anything else (migrate, a one-off command): healthy.

Exit status 0 is healthy, 1 unhealthy. With arguments it checks another server instead:
`healthcheck.py grpc HOST:PORT` or `healthcheck.py web HOST:PORT` (docker/cluster.sh checks the proxy so).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

TIMEOUT = 2.5


def role() -> str:
    """What PID 1 serves: granian, events_server.py or grpcserver once the entry point has exec'd them; before
    that (while it waits for the migrations) the entry point itself, whose first argument is the role."""
    command = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    if any(part.endswith(b"granian") for part in command):
        return "web"
    if any(part.endswith(b"events_server.py") for part in command):
        return "events"
    if b"grpcserver" in command:
        return "grpc"
    for index, part in enumerate(command[:-1]):
        if part.endswith(b"entrypoint.sh"):
            return command[index + 1].decode()
    return "other"


def web_alive(target: str) -> bool:
    url = f"http://{target}/healthz"
    # A host name DJANGO_ALLOWED_HOSTS must list (any other Host is 400): HEALTHCHECK_HOST, default localhost.
    request = urllib.request.Request(url, headers={"Host": os.environ.get("HEALTHCHECK_HOST", "localhost")})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return bool(response.status == 200)


def grpc_serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def main() -> int:
    checks = {"web": web_alive, "events": web_alive, "grpc": grpc_serving}
    targets = {
        "web": f"127.0.0.1:{os.environ.get('WEB_PORT', '8000')}",
        "events": f"127.0.0.1:{os.environ.get('EVENTS_PORT', '8000')}",
        "grpc": f"127.0.0.1:{os.environ.get('GRPC_PORT', '50051')}",
    }
    what = sys.argv[1] if len(sys.argv) > 1 else role()
    check = checks.get(what)
    if check is None:
        return 0
    target = sys.argv[2] if len(sys.argv) > 2 else targets[what]
    try:
        return 0 if check(target) else 1
    except Exception as error:
        print(f"healthcheck: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
