# The two commands of the README:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
GRPC_PORT ?= 50051

# The tools from outside the venv, each a command on PATH or a path. To use another one, name it on the command
# line or in the environment (`make test PROMTOOL=/opt/prometheus/promtool`); the tests read the same variables.
# A tool left at its default that is missing is installed: chromium and prometheus with apt-get when make runs as
# root (a fresh Debian machine, as in .ci/run), buf with npm; otherwise make stops and says what to install.
CHROMIUM   ?= chromium
PROMTOOL   ?= promtool
PROMETHEUS ?= prometheus
# Node.js runs graphql-http, the GraphQL-over-HTTP audit of tests/api_graphql/test_http_audit.py.
NODE       ?= node
# kubectl renders the Kubernetes manifests (`kubectl kustomize`) for tests/deploy; nothing is applied.
KUBECTL    ?= kubectl
# iptables drops a test's own Redis' packets (tests/core/test_redis_copy.py), as root: the test skips without root.
IPTABLES   ?= iptables
# buf: the version tools/package.json pins once it is installed in tools/node_modules, else the one on PATH.
BUF        ?= $(shell test -x tools/node_modules/.bin/buf && echo tools/node_modules/.bin/buf || echo buf)

.PHONY: run test lint install install-dev chromium prometheus iptables buf node-tools clean image cluster-up \
	cluster-down cluster-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-prod: requirements/base.txt requirements/production.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/production.txt
	touch $@

$(VENV)/.installed-dev: requirements/base.txt requirements/production.txt requirements/local.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/local.txt
	touch $@ $(VENV)/.installed-prod

install: $(VENV)/.installed-prod
install-dev: $(VENV)/.installed-dev chromium prometheus iptables buf node-tools

# $(call debian-tool,VARIABLE,PACKAGE): the command VARIABLE names runs; else, VARIABLE being left at its default,
# Debian's PACKAGE is installed when make runs as root, and make stops with what to install when it does not.
debian-tool = if [ -x "$$(command -v '$($(1))')" ]; then :; \
	elif [ '$(origin $(1))' != file ]; then echo "make: $(1)=$($(1)) is not a command that can run." >&2; exit 1; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2); \
	else echo "make: '$($(1))' is not installed. Install Debian's package $(2) (as root: apt-get install $(2))," \
		"or name the command with $(1)=/path/to/$($(1))." >&2; exit 1; fi

# The metrics tests lint a live scrape with `promtool check metrics` and let a real Prometheus scrape
# the service: Debian's package `prometheus` has both (installed, never started as a service here).
prometheus:
	@$(call debian-tool,PROMTOOL,prometheus)
	@$(call debian-tool,PROMETHEUS,prometheus)

# The browser tests drive Debian's Chromium (no browser download).
chromium:
	@$(call debian-tool,CHROMIUM,chromium)

# A test drops a Redis server's packets at random with Debian's iptables; it needs root, and skips without it.
iptables:
	@if [ "$$(id -u)" = 0 ] || [ '$(origin IPTABLES)' != file ]; then $(call debian-tool,IPTABLES,iptables); fi

# buf lints the protos. Left at its default and missing, it is installed from the npm registry into tools/node_modules
# (no root needed).
buf:
	@if [ -x "$$(command -v '$(BUF)')" ]; then :; \
	elif [ '$(origin BUF)' != file ]; then echo "make: BUF=$(BUF) is not a command that can run." >&2; exit 1; \
	elif command -v npm >/dev/null; then npm ci --prefix tools --no-audit --no-fund; \
	else echo "make: buf is not installed. Install npm (Debian's package npm), and make installs buf in" \
		"tools/node_modules; or put buf on PATH; or name the command with BUF=/path/to/buf." >&2; exit 1; fi

# Every npm tool at the version tools/package-lock.json pins, in tools/node_modules (no root needed): buf, and
# graphql-http, which the GraphQL-over-HTTP audit test runs with Node.js. Installed again when the lock changes.
node-tools: tools/node_modules/.package-lock.json

tools/node_modules/.package-lock.json: tools/package.json tools/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tools --no-audit --no-fund && touch $@; \
	else echo "make: npm is not installed. Install Debian's package npm, and make installs buf and graphql-http" \
		"in tools/node_modules." >&2; exit 1; fi

## Install, migrate, create the demo user and tasks, and serve on 127.0.0.1 (embedded: SQLite + local memory):
## HTTP on port 8000 (REST, GraphQL and its websocket, Server-Sent Events: one ASGI server, uvicorn) and gRPC on
## 50051, in one process, so the in-process event log carries every write to every stream. Restarts on code
## changes; Ctrl-C stops both (config/management/commands/serve.py).
run: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=1 $(BIN)/python manage.py seed_demo
	DJANGO_DEBUG=1 $(BIN)/python manage.py serve --host $(HOST) --port $(PORT) --grpc-port $(GRPC_PORT)

## Lint, architecture contracts, deploy check, migration drift, and the whole test suite.
# The tests find the outside tools through the same variables (tests/live.py, `executable`).
# TESTS names a part of the suite instead of all of it (`make test TESTS="tests/contract tests/tasks"`).
TESTS ?=
test: install-dev lint
	CHROMIUM='$(CHROMIUM)' PROMTOOL='$(PROMTOOL)' PROMETHEUS='$(PROMETHEUS)' NODE='$(NODE)' KUBECTL='$(KUBECTL)' \
		IPTABLES='$(IPTABLES)' $(BIN)/pytest $(TESTS)

lint: $(VENV)/.installed-dev buf
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	'$(BUF)' lint api_grpc/protos
	$(BIN)/mypy tasks core observability api_rest api_graphql api_grpc config docker/healthcheck.py docker/wait.py docker/events_server.py
	DJANGO_SECRET_KEY=check-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	JWT_SIGNING_KEY=check-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	DJANGO_SETTINGS_MODULE=config.settings.production \
	$(BIN)/python manage.py check --deploy --fail-level WARNING
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

## The container image and the local podman cluster (docs/deploy.md; the logic is in docker/cluster.sh).
## image: the base (debootstrap) if missing, then the taskhub image, and the stand-in images if the cluster needs them.
image:
	docker/cluster.sh image

## cluster-up: build what is missing, start PostgreSQL, Redis, migrate, web1/web2, events1/events2, grpc1/grpc2,
## nginx, Prometheus, wait until the proxy and the events replicas are ready, seed the demo user and print its credentials.
cluster-up:
	docker/cluster.sh up

## cluster-down: stop and remove the containers and the network; `make cluster-down VOLUMES=1` removes the volumes too.
cluster-down:
	docker/cluster.sh down $(if $(VOLUMES),--volumes)

## cluster-test: tests/cluster against the running cluster (make cluster-up first).
cluster-test: $(VENV)/.installed-dev
	docker/cluster.sh test

clean:
	rm -rf $(VENV) var
