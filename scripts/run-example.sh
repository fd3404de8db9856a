#!/usr/bin/env bash
# Sets up, builds and runs the main example on the embedded default (SQLite,
# in a fresh database under build/). Today that is the event-sourcing core on
# its own; the example system and its gRPC servers come with the next issues.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
db="$PWD/build/quickstart.db"
rm -f "$db" "$db-wal" "$db-shm"
PERSISTENCE_MODULE=eventsourcing.sqlite SQLITE_DBNAME="$db" build/quickstart
