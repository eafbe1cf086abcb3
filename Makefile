# The README's two commands are `make demo` and `make test`; the other targets are what CI runs
# (see .ci/run). Every target builds the virtual environment from uv.lock first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The interpreter the virtual environment is built from. In this repository `python3` is 3.12
# through pyenv's .python-version; elsewhere run e.g. `make demo PYTHON=python3.12`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
# Catalogues under locale/ (English is the source language).
LANGS := es fr de nl
PYTEST_ARGS ?=
# Where `make demo` serves the portal.
DEMO_ADDR ?= 127.0.0.1:8000

# uv must use the interpreter it is given, never download one.
export UV_PYTHON_DOWNLOADS := never

.PHONY: help venv messages demo test lint typecheck translations translations-check check-deploy \
	bench-customers bench-billing bench-billing-scaleout bench-pdf bench-soak bench-dashboard \
	bench-statements bench-api

help:
	@echo "make demo               run the portal with demo data on http://$(DEMO_ADDR)"
	@echo "make test               run the test suite (PYTEST_ARGS='-k name' to select)"
	@echo "make lint               ruff check + ruff format --check"
	@echo "make typecheck          mypy"
	@echo "make translations       update the $(LANGS) catalogues from the code"
	@echo "make translations-check update the catalogues, fail on untranslated or fuzzy entries"
	@echo "make check-deploy       manage.py check --deploy with production settings"
	@echo "make bench-customers    Customers page benchmark at 100,000 customers (PostgreSQL)"
	@echo "make bench-billing      billing run at 1,000 and 10,000 subscriptions vs its psycopg floor"
	@echo "make bench-billing-scaleout  10,000 subscriptions issued by 1, 2 and 4 Celery processes"
	@echo "make bench-statements   monthly commission statements for 1,000 resellers vs its psycopg floor"
	@echo "make bench-pdf          invoice PDFs vs a minimal document, 10 and 100 lines, worker memory"
	@echo "make bench-soak         5-minute soak of gunicorn, Celery and beat: 0 errors, flat memory"
	@echo "make bench-dashboard    dashboard vs minimal view throughput on gunicorn, 10,000 customers"
	@echo "make bench-api          API customer list vs minimal view on gunicorn; webhook deliveries/s"

