# The two commands: `make demo` (set up everything, run the service and a demo purchase) and
# `make test` (set up everything, run the whole suite). `make stop` ends what `make demo` started.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install test-deps chromium demo stop test lint unit integration chaos adversary bench clean

install: $(VENV)/.installed node_modules/.installed .dev/.postgres-binaries

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# PostgreSQL's server binaries, for the project-local cluster used when DATABASE_URL is not set.
.dev/.postgres-binaries:
	@mkdir -p .dev
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing PostgreSQL server binaries"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi
	touch $@

# What the tests need beyond the service: the official x402 TypeScript clients (tests/interop, pinned)
# and Debian's chromium for the browser tests (playwright drives it; no browser download).
test-deps: tests/interop/node_modules/.installed chromium

tests/interop/node_modules/.installed: tests/interop/package.json tests/interop/package-lock.json
	npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
	touch $@

chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: install
	bin/x402-mint dev up
	bin/x402-mint demo
	@echo "The service keeps running: supervisorctl -c supervisord.conf status; make stop ends it."

stop:
	bin/x402-mint dev down

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy shared api workers cli
	$(BIN)/lint-imports
	$(BIN)/deptry .

unit: install
	$(BIN)/pytest tests/unit

integration: install test-deps
	$(BIN)/pytest tests/integration

test: install test-deps lint
	$(BIN)/pytest

clean: stop
	rm -rf .dev

# A longer chaos run than the suite's (sized by CHAOS_PAYMENTS, default 1000 here).
chaos: install
	CHAOS_PAYMENTS=$${CHAOS_PAYMENTS:-1000} $(BIN)/pytest tests/integration/test_chaos.py -s -p no:cacheprovider

# A longer adversarial run than the suite's (sized by ADVERSARY_STEPS, default 600 here).
adversary: install
	ADVERSARY_STEPS=$${ADVERSARY_STEPS:-600} $(BIN)/pytest tests/integration/test_adversary.py -s -p no:cacheprovider

# Benchmarks against the running dev environment (started if needed). Figures, not tests.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	bin/x402-mint dev up
	bin/x402-mint bench latency
	bin/x402-mint bench settle
	bin/x402-mint bench ingress
	bin/x402-mint bench e2e --payments 3000 --rate 60
	bin/x402-mint bench e2e --payments 3000
	bin/x402-mint bench e2e --payments 3000 --copies 2
	bin/x402-mint bench e2e --mixed --payments 3000 --rate 20
	bin/x402-mint bench e2e --quantity 10 --payments 300 --buyers 100 --rate 10
	bin/x402-mint bench growth
