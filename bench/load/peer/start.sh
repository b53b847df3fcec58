#!/usr/bin/env bash
# Start Label Studio 1.23.2 (installed by install.sh into .venv-peer) as it runs best: PostgreSQL
# (a fresh database, PEER_DB), gunicorn with 3 sync workers, persistent connections, DEBUG off.
#   bench/load/peer/start.sh TASKS     seeds TASKS tasks; writes var/peer/seed.json and the pid
#   bench/load/peer/stop.sh            stops exactly that gunicorn (its process group)
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT="$PWD"
DIR="$ROOT/var/peer"
VENV="$ROOT/.venv-peer"
TASKS="${1:-20000}"
PEER_PG="${PEER_PG:-postgres://postgres@127.0.0.1:5432}"
PEER_DB="${PEER_DB:-ls_bench}"
PEER_PORT="${PEER_PORT:-8401}"
LS="$("$VENV/bin/python" -c 'import label_studio, os; print(os.path.dirname(label_studio.__file__))')"
mkdir -p "$DIR/data"
if [ -f "$DIR/gunicorn.pid" ]; then echo "peer: already running (var/peer/gunicorn.pid)" >&2; exit 1; fi

psql "$PEER_PG/postgres" -qX -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS $PEER_DB WITH (FORCE)" -c "CREATE DATABASE $PEER_DB"
export DJANGO_DB=default POSTGRE_NAME="$PEER_DB" POSTGRE_USER=postgres POSTGRE_PASSWORD= \
  POSTGRE_HOST=127.0.0.1 POSTGRE_PORT=5432 LABEL_STUDIO_BASE_DATA_DIR="$DIR/data" \
  DJANGO_SETTINGS_MODULE=core.settings.label_studio PYTHONPATH="$ROOT/bench/load/peer:$LS" \
  LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true DEBUG=false SENTRY_DSN= COLLECT_ANALYTICS=false \
  LOG_LEVEL=WARNING
"$VENV/bin/python" "$LS/manage.py" migrate --noinput -v0 >"$DIR/migrate.log" 2>&1
"$VENV/bin/python" "$ROOT/bench/load/peer/seed_ls.py" "$TASKS" | tail -n 1 >"$DIR/seed.json"
setsid "$VENV/bin/gunicorn" --workers 3 --worker-class sync --bind "127.0.0.1:$PEER_PORT" \
  --chdir "$LS" --timeout 60 ls_bench_wsgi:application </dev/null >"$DIR/gunicorn.log" 2>&1 &
echo $! >"$DIR/gunicorn.pid"
for _ in $(seq 1 120); do
  if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PEER_PORT/health"; then
    echo "peer: Label Studio at http://127.0.0.1:$PEER_PORT (pid $(cat "$DIR/gunicorn.pid"))"
    exit 0
  fi
  sleep 0.5
done
echo "peer: Label Studio did not start; see var/peer/gunicorn.log" >&2
exit 1
