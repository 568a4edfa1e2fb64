#!/usr/bin/env bash
# The taskhub image and the local cluster, with podman (docs/deploy.md).
#
#   docker/cluster.sh base            the local Debian bookworm base image (debootstrap), if missing
#   docker/cluster.sh image           the taskhub image (the base and the stand-ins the cluster uses if missing)
#   docker/cluster.sh standins        the stand-in images of postgres, redis, nginx, prometheus, if missing
#   docker/cluster.sh up              build what is missing, start the cluster, wait, seed the demo user
#   docker/cluster.sh down [--volumes]  stop and remove the containers and the network (and the volumes)
#   docker/cluster.sh test [pytest args]  tests/cluster against the running cluster
#   docker/cluster.sh ps              the cluster's containers
#   docker/cluster.sh compose ARGS    podman-compose on docker/compose.yaml (project taskhub)
#
# Needs root on a machine without podman (it installs podman & co. with apt-get). Writes nothing outside the
# repository except podman's storage: docker/.env (the secrets, generated once), docker/.secrets/, var/podman/.
# Settings, from the environment:
#   TASKHUB_STANDINS      auto (default: stand-ins unless the four official images are already present), 1, 0
#   TASKHUB_HTTP_PORT, TASKHUB_GRPC_PORT, TASKHUB_PROMETHEUS_PORT   published ports (8080, 9090, 9091)
#   TASKHUB_BASE_IMAGE    the base of the image builds (default: the local debootstrap base)
#   TASKHUB_SUBNET_PREFIX the cluster network's /24 (10.213.0: 10.213.0.0/24), fixed addresses per service
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKER="$ROOT/docker"
STATE="$ROOT/var/podman"
PROJECT=taskhub
export CONTAINERS_CONF="$DOCKER/podman/containers.conf"
export BUILDAH_FORMAT=docker  # OCI images drop HEALTHCHECK
LOCAL_BASE=localhost/debian:bookworm-slim
BASE_IMAGE="${TASKHUB_BASE_IMAGE:-$LOCAL_BASE}"
APP_IMAGE=localhost/taskhub:latest
STANDINS=(postgres redis nginx prometheus)
export TASKHUB_HTTP_PORT="${TASKHUB_HTTP_PORT:-8080}"
export TASKHUB_GRPC_PORT="${TASKHUB_GRPC_PORT:-9090}"
export TASKHUB_PROMETHEUS_PORT="${TASKHUB_PROMETHEUS_PORT:-9091}"
export TASKHUB_SUBNET_PREFIX="${TASKHUB_SUBNET_PREFIX:-10.213.0}"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

say() { printf '%s\n' "cluster: $*"; }
die() { printf '%s\n' "cluster: $*" >&2; exit 1; }

# podman-compose as requirements/cluster.txt pins it, in its own virtualenv (Debian's 1.0.3 ignores ipv4_address).
COMPOSE_VENV="$STATE/compose-venv"
compose() { "$COMPOSE_VENV/bin/podman-compose" --project-name "$PROJECT" --file "$DOCKER/compose.yaml" "$@"; }

ensure_compose() {
    local marker="$COMPOSE_VENV/.installed"
    [ -f "$marker" ] && [ "$marker" -nt "$ROOT/requirements/cluster.txt" ] && return
    say "installing podman-compose (requirements/cluster.txt) in var/podman/compose-venv"
    rm -rf "$COMPOSE_VENV"
    python3 -m venv "$COMPOSE_VENV"
    "$COMPOSE_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/requirements/cluster.txt"
    touch "$marker"
}

ensure_tools() {
    local missing=()
    for tool in podman buildah runc debootstrap; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
            || die "missing ${missing[*]}: install Debian's packages podman buildah runc debootstrap python3-venv"
        say "installing podman buildah runc debootstrap python3-venv"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc debootstrap python3-venv >/dev/null
    fi
    ensure_compose
}

image_exists() { podman image exists "$1"; }

