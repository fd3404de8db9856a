#!/usr/bin/env bash
# The example system end to end through eventsourcing_grpc_runner on PostgreSQL,
# with one database for all applications and with one database each; and the
# database restarted while the servers run: they recover without a restart.
# Runs inside `postgres-test-server.sh run DIR --` (POSTGRES_* in the environment).
# Usage: test_postgres_system.sh RUNNER CLIENT
set -uo pipefail
runner_bin=$1
client_bin=$2
export GRPC_DNS_RESOLVER=native PERSISTENCE_MODULE=eventsourcing.postgres MAX_PULL_INTERVAL=1
: "${ESG_POSTGRES_TEST_SERVER:?run me with postgres-test-server.sh run}"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
n_passed=0
n_failed=0
check() {
  local what=$1; shift
  if "$@"; then n_passed=$((n_passed + 1)); else n_failed=$((n_failed + 1)); echo "FAILED: $what"; fi
}
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Creates an order and waits (up to 15 s) until it is paid.
order_paid() {
  local order paid
  order=$("$client_bin" Orders call create_new_order 2>"$work/err") || { cat "$work/err"; return 1; }
  for _ in $(seq 1500); do
    paid=$("$client_bin" Orders call is_order_paid "[$order]" 2>/dev/null)
    [ "$paid" = true ] && return 0
    sleep 0.01
  done
  echo "order $order not paid"
  for log in "$work"/*.log; do echo "--- $log (last lines)"; tail -n 20 "$log"; done
  return 1
}

run_system() { # run_system LABEL : starts the runner with the current environment
  export ORDERS_GRPC_SERVER_ADDRESS=localhost:$(free_port)
  export RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:$(free_port)
  export PAYMENTS_GRPC_SERVER_ADDRESS=localhost:$(free_port)
  "$runner_bin" eventsourcing_grpc.example:system >"$work/$1.log" 2>&1 &
  runner_pid=$!
  for _ in $(seq 200); do grep -q "running" "$work/$1.log" && return 0; sleep 0.05; done
  cat "$work/$1.log"; return 1
}

# One database for the three applications (tables orders_events, reservations_events, ...).
if run_system one-database; then
  for i in 1 2 3; do check "one database: order $i paid" order_paid; done
  # The database restarts under the running servers: calls in flight may fail, later ones work.
  "$ESG_POSTGRES_TEST_SERVER" restart "$ESG_POSTGRES_TEST_DIR" >/dev/null
  recovered=false
  for _ in $(seq 50); do
    if order_paid >/dev/null 2>&1; then recovered=true; break; fi
    sleep 0.1
  done
  check "servers recover from a database restart" $recovered
  check "and keep working" order_paid
  check "Orders' log holds 3 events per order" sh -c \
    "'$client_bin' Orders notifications 1 100 | awk '{print \$4}' | sort | uniq -c | awk '{print \$1}' | sort -u | grep -qx \"\$('$client_bin' Orders notifications 1 100 | grep -c Order.Created)\""
  kill -TERM $runner_pid; wait $runner_pid
  check "runner stops with exit 0" test $? -eq 0
else
  n_failed=$((n_failed + 1)); echo "FAILED: runner on one database"
fi

# One database per application.
"$ESG_POSTGRES_TEST_SERVER" createdb "$ESG_POSTGRES_TEST_DIR" orders reservations payments >/dev/null
export ORDERS_POSTGRES_DBNAME=orders RESERVATIONS_POSTGRES_DBNAME=reservations
export PAYMENTS_POSTGRES_DBNAME=payments
if run_system per-application; then
  for i in 1 2; do check "a database each: order $i paid" order_paid; done
  kill -TERM $runner_pid; wait $runner_pid
  check "runner stops with exit 0" test $? -eq 0
else
  n_failed=$((n_failed + 1)); echo "FAILED: runner with a database each"
fi

echo "$n_passed passed, $n_failed failed"
[ $n_failed -eq 0 ]
