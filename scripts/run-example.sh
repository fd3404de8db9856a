#!/usr/bin/env bash
# Sets up, builds and runs the main example: the example system (Orders,
# Reservations, Payments) as three gRPC servers started by
# eventsourcing_grpc_runner, each application in its own SQLite database under
# build/example-db/; creates orders with eventsourcing_grpc_client, shows each
# one paid and Orders' notification log, and stops the runner.
# Usage: scripts/run-example.sh [NUMBER_OF_ORDERS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
n_orders="${1:-3}"
case "$n_orders" in
  '' | *[!0-9]* | 0) echo "usage: scripts/run-example.sh [NUMBER_OF_ORDERS]   (default 3)" >&2; exit 2 ;;
esac
scripts/setup.sh
db_dir="$PWD/build/example-db"
rm -rf "$db_dir" && mkdir -p "$db_dir"
export PERSISTENCE_MODULE=eventsourcing.sqlite
export ORDERS_SQLITE_DBNAME="$db_dir/orders.db"
export RESERVATIONS_SQLITE_DBNAME="$db_dir/reservations.db"
export PAYMENTS_SQLITE_DBNAME="$db_dir/payments.db"
export ORDERS_GRPC_SERVER_ADDRESS="${ORDERS_GRPC_SERVER_ADDRESS:-localhost:50051}"
export RESERVATIONS_GRPC_SERVER_ADDRESS="${RESERVATIONS_GRPC_SERVER_ADDRESS:-localhost:50052}"
export PAYMENTS_GRPC_SERVER_ADDRESS="${PAYMENTS_GRPC_SERVER_ADDRESS:-localhost:50053}"
export GRPC_DNS_RESOLVER=native
client=build/eventsourcing_grpc_client

build/eventsourcing_grpc_runner eventsourcing_grpc.example:system >"$db_dir/runner.log" 2>&1 &
runner=$!
trap 'kill -TERM $runner 2>/dev/null; wait $runner 2>/dev/null; echo "runner stopped"' EXIT
for _ in $(seq 200); do
  grep -q "running" "$db_dir/runner.log" && break
  kill -0 $runner 2>/dev/null || { cat "$db_dir/runner.log"; exit 1; }
  sleep 0.05
done
cat "$db_dir/runner.log"

for _ in $(seq "$n_orders"); do
  started=$(date +%s%N)
  order=$("$client" Orders call create_new_order)
  paid=false
  for _ in $(seq 500); do
    paid=$("$client" Orders call is_order_paid "[$order]")
    [ "$paid" = true ] && break
    sleep 0.01
  done
  elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  id=$(sed 's/.*"_data_":"\([0-9a-f]*\)".*/\1/' <<<"$order")
  echo "order $id paid: $paid (within $elapsed_ms ms, polling with the command-line client)"
  [ "$paid" = true ] || exit 1
done
echo "Orders' notifications:"
"$client" Orders notifications 1 9 | cut -c1-110