# The Debian mirror apt uses on this machine (http), for debootstrap and the base's sources.list.
mirror() {
    local uri
    uri="$(grep -rhoE '(deb|URIs:)[[:space:]]+http[^[:space:]]*/debian/?([[:space:]]|$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n1 | awk '{print $2}')" || true
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

build_base() {
    image_exists "$LOCAL_BASE" && return
    local rootfs="$STATE/rootfs" debian
    debian="$(mirror)"
    say "building $LOCAL_BASE with debootstrap from $debian"
    rm -rf "$rootfs" && mkdir -p "$STATE"
    debootstrap --variant=minbase bookworm "$rootfs" "$debian" >"$STATE/debootstrap.log" 2>&1 \
        || die "debootstrap failed: $STATE/debootstrap.log"
    # As Debian's own images: the point-release and security updates, no caches, no documentation.
    cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $debian bookworm main
deb $debian bookworm-updates main
deb ${debian%/debian}/debian-security bookworm-security main
SOURCES
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    tar -C "$rootfs" -c . | podman import --quiet - "$LOCAL_BASE" >/dev/null
    rm -rf "$rootfs"
    say "$LOCAL_BASE: $(podman image inspect --format '{{.Size}}' "$LOCAL_BASE" | numfmt --to=si)B"
}

ensure_base() {
    if [ "$BASE_IMAGE" = "$LOCAL_BASE" ]; then build_base; fi
}

build_image() {
    ensure_base
    # The labels also as --label: buildah 1.28 reuses a cached LABEL layer when only a build argument changed.
    local version revision source=() start
    version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n1)"
    revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
    if url="$(git -C "$ROOT" remote get-url origin 2>/dev/null)"; then
        source=(--build-arg "SOURCE=$url" --label "org.opencontainers.image.source=$url")
    fi
    local secret=()
    [ -s "$CA_BUNDLE" ] && secret=(--secret "id=cacert,src=$CA_BUNDLE")
    say "building $APP_IMAGE (version $version, revision ${revision:0:12})"
    start=$SECONDS
    podman build --network=host --file "$DOCKER/Dockerfile" "${secret[@]}" \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
        --label "org.opencontainers.image.version=$version" --label "org.opencontainers.image.revision=$revision" \
        "${source[@]}" --tag "$APP_IMAGE" --tag "localhost/taskhub:$version" "$ROOT" >"$STATE/build.log" 2>&1 \
        || { tail -n 30 "$STATE/build.log" >&2; die "image build failed: $STATE/build.log"; }
    say "$APP_IMAGE built in $((SECONDS - start)) s, $(podman image inspect --format '{{.Size}}' "$APP_IMAGE" \
        | numfmt --to=si)B"
}

build_standins() {
    ensure_base
    local name
    for name in "${STANDINS[@]}"; do
        image_exists "localhost/taskhub-standin-$name" && continue
        say "building localhost/taskhub-standin-$name"
        podman build --network=host --build-arg "BASE_IMAGE=$BASE_IMAGE" --tag "localhost/taskhub-standin-$name" \
            "$DOCKER/standins/$name" >"$STATE/build-$name.log" 2>&1 \
            || { tail -n 30 "$STATE/build-$name.log" >&2; die "stand-in build failed: $STATE/build-$name.log"; }
    done
}

