# The two commands of the README:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
GRPC_PORT ?= 50051

.PHONY: run test lint install install-dev chromium prometheus clean

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
install-dev: $(VENV)/.installed-dev chromium prometheus

# The metrics tests lint a live scrape with `promtool check metrics` and let a real Prometheus scrape
# the service: Debian's package `prometheus` has both (installed, never started as a service here).
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; }

# The browser tests drive Debian's Chromium (no browser download): install it if it is missing.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## Install, migrate, create the demo user and tasks, and serve HTTP on 127.0.0.1:8000 and gRPC on
## 127.0.0.1:50051 (embedded: SQLite + local memory). Ctrl-C stops both. Both processes count their
## metrics in var/metrics (emptied at each start), so http://127.0.0.1:8000/metrics shows both.
run: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=1 $(BIN)/python manage.py seed_demo
	rm -rf var/metrics && mkdir -p var/metrics
	trap 'kill 0' INT TERM EXIT; \
	export DJANGO_DEBUG=1 PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/var/metrics; \
	$(BIN)/python manage.py grpcserver --host $(HOST) --port $(GRPC_PORT) & \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## Lint, architecture contracts, deploy check, migration drift, and the whole test suite.
test: install-dev lint
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@test -x tools/node_modules/.bin/buf || npm ci --prefix tools --no-audit --no-fund
	tools/node_modules/.bin/buf lint api_grpc/protos
	$(BIN)/mypy tasks core observability api_rest api_graphql api_grpc config
	DJANGO_SECRET_KEY=check-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	JWT_SIGNING_KEY=check-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	DJANGO_SETTINGS_MODULE=config.settings.production \
	$(BIN)/python manage.py check --deploy --fail-level WARNING
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
