# Inflow: `make run` starts everything on embedded defaults; `make test` installs what tests need,
# runs `make lint` and then every test (CI: .ci/run). Other targets: lint, bench, keycloak,
# keycloak-stop, postgres, postgres-stop, nginx, ralph, reindex, check, clean.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HOST   ?= 127.0.0.1
PORT   ?= 8080
# `make run`'s local SMTP debugging server: the demo's e-mail notifications land in var/mail.log.
SMTP_PORT ?= 8025
export INFLOW_DATA_DIR ?= $(CURDIR)/var
# pytest-xdist workers for `make test`. Browser and Keycloak tests share one worker (one Chromium
# at a time, and they share the real Keycloak's users and sessions): tests/conftest.py groups them.
PYTEST_WORKERS ?= 2
RALPH_VENV := .cache/ralph-venv

.PHONY: run test lint bench install chromium wrk firefox extension-deps ralph reindex check clean help \
	postgres postgres-stop nginx

help:
	@echo "make run        start Keycloak and the server on http://$(HOST):$(PORT)/ with demo content"
	@echo "make test       install test dependencies, start Keycloak, make lint, run every test"
	@echo "make lint       ruff check and format, mypy --strict, import layers, eslint, prettier"
	@echo "make bench      benchmarks (figures printed)"
	@echo "make keycloak   start the local Keycloak on 127.0.0.1:8081 (idempotent)"
	@echo "make postgres   start the local PostgreSQL on 127.0.0.1:5433 (idempotent; docs/scale-out.md)"
	@echo "make nginx      install Debian's nginx for the proxy test and bench (docs/proxy.md)"
	@echo "make clean      remove the venv, data and caches"

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test,dev]'
	touch $@

install: $(VENV)/.installed

include Makefile.keycloak

run: install keycloak
	$(PY) -m server.sources.demo_git $(INFLOW_DATA_DIR)/demo-git
	INFLOW_BASE_URL=$${INFLOW_BASE_URL:-http://$(HOST):$(PORT)} $(PY) -m server import content/demo
	@echo ""
	@echo "  Inflow API     http://$(HOST):$(PORT)/api/v1/openapi.json"
	@echo "  Demo apps      http://$(HOST):$(PORT)/demo/"
	@echo "  Admin console  http://$(HOST):$(PORT)/admin  (admin/admin; analytics at /admin/analytics)"
	@echo "  (demo only: the analytics privacy threshold is 1 person so your own clicks show;"
	@echo "   the default, and what production should keep, is 5: INFLOW_ANALYTICS_MIN_GROUP)"
	@echo "  Keycloak       http://127.0.0.1:8081/  (demo users: see docs/sso.md)"
	@echo "  Sources        http://$(HOST):$(PORT)/admin/sources  (a feed, an intranet section and a"
	@echo "                 git repository served here; they sync at start-up: docs/sources.md)"
	@echo "  Extension      load extension/ unpacked in Chrome (see docs/extension.md)"
	@echo "  E-mail         a local SMTP debugging server on 127.0.0.1:$(SMTP_PORT) writes each"
	@echo "                 notification to $(INFLOW_DATA_DIR)/mail.log (tail -f it)"
	@echo ""
	mkdir -p $(INFLOW_DATA_DIR)
	$(PY) -u -m aiosmtpd -n -l 127.0.0.1:$(SMTP_PORT) >>$(INFLOW_DATA_DIR)/mail.log 2>&1 & \
	smtpd=$$!; trap 'kill $$smtpd 2>/dev/null' EXIT INT TERM; \
	INFLOW_SMTP_HOST=$${INFLOW_SMTP_HOST-127.0.0.1} INFLOW_SMTP_PORT=$${INFLOW_SMTP_PORT:-$(SMTP_PORT)} \
	INFLOW_CORS_ORIGINS=chrome-extension://$$(cat auth/extension-id.txt) \
	INFLOW_ANALYTICS_MIN_GROUP=$${INFLOW_ANALYTICS_MIN_GROUP:-1} \
	INFLOW_FETCH_ALLOW_PRIVATE=$${INFLOW_FETCH_ALLOW_PRIVATE:-1} \
	INFLOW_BASE_URL=$${INFLOW_BASE_URL:-http://$(HOST):$(PORT)} \
	  $(PY) -m server serve --host $(HOST) --port $(PORT)

chromium:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian's chromium (browser tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# wrk (make bench's load generator): Debian's package, as root; otherwise say how.
wrk:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's wrk (make bench)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	  else \
	    echo "make bench needs wrk: run 'sudo apt-get install wrk' (or make bench as root)"; \
	    exit 1; \
	  fi; }

# Firefox tests (tests/firefox/): Debian's firefox-esr and a geckodriver built from crates.io
# (about 4 minutes on 2 cores, once; kept in .cache/cargo). Never a downloaded browser or driver.
GECKODRIVER_VERSION := 0.37.1
GECKODRIVER := .cache/cargo/bin/geckodriver
CARGO ?= $(shell command -v cargo || echo $(HOME)/.cargo/bin/cargo)

firefox: $(GECKODRIVER)
	@command -v firefox-esr >/dev/null || { \
	  echo "Installing Debian's firefox-esr (Firefox tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq firefox-esr; }

$(GECKODRIVER):
	$(CARGO) install geckodriver --locked --version $(GECKODRIVER_VERSION) --root .cache/cargo

extension-deps: extension/node_modules/.package-lock.json

extension/node_modules/.package-lock.json: extension/package.json extension/package-lock.json
	cd extension && npm ci --no-audit --no-fund --loglevel=error

# The LRS that tests/test_analytics_xapi.py forwards to, pinned, in a venv of its own.
ralph: $(RALPH_VENV)/.installed

$(RALPH_VENV)/.installed: tests/ralph/requirements.txt
	test -x $(RALPH_VENV)/bin/python || $(PYTHON) -m venv $(RALPH_VENV)
	$(RALPH_VENV)/bin/pip install -q -r tests/ralph/requirements.txt
	touch $@

# PostgreSQL for the tests/pg/ profile and for many nodes (docs/scale-out.md): Debian's package, a
# private cluster in .cache/pg on 127.0.0.1:5433, roles and databases inflow and inflow_test.
postgres:
	server/db/pg.sh start

postgres-stop:
	server/db/pg.sh stop

# Debian's nginx and openssl for tests/proxy/ and the two-node bench (docs/proxy.md); the tests run
# nginx masters of their own, never the system's service (stopped and disabled here). Idempotent.
nginx:
	deploy/nginx/setup.sh

# Under CI=true (.ci/run) a skipped test fails the run; every test has a timeout (pyproject).
# tests/pg/ runs suites again with their storage on PostgreSQL, spread over the same workers.
test: lint chromium firefox ralph keycloak postgres nginx
	node --test --test-timeout=60000 extension/tests/
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

# The one list of static checks; `make test` runs it first.
lint: install extension-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	cd extension && npx eslint . && npx prettier --check .

bench: install chromium keycloak wrk
	$(PY) bench/run.py
	$(PY) bench/bench_sources.py
	server/db/pg.sh start && $(PY) bench/bench_follow.py
	server/db/pg.sh start && $(PY) bench/bench_join.py
	server/db/pg.sh start && deploy/nginx/setup.sh && $(PY) bench/bench_two_nodes.py

reindex: install
	$(PY) -m server reindex

check: install
	$(PY) -m server check

clean: keycloak-stop postgres-stop
	rm -rf $(VENV) var .cache test-artifacts .pytest_cache .mypy_cache .ruff_cache .hypothesis