# The official images when they are here (or TASKHUB_STANDINS=0: podman pulls them); else the stand-ins.
choose_images() {
    local use="${TASKHUB_STANDINS:-auto}"
    if [ "$use" = auto ]; then
        use=0
        for official in docker.io/library/postgres:15-bookworm docker.io/library/redis:7 \
            docker.io/library/nginx:1.27 docker.io/prom/prometheus:v2.53.3; do
            image_exists "$official" || use=1
        done
    fi
    if [ "$use" = 1 ]; then
        build_standins
        export TASKHUB_POSTGRES_IMAGE=localhost/taskhub-standin-postgres
        export TASKHUB_REDIS_IMAGE=localhost/taskhub-standin-redis
        export TASKHUB_NGINX_IMAGE=localhost/taskhub-standin-nginx
        export TASKHUB_PROMETHEUS_IMAGE=localhost/taskhub-standin-prometheus
        say "dependencies: the stand-in images (docker/standins/)"
    fi
    # What was chosen, for tests/cluster/conftest.py's compose() (same images, same ports).
    env | grep -E '^TASKHUB_(POSTGRES|REDIS|NGINX|PROMETHEUS)_IMAGE=|^TASKHUB_(HTTP|GRPC|PROMETHEUS)_PORT=|^TASKHUB_SUBNET_PREFIX=' \
        >"$STATE/cluster.env" || true
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# docker/.env: the cluster's secrets, random, written once (gitignored); the metrics token also as a file
# for Prometheus' credentials_file.
ensure_secrets() {
    if [ ! -s "$DOCKER/.env" ]; then
        say "writing docker/.env with new random secrets"
        (
            umask 077
            cat >"$DOCKER/.env" <<ENV
# The local cluster's secrets (docker/cluster.sh writes this file once; never commit it).
DJANGO_SECRET_KEY=$(random_hex 32)
JWT_SIGNING_KEY=$(random_hex 32)
METRICS_TOKEN=$(random_hex 32)
POSTGRES_PASSWORD=$(random_hex 16)
DEMO_USERNAME=demo
DEMO_PASSWORD=$(random_hex 12)
ENV
        )
    fi
    mkdir -p "$DOCKER/.secrets" && chmod 700 "$DOCKER/.secrets"
    # Readable by Prometheus' user (nobody) through the bind mount; the directory keeps it from the host's users.
    (umask 022 && env_value METRICS_TOKEN >"$DOCKER/.secrets/metrics-token.new")
    mv "$DOCKER/.secrets/metrics-token.new" "$DOCKER/.secrets/metrics-token"
}

env_value() { sed -n "s/^$1=//p" "$DOCKER/.env" | tail -n1; }

container() { printf '%s_%s_1\n' "$PROJECT" "$1"; }

check_ports() {
    local port
    for port in "$TASKHUB_HTTP_PORT" "$TASKHUB_GRPC_PORT" "$TASKHUB_PROMETHEUS_PORT"; do
        if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
            die "port $port on this machine is taken (set TASKHUB_HTTP_PORT / TASKHUB_GRPC_PORT / TASKHUB_PROMETHEUS_PORT)"
        fi
    done
}

http_status() {
    python3 - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
PY
}

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what="$2"
    shift 2
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || { ps_cluster; die "timed out waiting for $what"; }
        sleep 1
    done
}

