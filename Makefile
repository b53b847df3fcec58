# Crowdmint: `make demo` serves a seeded platform at http://127.0.0.1:8000; `make test` lints and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed-stamp
# The integration run (CI=true) uses these; override to point at your own services.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crowdmint
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo test lint unit integration venv contracts bench-gas clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Crowdmint needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# A fresh SQLite database and a fresh in-process chain at every start; everything runs in one
# process (the embedded EVM can't be shared between processes), with Celery eager.
demo: venv
	mkdir -p var
	rm -rf var/demo.sqlite3 var/demo-media
	env -u REDIS_URL -u CHAIN_RPC_URL -u CHAIN_PRIVATE_KEY -u CHAIN_TOKEN_ADDRESS \
		CROWDMINT_DEMO=1 DATABASE_URL=sqlite:///var/demo.sqlite3 MEDIA_ROOT=var/demo-media \
		$(BIN)/python manage.py demo --port $(PORT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: venv
	env -u DATABASE_URL -u REDIS_URL -u CHAIN_RPC_URL $(BIN)/pytest -m "not integration"

# Real PostgreSQL, Redis, Celery worker processes, a Hardhat JSON-RPC node and Chromium. A missing
# service fails the run.
integration: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CI=true \
		$(BIN)/pytest -m integration

test: lint unit
ifeq ($(CI),true)
	$(MAKE) integration
endif

# Rebuild the reward token's ABI and bytecode from source (needs Node 20 and npm).
contracts:
	cd rewards/contracts && npm ci --no-audit --no-fund && node build.mjs

bench-gas: venv
	$(BIN)/python bench/gas/batch_mint.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
