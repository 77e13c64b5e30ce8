# pgwarden: `make demo` runs the loop locally, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := postgresql-15 postgresql-15-hypopg prometheus prometheus-alertmanager prometheus-postgres-exporter docker-compose chromium fonts-noto-color-emoji

.PHONY: all test test-versions lint typecheck pytest demo bench services node venv python-venv clean

all: test

# Both programs' extras and the test tools, editable. setuptools' "Editable installation" notice (a build-backend
# warning pip shows for a local directory) is filtered by its text: errors and every other warning still show.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV) || { $(MAKE) --no-print-directory python-venv && python3 -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages for the real services the tests and the demo run; installed only when missing.
services:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Debian's python3 ships venv separately.
python-venv:
	if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict pgwarden exporter responder devtools

# -n auto: one worker per CPU, at most four, each a session with its own servers; a module's tests stay on one
# worker (tests/conftest.py). PYTEST_ARGS picks a subset: make pytest PYTEST_ARGS="tests/exporter -m 'not slow'".
PYTEST_WORKERS ?= auto
PYTEST_ARGS ?=
pytest: $(STAMP) services
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# The three side by side (mypy beside pytest), each one's output printed whole when it ends; fails if any fails.
test: $(STAMP)
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint typecheck pytest

# The collectors against every PostgreSQL major version RDS runs (pinned relocatable builds from the npm
# registry, cached by devtools.pgversions), then which families each version exported.
# Two versions at a time, each one's output printed whole when it ends.
PG_MAJORS ?= 13 14 15 16 17 18
test-versions: $(STAMP) services node
	@rm -rf .versions
	@$(MAKE) --no-print-directory -j2 --output-sync=target $(addprefix pg-version-,$(PG_MAJORS))
	$(PY) -m devtools.pgversions --summary .versions

pg-version-%:
	@echo "== PostgreSQL $*"
	PGWARDEN_PG_MAJOR=$* PGWARDEN_VERSION_SUMMARY=.versions $(VENV)/bin/pytest -q -p no:cacheprovider tests/exporter/collectors

# npm installs the PostgreSQL builds of the version matrix.
node:
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null; }

demo: $(STAMP) services
	$(PY) -m devtools.demo

bench: $(STAMP) services
	$(PY) -m bench.scrape
	$(PY) bench/webhook.py
	$(PY) bench/aws.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .demo .bench .versions
