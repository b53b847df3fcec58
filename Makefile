# Crowdmint: `make demo` serves a seeded platform at http://127.0.0.1:8000; `make test` lints and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed-stamp
# The integration run (CI=true) uses these; override to point at your own services.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crowdmint
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo test lint unit integration test-gpu venv contracts bench-gas bench-consensus bench-gpu bench-exports clean \
	stack stack-stop bench-load

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
	$(BIN)/mypy --strict accounts config frontend labeling market moderation rewards

unit: venv
	env -u DATABASE_URL -u REDIS_URL -u CHAIN_RPC_URL $(BIN)/pytest -m "not integration and not gpu"

# Real PostgreSQL, Redis, Celery worker processes, a Hardhat JSON-RPC node and Chromium. A missing
# service fails the run.
integration: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CI=true \
		$(BIN)/pytest -m "integration and not gpu"

# On a machine with a CUDA GPU and torch's CUDA build installed in the venv.
test-gpu: venv
	$(BIN)/pytest -m gpu tests/consensus

test: lint unit
ifeq ($(CI),true)
	$(MAKE) integration
endif

# A production-like stack on 127.0.0.1 from this machine's PostgreSQL and Redis: gunicorn, four
# Celery workers (decisions; refits and the default queue; fraud checks; payouts), beat and a
# Hardhat node (deploy/stack.sh; pids in var/stack/).
stack: venv
	bash deploy/stack.sh start

stack-stop:
	bash deploy/stack.sh stop

# Annotation submits against `make stack` and Label Studio 1.23.2 (its own venv, .venv-peer), with
# the same load generator in the same run: 1, 8, 32 and 128 clients, 60 s each, both shapes.
# Quick look: make bench-load LOAD_ARGS="--clients 32 --seconds 10"
LOAD_ARGS ?=
bench-load: venv
	bash bench/load/all.sh $(LOAD_ARGS)

# Rebuild the reward token's ABI and bytecode from source (needs Node 20 and npm).
contracts:
	cd rewards/contracts && npm ci --no-audit --no-fund && node build.mjs

bench-gas: venv
	$(BIN)/python bench/gas/batch_mint.py

# crowd-kit is a comparison baseline only: it lives in its own venv, never in requirements.txt.
bench-consensus: venv
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -r bench/consensus/requirements.txt
	PYTHONPATH=. .venv-bench/bin/python bench/consensus/accuracy.py
	PYTHONPATH=. .venv-bench/bin/python bench/consensus/heldout.py
	PYTHONPATH=. .venv-bench/bin/python bench/consensus/speed.py
	PYTHONPATH=. $(BIN)/python bench/consensus/calibration.py
	PYTHONPATH=. $(BIN)/python bench/consensus/redundancy.py

# On a machine with a CUDA GPU and torch's CUDA build in the venv: up to 100M answers.
bench-gpu: venv
	PYTHONPATH=. $(BIN)/python bench/consensus/gpu.py

# Export (background and streamed) and import of 10k and 100k records: time and peak memory, on
# SQLite, and on PostgreSQL with BENCH_DATABASE_URL=postgres://.../crowdmint_bench (dropped and
# made again).
# Label Studio 1.23.2 is measured in the same run: its own venv, installed by bench/load/peer/install.sh.
bench-exports: venv
	bash bench/load/peer/install.sh
	$(BIN)/python bench/exports/bench.py --records 10000,100000 --peer .venv-peer $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL) --out bench/exports/results-postgresql.md)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
