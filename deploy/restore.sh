#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh into an EMPTY database and media directory.
#   deploy/restore.sh DUMP_FILE MEDIA_TARBALL
# Reads DATABASE_URL (or DATABASE_URL_FILE) and MEDIA_ROOT. Stop the web processes, workers and
# beat first (a payout worker running against a half-restored ledger could pay twice), restore,
# run `manage.py migrate` (a no-op when the code matches the dump) and start them again.
set -euo pipefail
dump="${1:?usage: restore.sh DUMP_FILE MEDIA_TARBALL}"
media="${2:?usage: restore.sh DUMP_FILE MEDIA_TARBALL}"
url="${DATABASE_URL:-}"
if [ -n "${DATABASE_URL_FILE:-}" ]; then url="$(cat "$DATABASE_URL_FILE")"; fi
: "${url:?DATABASE_URL or DATABASE_URL_FILE must be set}"
: "${MEDIA_ROOT:?MEDIA_ROOT must be set}"
if [ -n "$(ls -A "$MEDIA_ROOT" 2>/dev/null)" ]; then
  echo "MEDIA_ROOT $MEDIA_ROOT is not empty: restore into an empty directory" >&2
  exit 1
fi
# One transaction: a failed restore leaves the database as empty as it was.
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname "$url" "$dump"
mkdir -p "$MEDIA_ROOT"
tar -C "$MEDIA_ROOT" -xzf "$media"
echo "restored $dump and $media"