# The virtual environment, exactly as uv.lock says (dev group included: tests and linters).
venv:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null || { \
		echo "error: Python 3.12 or newer is needed, '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2; \
		echo "       Install 3.12 (pyenv reads .python-version) or run 'make $(MAKECMDGOALS) PYTHON=python3.12'." >&2; \
		exit 1; }
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv sync --frozen --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	@# The libraries' bytecode, compiled once per uv.lock: uv installs none, and where
	@# PYTHONDONTWRITEBYTECODE is set (as in many CI images) every process (each test process,
	@# Celery worker and gunicorn the tests start) would otherwise compile Django and the rest
	@# from source again, seconds each.
	@[ $(VENV)/.bytecode -nt uv.lock ] || { $(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null && touch $(VENV)/.bytecode; }

# Compiled catalogues (*.mo) are not under version control: built from locale/*.po, each only
# when its .po is newer (msgfmt as compilemessages runs it), so a second run does nothing.
MO_FILES := $(foreach lang,$(LANGS),locale/$(lang)/LC_MESSAGES/django.mo)
messages: venv $(MO_FILES)

locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po
	@command -v msgfmt >/dev/null 2>&1 || { \
		echo "error: msgfmt (GNU gettext) is missing; install it: apt-get install gettext" \
			"(macOS: brew install gettext)." >&2; \
		exit 1; }
	msgfmt --check-format -o $@ $<

# Links in the demo's emails point where it serves, unless PORTAL_URL is set. One process
# migrates (when a migration is pending), loads the demo data (when missing) and serves
# (demo_serve), listing the demo users once the server is up, below the emails the seed printed.
DEMO_PORTAL_URL = $(or $(PORTAL_URL),http://$(if $(findstring :,$(DEMO_ADDR)),$(DEMO_ADDR),127.0.0.1:$(DEMO_ADDR)))
demo: messages
	DJANGO_SETTINGS_MODULE=config.settings.local PORTAL_URL=$(DEMO_PORTAL_URL) \
		$(MANAGE) demo_serve $(DEMO_ADDR)

# The settings come from pyproject.toml (config.settings.test), not from the caller's shell.
# Tests run in parallel processes (pytest-xdist), each on its own test database and cache
# prefix, a module per process at a time (its module fixtures run once); TEST_WORKERS=0 runs
# them in this process (for -x or --pdb). Modules are handed out in the order tests/conftest.py
# puts them (the longest first), not by their number of tests. The project's and the tests'
# bytecode is kept (__pycache__, ignored by git), so each process compiles them once.
TEST_WORKERS ?= 3
test: messages
	env -u DJANGO_SETTINGS_MODULE -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n $(TEST_WORKERS) \
		--dist loadscope --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: venv
	$(PY) -m mypy .

translations: venv
	$(MANAGE) makemessages $(addprefix -l ,$(LANGS)) --no-location --ignore=$(VENV) --ignore=staticfiles

translations-check: translations
	$(MANAGE) translations_check

# Dummy values for every secret production settings require (none of them is ever used to
# connect anywhere: check --deploy inspects settings only). A fresh random key every run.
# Except the database: Django's model checks ask PostgreSQL its version (GeneratedField), so
# this one must answer (the local server by default; nothing is written to it).
CHECK_DEPLOY_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
check-deploy: venv
	DJANGO_SETTINGS_MODULE=config.settings.production \
	DJANGO_SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	DJANGO_ALLOWED_HOSTS=portal.example.com PORTAL_URL=https://portal.example.com \
	DATABASE_URL=$(CHECK_DEPLOY_DATABASE_URL) \
	REDIS_URL=redis://redis.internal:6379/0 \
	GOOGLE_CLIENT_ID=123456789012-checkdeploy.apps.googleusercontent.com \
	GOOGLE_CLIENT_SECRET=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et \
	EMAIL_HOST=smtp.example.com \
	VENDOR_NAME="Check Deploy Ltd" VENDOR_ADDRESS="1 Check Street" VENDOR_COUNTRY=IE \
	VENDOR_VAT_ID=IE6388047V VENDOR_EMAIL=billing@example.com \
	VENDOR_BANK_IBAN=IE29AIBK93115212345678 VENDOR_BANK_BIC=AIBKIE2D \
	$(MANAGE) check --deploy --fail-level WARNING

# The Customers page at 100,000 customers against a minimal view (docs/benchmarks.md). The
# database is the benchmark's own: it is created if missing and its customers are replaced.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partner_portal_bench
BENCH_ARGS ?=
bench-customers: venv
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m benchmarks.customer_list $(BENCH_ARGS)

# The daily billing run at 1,000 and 10,000 subscriptions (docs/benchmarks.md), interleaved
# with its floor (the same statements through psycopg): per invoice at most 1.5x the floor, and
# 10x the subscriptions in at most 11x the time; the day and the next checked. Its own
# database, emptied and loaded on each run. BENCH_ARGS=--smoke (CI): correctness only.
BENCH_BILLING_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partner_portal_bench_billing
bench-billing: venv
	DATABASE_URL=$(BENCH_BILLING_DATABASE_URL) $(PY) -m benchmarks.billing_run $(BENCH_ARGS)

# The run fanned out to real Celery workers (1, 2 and 4 processes) with a redis-server of its
# own; the numbers checked gapless after each run (docs/benchmarks.md). Its own database.
BENCH_BILLING_SCALEOUT_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partner_portal_bench_billing_scaleout
bench-billing-scaleout: venv
	DATABASE_URL=$(BENCH_BILLING_SCALEOUT_DATABASE_URL) $(PY) -m benchmarks.billing_scaleout $(BENCH_ARGS)

# The monthly commission statement run for 1,000 resellers (docs/benchmarks.md), between two
# passes of its floor (the same rows through psycopg): at least 20 statements/s and per statement
# at most 8x the floor; the statements checked (gapless SB numbers, lines, margins + VAT, a
# second run issues nothing). Its own database, emptied and loaded on each run.
# BENCH_ARGS=--smoke (CI): 12 resellers, correctness only.
BENCH_STATEMENTS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partner_portal_bench_statements
bench-statements: venv
	DATABASE_URL=$(BENCH_STATEMENTS_DATABASE_URL) $(PY) -m benchmarks.statements_run $(BENCH_ARGS)

# Invoice PDF rendering in a warm worker process (docs/benchmarks.md): a 10-line invoice against
# a minimal PDF/A document rendered in the same rounds ("x minimal document"), a 100-line one at
# most 4x the 10-line one, the worker's memory over 1,000 renders. No database.
# BENCH_ARGS=--smoke (CI) checks the PDFs instead of timing them; --versus DIR measures another
# checkout side by side.
bench-pdf: venv
	$(PY) -m benchmarks.invoice_pdf $(BENCH_ARGS)

# A soak of the production-like stack (docs/benchmarks.md): its own redis-server, a fresh
# database (dropped and created; its name must contain "soak"), gunicorn with 3 workers, a
# Celery worker and beat; mixed traffic for SOAK_SECONDS. Fails on any 5xx or connection
# error, memory growth above 10 %, or an email not sent. CI runs it with SOAK_SECONDS=20.
BENCH_SOAK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partner_portal_bench_soak
SOAK_SECONDS ?= 300
bench-soak: venv
	DATABASE_URL=$(BENCH_SOAK_DATABASE_URL) SOAK_SECONDS=$(SOAK_SECONDS) $(PY) -m benchmarks.soak $(BENCH_ARGS)

# The dashboard's throughput against the minimal view's on gunicorn (docs/benchmarks.md): at
# least 0.40, at 10,000 customers with their subscriptions and activity. Its own database
# (created if missing; data loaded once) and its own redis-server.
BENCH_DASHBOARD_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partner_portal_bench_dashboard
bench-dashboard: venv
	DATABASE_URL=$(BENCH_DASHBOARD_DATABASE_URL) $(PY) -m benchmarks.dashboard $(BENCH_ARGS)

# The REST API's customer list against the minimal view on gunicorn, at 10,000 customers (the
# dashboard benchmark's stack and data), and webhook deliveries per second to a local receiver
# that verifies each signature: in-process and by 1 and 2 Celery processes (docs/benchmarks.md).
# Its own database (created if missing; data loaded once) and its own redis-server; the run
# raises API_RATE_LIMIT and allows the loopback receiver in its own environment. Every answer
# and delivery checked; no speed target held. BENCH_ARGS=--smoke (CI): 300 customers, 100 events.
BENCH_API_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/partner_portal_bench_api
bench-api: venv
	DATABASE_URL=$(BENCH_API_DATABASE_URL) $(PY) -m benchmarks.api $(BENCH_ARGS)
