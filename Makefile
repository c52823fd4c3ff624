# Closeloop: `make run` starts the portal with demo data, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install clean bench reliability

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet ".[test]"
	touch $@

install: $(VENV)/.installed

# Migrates, loads the demo data (idempotent), gives it SLA clocks, schedules the
# SLA sweep and the dashboard rollups and builds them once, then runs the web server and a django-q2 worker side by side; Ctrl-C
# stops both.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py sla_backfill
	$(PY) manage.py sla_schedule
	$(PY) manage.py outbox_schedule
	$(PY) manage.py dashboard_rollup
	$(PY) manage.py triage_schedule
	@trap 'kill 0' INT TERM EXIT; \
	$(PY) manage.py qcluster & \
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

# Runs on SQLite by default; set DATABASE_URL=postgres://… for PostgreSQL.
test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks (docs/benchmarks.md): for each size, a fresh PostgreSQL database
# closeloop_bench<size>, generated data, then `manage.py bench`, whose table replaces
# that size's section of docs/benchmarks.md. Needs `ab` (apt-get install apache2-utils).
# BENCH_REGENERATE=0 benchmarks the existing databases without rebuilding them.
BENCH_HOST ?= 127.0.0.1
BENCH_USER ?= postgres
BENCH_SIZES ?= 100k:100000 1M:1000000
BENCH_REGENERATE ?= 1
BENCH_ARGS ?=
bench: install
	@set -e; for spec in $(BENCH_SIZES); do \
	  label=$${spec%%:*}; tickets=$${spec##*:}; \
	  db=closeloop_bench$$(echo $$label | tr A-Z a-z); \
	  url=postgres://$(BENCH_USER)@$(BENCH_HOST):5432/$$db; \
	  if [ "$(BENCH_REGENERATE)" = 1 ]; then \
	    dropdb -h $(BENCH_HOST) -U $(BENCH_USER) --if-exists $$db; \
	    createdb -h $(BENCH_HOST) -U $(BENCH_USER) $$db; \
	    DATABASE_URL=$$url $(PY) manage.py migrate --noinput -v0; \
	    DATABASE_URL=$$url $(PY) manage.py generate_data --tickets $$tickets; \
	  fi; \
	  DATABASE_URL=$$url $(PY) manage.py migrate --noinput -v0; \
	  DATABASE_URL=$$url $(PY) manage.py dashboard_rollup --days 731; \
	  DATABASE_URL=$$url $(PY) manage.py bench --label $$label --markdown docs/benchmarks.md $(BENCH_ARGS); \
	done

# Fault run (docs/reliability.md): signed intakes while PostgreSQL restarts, then a
# django-q2 worker SIGKILLed mid-sweep, on a throwaway cluster of its own.
RELIABILITY_ARGS ?= --intakes 3000 --clients 16 --restarts 2 --sweep-tickets 1000
reliability: install
	$(PY) bench/reliability.py $(RELIABILITY_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 media staticfiles
