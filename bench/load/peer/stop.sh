#!/usr/bin/env bash
# Stop the Label Studio gunicorn that start.sh started: its process group, by the recorded pid.
set -euo pipefail
cd "$(dirname "$0")/../../.."
pidfile=var/peer/gunicorn.pid
[ -f "$pidfile" ] || { echo "peer: not running"; exit 0; }
pid="$(cat "$pidfile")"
if [ "$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
  kill -TERM -- "-$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid"
fi
rm -f "$pidfile"
echo "peer: stopped"
