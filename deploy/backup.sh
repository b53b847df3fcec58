#!/usr/bin/env bash
# Back up Crowdmint: the PostgreSQL database (pg_dump, custom format) and the media directory.
#   deploy/backup.sh DEST_DIR
# Reads DATABASE_URL (or DATABASE_URL_FILE) and MEDIA_ROOT from the environment. Writes
# DEST_DIR/crowdmint-<UTC time>.dump and .media.tar.gz, and prints their SHA-256. Copy both off
# the host (the ledger and payout batches are in the dump: losing it loses who was paid what).
set -euo pipefail
dest="${1:?usage: backup.sh DEST_DIR}"
url="${DATABASE_URL:-}"
if [ -n "${DATABASE_URL_FILE:-}" ]; then url="$(cat "$DATABASE_URL_FILE")"; fi
: "${url:?DATABASE_URL or DATABASE_URL_FILE must be set}"
: "${MEDIA_ROOT:?MEDIA_ROOT must be set}"
mkdir -p "$dest"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
# --format=custom: compressed, restorable table by table with pg_restore, in parallel (-j).
pg_dump --format=custom --no-owner --no-privileges --file "$dest/crowdmint-$stamp.dump" "$url"
tar -C "$MEDIA_ROOT" -czf "$dest/crowdmint-$stamp.media.tar.gz" .
(cd "$dest" && sha256sum "crowdmint-$stamp.dump" "crowdmint-$stamp.media.tar.gz")
