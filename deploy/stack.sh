#!/usr/bin/env bash
# A production-like Crowdmint on 127.0.0.1, from this machine's PostgreSQL and Redis:
#   deploy/stack.sh start   (make stack)      deploy/stack.sh stop   (make stack-stop)
# start: a fresh database (STACK_DB, dropped and created), migrations, collectstatic, a Hardhat
# node with the token deployed, gunicorn with deploy/gunicorn.conf.py, four Celery workers on
# different queues (decisions; refits and the default queue; fraud checks; payouts with
# concurrency 1) and beat. Each process runs
# in its own session; its pid (= its process group) goes to var/stack/<name>.pid and its log to
# var/stack/<name>.log. The settings every process got are in var/stack/env (source it to talk to
# the stack, e.g. the load benchmark does).
# stop: signals exactly the process groups named in var/stack/*.pid (after checking that each pid
# is still the process it started), waits, and removes the pid files.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIR="$ROOT/var/stack"
BIN="$ROOT/.venv/bin"

STACK_PG="${STACK_PG:-postgres://postgres@127.0.0.1:5432}"
STACK_DB="${STACK_DB:-crowdmint_stack}"
STACK_REDIS="${STACK_REDIS:-redis://127.0.0.1:6379/14}"
STACK_PORT="${STACK_PORT:-8400}"
STACK_CHAIN_PORT="${STACK_CHAIN_PORT:-8945}"
# Decisions are short (a few ms) and wait on PostgreSQL and Redis: two processes, each reserving
# up to 8 messages so that the next decision is at hand when one ends (they are acknowledged
# late: a reserved message of a killed worker goes back to the queue). A pool of threads was 4x
# slower here (the GIL), and prefetching one message at a time 1.6x slower.
STACK_WORKER_POOL="${STACK_WORKER_POOL:-prefork}"
STACK_WORKER_CONCURRENCY="${STACK_WORKER_CONCURRENCY:-2}"
STACK_WORKER_PREFETCH="${STACK_WORKER_PREFETCH:-8}"
# Niceness of gunicorn and of the Celery workers. On one host the requests go first: the
# workers (decisions in batches, fraud checks) run at 5 and use what the web leaves. Measured at
# 32 clients, three labelers per item: 395-408 req/s, p99 236-288 ms, decision lag p99 0.34-0.75 s
# at 5; 355-375 req/s, p99 260-273 ms, lag p99 0.19 s at 0.
STACK_WEB_NICE="${STACK_WEB_NICE:-0}"
STACK_WORKER_NICE="${STACK_WORKER_NICE:-5}"
# Hardhat's account #0: a public test key every Hardhat node prefunds, never a real one.
HARDHAT_KEY_0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

log() { printf 'stack: %s\n' "$*"; }

# Start "$@" in its own session, detached; record its pid (its process group's id).
spawn() {
  local name="$1"; shift
  setsid "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
  log "$name started (pid $!, log var/stack/$name.log)"
}

wait_http() {  # URL WHAT [CURL ARGS...]
  local url="$1" what="$2"; shift 2
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  log "$what did not answer at $url"; return 1
}

# The pid files whose process is still the one we started (same session leader, our command).
alive() {
  local pidfile="$1" pid
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # Still a session leader in var/stack's stack: its session id is its own pid.
  [ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ]
}