proxy_ready() { [ "$(http_status "http://127.0.0.1:$TASKHUB_HTTP_PORT/readyz")" = 200 ]; }
events_replicas_alive() {
    local service
    for service in events1 events2; do
        podman healthcheck run "$(container "$service")" >/dev/null 2>&1 || return 1
    done
}
proxy_grpc_serving() {
    podman exec "$(container grpc1)" python /app/docker/healthcheck.py grpc proxy:9090 >/dev/null 2>&1
}
prometheus_ready() { [ "$(http_status "http://127.0.0.1:$TASKHUB_PROMETHEUS_PORT/-/ready")" = 200 ]; }

ps_cluster() {
    podman ps --all --filter "label=io.podman.compose.project=$PROJECT" \
        --format '{{.Names}}\t{{.Status}}\t{{.Ports}}'
}

up() {
    ensure_tools
    mkdir -p "$STATE"
    if podman container exists "$(container proxy)"; then
        say "the cluster is already up (make cluster-down first to start it anew)"
        ps_cluster
        return
    fi
    check_ports
    ensure_secrets
    build_image
    choose_images
    local start=$SECONDS
    say "starting the cluster (project $PROJECT)"
    # --no-deps: the containers start in depends_on order all the same, but without podman's --requires links,
    # so that one replica can be stopped, killed and started again on its own (`podman start` of a container
    # with --requires starts, or fails on, every container it requires).
    compose up --detach --no-deps >"$STATE/compose-up.log" 2>&1 \
        || { tail -n 30 "$STATE/compose-up.log" >&2; die "compose up failed"; }
    if [ "$(podman wait "$(container migrate)")" != 0 ]; then
        podman logs --tail 20 "$(container migrate)" >&2
        die "migrate failed (podman logs $(container migrate))"
    fi
    wait_until 120 "the proxy's /readyz" proxy_ready
    wait_until 60 "the events replicas' /healthz" events_replicas_alive
    wait_until 60 "gRPC health through the proxy" proxy_grpc_serving
    wait_until 60 "Prometheus" prometheus_ready
    podman exec "$(container web1)" python manage.py seed_demo \
        --username "$(env_value DEMO_USERNAME)" --password "$(env_value DEMO_PASSWORD)" | sed 's/^/  /'
    say "up in $((SECONDS - start)) s"
    ps_cluster
    cat <<INFO

  HTTP        http://127.0.0.1:$TASKHUB_HTTP_PORT   (REST /api/v1, GraphQL /graphql/, probes /healthz /readyz /health)
              live events: GET /api/v1/tasks/events (SSE), /graphql/ websockets (graphql-transport-ws)
  gRPC        127.0.0.1:$TASKHUB_GRPC_PORT          (tasks.v1.TaskService with WatchTasks and SyncTasks, grpc.health.v1.Health)
  Prometheus  http://127.0.0.1:$TASKHUB_PROMETHEUS_PORT
  demo user   $(env_value DEMO_USERNAME) / $(env_value DEMO_PASSWORD)   (secrets in docker/.env)
INFO
}

down() {
    ensure_tools
    local volumes=()
    [ "${1:-}" = --volumes ] && volumes=(--volumes)
    # Graceful stops (SIGTERM, then 15 s), then podman-compose removes the containers (and the volumes).
    local names
    names="$(podman ps --all --quiet --filter "label=io.podman.compose.project=$PROJECT")"
    if [ -n "$names" ]; then
        # shellcheck disable=SC2086  # one id per word
        podman stop --time 15 $names >"$STATE/compose-down.log" 2>&1 || true
        # The anonymous volumes of the images' VOLUME lines go with their containers (a new container never
        # reuses them); the named ones (postgres-data, prometheus-data) only with --volumes, below.
        # shellcheck disable=SC2086
        podman rm --force --volumes $names >>"$STATE/compose-down.log" 2>&1 || true
    fi
    compose down "${volumes[@]}" >>"$STATE/compose-down.log" 2>&1 || true
    # A container of no service left on the network (a client a test started that never ran, say: podman
    # keeps a container whose start failed, `--rm` or not) would keep the network from going.
    local strays
    strays="$(podman ps --all --quiet --filter "network=${PROJECT}_default")"
    if [ -n "$strays" ]; then
        # shellcheck disable=SC2086
        podman rm --force $strays >>"$STATE/compose-down.log" 2>&1 || true
    fi
    if podman network exists "${PROJECT}_default"; then podman network rm "${PROJECT}_default" >/dev/null; fi
    say "down${volumes:+, volumes removed}"
}

run_tests() {
    [ -s "$DOCKER/.env" ] || die "no docker/.env: make cluster-up first"
    TASKHUB_CLUSTER_URL="http://127.0.0.1:$TASKHUB_HTTP_PORT" \
    TASKHUB_CLUSTER_GRPC="127.0.0.1:$TASKHUB_GRPC_PORT" \
    TASKHUB_CLUSTER_PROMETHEUS="http://127.0.0.1:$TASKHUB_PROMETHEUS_PORT" \
        "$ROOT/.venv/bin/pytest" "$ROOT/tests/cluster" -p no:cacheprovider -rP "$@"
}

mkdir -p "$STATE"
case "${1:-}" in
    base) ensure_tools; build_base ;;
    image) ensure_tools; build_image; choose_images ;;
    standins) ensure_tools; build_standins ;;
    up) up ;;
    down) shift; down "$@" ;;
    test) shift; run_tests "$@" ;;
    ps) ps_cluster ;;
    compose) shift; ensure_tools; compose "$@" ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac
