#!/usr/bin/env bash
# The whole load benchmark (make bench-load): Label Studio installed in its own venv and started on
# PostgreSQL, `make stack` started, bench/load/run.py with the given arguments, then both stopped
# (by their pid files) whatever happened. Results: bench/load/results/<date>.{json,md}.
#   bash bench/load/all.sh [run.py arguments...]
set -euo pipefail
cd "$(dirname "$0")/../.."
PEER_TASKS="${PEER_TASKS:-120000}"
# Each load client answers as one or three accounts, hundreds of times a minute: in production
# that is a crowd of hundreds. The per-contributor label rate (120/minute by default) would
# measure the fraud defences, not the submit path, so the stack runs without it here.
export STACK_LABEL_RATE="${STACK_LABEL_RATE:-600000/minute}"
out="bench/load/results/$(date -u +%Y%m%dT%H%M%SZ).json"
cleanup() { bash bench/load/peer/stop.sh || true; bash deploy/stack.sh stop || true; }
trap cleanup EXIT
bash bench/load/peer/install.sh
bash bench/load/peer/start.sh "$PEER_TASKS"
bash deploy/stack.sh start
.venv/bin/python bench/load/run.py --out "$out" "$@"
echo "results: $out and ${out%.json}.md"
