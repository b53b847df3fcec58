#!/usr/bin/env bash
# Label Studio 1.23.2, the load benchmark's peer: its own venv (.venv-peer), never a dependency of
# Crowdmint. Installed from PyPI by name and version; nothing of it is copied into this repository.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-peer
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# psycopg2 for PostgreSQL; gunicorn to serve it as it is best served (sync workers).
"$VENV/bin/pip" install --quiet label-studio==1.23.2 gunicorn
"$VENV/bin/python" -c 'import label_studio; print("label-studio", label_studio.__version__)'
