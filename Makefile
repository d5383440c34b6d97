# Developer entry points. `make up` starts the dev stack, `make test` runs lint and the fast suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := libs/mspkit services/intake services/vendor_sync services/secrets_broker services/portal tools/devstack tools/vendor_sim
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
# Each package is type-checked on its own (each is its own installable package).
MYPY_TARGETS := libs/mspkit/mspkit services/intake/intake services/vendor_sync/vendor_sync \
	services/secrets_broker/secrets_broker services/portal/portal tools/devstack/mspctl tools/vendor_sim/vendor_sim

.PHONY: help venv up down status lint test test-slow bench

help:
	@echo "make up | down | status | test | test-slow | lint | bench | venv"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when a pyproject or the dev requirements changed.
$(STAMP): $(PYPROJECTS) requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(addprefix -e ,$(PACKAGES)) -r requirements-dev.txt
	touch $@

venv: $(STAMP)

up: venv
	$(BIN)/mspctl up --detach

down: venv
	$(BIN)/mspctl down

# `mspctl status` as it is (PART STATE PID), then the NAME URL lines `make up` printed.
status: venv
	@$(BIN)/mspctl status
	@$(BIN)/mspctl urls

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache --no-logo
	@for target in $(MYPY_TARGETS); do echo "mypy $$target"; $(BIN)/mypy $$target || exit 1; done

# pytest exits 5 when nothing was collected; any non-zero exit fails the target.
test: venv lint
	$(BIN)/pytest -m "not slow"

# The auth, tenancy and sign-in tests once more with the dev issuer's Entra-shaped tokens (roles array,
# pairwise sub, tenant in an extn. claim), read by the services through the MSP_AUTH_* settings alone.
ENTRA_TESTS := tests/mspkit/test_auth.py tests/security/test_service_token_replay.py \
	tests/intake/test_bola.py tests/intake/test_approvals.py tests/intake/test_internal.py \
	tests/secrets_broker/test_credentials.py tests/secrets_broker/test_release.py \
	tests/vendor_sync/test_api_registry.py tests/vendor_sync/test_api_domains.py \
	tests/portal/test_portal_signin.py tests/portal/test_portal_api_client.py

# The browser test drives Debian's chromium (Playwright cannot download browsers here).
test-slow: venv
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(BIN)/pytest -m slow
	MSP_DEV_TOKEN_PROFILE=entra $(BIN)/pytest $(ENTRA_TESTS)

bench: venv
	@shopt -s nullglob; files=(benchmarks/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "no benchmarks yet"; exit 0; fi; \
	for f in "$${files[@]}"; do echo "== $$f"; $(BIN)/python "$$f"; done
