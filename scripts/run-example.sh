#!/usr/bin/env bash
# Sets up, builds and runs the main example on the embedded default: the
# example system (Orders, Reservations, Payments) in process, each application
# in its own SQLite database under build/example-db/. The gRPC servers and the
# runner come with the next issues.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
db_dir="$PWD/build/example-db"
rm -rf "$db_dir" && mkdir -p "$db_dir"
export PERSISTENCE_MODULE=eventsourcing.sqlite
export ORDERS_SQLITE_DBNAME="$db_dir/orders.db"
export RESERVATIONS_SQLITE_DBNAME="$db_dir/reservations.db"
export PAYMENTS_SQLITE_DBNAME="$db_dir/payments.db"
build/example_system "${1:-3}"