stop() {
  shopt -s nullglob
  local pidfiles=("$DIR"/*.pid)
  if [ ${#pidfiles[@]} -eq 0 ]; then log "nothing to stop"; return 0; fi
  for pidfile in "${pidfiles[@]}"; do
    if alive "$pidfile"; then
      kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  for pidfile in "${pidfiles[@]}"; do
    local name; name="$(basename "$pidfile" .pid)"
    for _ in $(seq 1 60); do
      alive "$pidfile" || break
      sleep 0.5
    done
    if alive "$pidfile"; then
      log "$name did not stop in 30 s: SIGKILL to its process group"
      kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    log "$name stopped"
  done
}

start() {
  mkdir -p "$DIR"
  if compgen -G "$DIR/*.pid" >/dev/null; then
    log "already running (var/stack/*.pid exist): make stack-stop first"; exit 1
  fi
  test -x "$BIN/python" || { log "no .venv: run make venv"; exit 1; }
  # A failure half-way stops whatever this start had started.
  trap 'log "start failed: stopping what was started"; stop' ERR
  pg_isready -d "$STACK_PG/postgres" -q || { log "PostgreSQL is not reachable at $STACK_PG"; exit 1; }
  "$BIN/python" -c "import redis,sys; redis.Redis.from_url(sys.argv[1]).ping()" "$STACK_REDIS" \
    || { log "Redis is not reachable at $STACK_REDIS"; exit 1; }
  if [ ! -d rewards/contracts/node_modules/hardhat ]; then
    log "installing the npm modules for the Hardhat node (npm ci)"
    (cd rewards/contracts && npm ci --no-audit --no-fund --loglevel=error)
  fi

  psql "$STACK_PG/postgres" -qX -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $STACK_DB WITH (FORCE)" -c "CREATE DATABASE $STACK_DB"
  "$BIN/python" -c "import redis,sys; redis.Redis.from_url(sys.argv[1]).flushdb()" "$STACK_REDIS"
  rm -rf "$DIR/media" "$DIR/metrics" && mkdir -p "$DIR/media" "$DIR/metrics"

  cat >"$DIR/env" <<ENV
export CROWDMINT_ENV=production
export DJANGO_SECRET_KEY=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(50))')
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
export DJANGO_SECURE_SSL_REDIRECT=0
export DATABASE_URL=$STACK_PG/$STACK_DB
export DATABASE_CONN_MAX_AGE=600
export REDIS_URL=$STACK_REDIS
export CHAIN_RPC_URL=http://127.0.0.1:$STACK_CHAIN_PORT
export CHAIN_PRIVATE_KEY=$HARDHAT_KEY_0
export MEDIA_ROOT=$DIR/media
export STATIC_ROOT=$DIR/static
export GUNICORN_BIND=127.0.0.1:$STACK_PORT
export PROMETHEUS_MULTIPROC_DIR=$DIR/metrics
export METRICS_ALLOWED_NETWORKS=127.0.0.0/8
export LOG_FORMAT=json
export LOG_LEVEL=WARNING
export API_RATE=${STACK_API_RATE:-600000/minute}
export LABEL_RATE=${STACK_LABEL_RATE:-120/minute}
export STACK_URL=http://127.0.0.1:$STACK_PORT
ENV
  # shellcheck disable=SC1091
  source "$DIR/env"

  spawn hardhat env HARDHAT_DISABLE_TELEMETRY_PROMPT=true \
    bash -c "cd rewards/contracts && exec npx --no-install hardhat node --hostname 127.0.0.1 --port $STACK_CHAIN_PORT"
  "$BIN/python" manage.py migrate --noinput -v0
  "$BIN/python" manage.py collectstatic --noinput -v0
  wait_http "$CHAIN_RPC_URL" "the Hardhat node" -X POST -H 'content-type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
  address="$("$BIN/python" manage.py deploy_token | sed -n 's/^export CHAIN_TOKEN_ADDRESS=//p')"
  echo "export CHAIN_TOKEN_ADDRESS=$address" >>"$DIR/env"
  export CHAIN_TOKEN_ADDRESS="$address"
  log "token deployed at $address"

  spawn gunicorn nice -n "$STACK_WEB_NICE" "$BIN/gunicorn" -c deploy/gunicorn.conf.py config.wsgi
  spawn worker-decisions nice -n "$STACK_WORKER_NICE" "$BIN/celery" -A config worker -Q decisions -n "decisions@%h" \
    --pool "$STACK_WORKER_POOL" --concurrency "$STACK_WORKER_CONCURRENCY" --loglevel "$LOG_LEVEL" \
    --prefetch-multiplier "$STACK_WORKER_PREFETCH" \
    --without-gossip --without-mingle
  # Refits, export builds and the beat jobs: minutes of work that must not hold a decision back.
  spawn worker-background nice -n "$STACK_WORKER_NICE" "$BIN/celery" -A config worker \
    -Q celery,consensus -n "background@%h" --concurrency 1 --loglevel "$LOG_LEVEL" \
    --without-gossip --without-mingle
  # The fraud checks on their own process: a burst of them never holds a decision back.
  spawn worker-moderation nice -n "$STACK_WORKER_NICE" "$BIN/celery" -A config worker -Q moderation -n "moderation@%h" \
    --concurrency 1 --loglevel "$LOG_LEVEL" --without-gossip --without-mingle
  spawn worker-payouts "$BIN/celery" -A config worker -Q payouts -n "payouts@%h" \
    --concurrency 1 --loglevel "$LOG_LEVEL" --without-gossip --without-mingle
  spawn beat "$BIN/celery" -A config beat --schedule "$DIR/beat-schedule" --loglevel "$LOG_LEVEL"
  wait_http "$STACK_URL/api/v1/health/ready" "gunicorn"
  log "up: $STACK_URL (readiness: $STACK_URL/api/v1/health/ready); settings in var/stack/env"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
