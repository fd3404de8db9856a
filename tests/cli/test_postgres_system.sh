#!/usr/bin/env bash
# The example system end to end through eventsourcing_grpc_runner on PostgreSQL,
# with one database for all applications and with one database each; and the
# database restarted while the servers run: they recover without a restart; and a
# second replica of Reservations that stands by, then takes over within 2 s of a
# SIGKILL of the first, with no order reserved twice or not at all, the others reaching
# both replicas through one address (a list); and two replicas of Orders taking orders at
# once, each order pushed on at once whichever replica took it (pulls are a minute apart).
# Runs inside `postgres-test-server.sh run DIR --` (POSTGRES_* in the environment).
# Usage: test_postgres_system.sh RUNNER CLIENT SERVER
set -uo pipefail
runner_bin=$1
client_bin=$2
server_bin=$3
export GRPC_DNS_RESOLVER=native PERSISTENCE_MODULE=eventsourcing.postgres MAX_PULL_INTERVAL=1
: "${ESG_POSTGRES_TEST_SERVER:?run me with postgres-test-server.sh run}"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
. "$(dirname "$0")/../../scripts/lib/ports.sh"
# Creates an order (through ORDERS_GRPC_SERVER_ADDRESS, or the replica at the address given)
# and waits (up to 15 s) until it is paid.
order_paid() {
  local order paid
  order=$(ORDERS_GRPC_SERVER_ADDRESS=${1:-$ORDERS_GRPC_SERVER_ADDRESS} \
    "$client_bin" Orders call create_new_order 2>"$work/err") || { cat "$work/err"; return 1; }
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
    "'$client_bin' Orders tail 1 | awk '{print \$4}' | sort | uniq -c | awk '{print \$1}' | sort -u | grep -qx \"\$('$client_bin' Orders tail 1 | grep -c Order.Created)\""
  kill -TERM $runner_pid; wait $runner_pid
  check "runner stops with exit 0" test $? -eq 0
else
  fail "runner on one database"
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
  fail "runner with a database each"
fi

# Two replicas of a follower on one database: the runner's Reservations and one more, which
# stands by (the lease: a PostgreSQL advisory lock) until the first is killed.
reservations_created() { # the Reservation.Created notifications in Reservations' log
  "$client_bin" Reservations tail 1 2>/dev/null | grep -c 'Reservation.Created'
}
orders_created() {
  "$client_bin" Orders tail 1 2>/dev/null | grep -c 'Order.Created'
}
all_reserved() { # every order created has exactly one reservation, within 10 s
  for _ in $(seq 100); do
    [ "$(reservations_created)" = "$(orders_created)" ] && return 0
    sleep 0.1
  done
  echo "orders $(orders_created), reservations $(reservations_created)"; return 1
}
# Each server on its own (the runner stops them all when one dies): Orders A and B,
# Reservations A and B, Payments. Everyone reaches the replicas of an application through one
# address that lists them (called round robin); each replica listens on its own
# (<APP>_GRPC_LISTEN_ADDRESS). Pulls are a minute apart: what is paid within 15 s was pushed.
export MAX_PULL_INTERVAL=60
orders_a=localhost:$(free_port)
orders_b=localhost:$(free_port)
export ORDERS_GRPC_SERVER_ADDRESS=$orders_a,$orders_b
export PAYMENTS_GRPC_SERVER_ADDRESS=localhost:$(free_port)
first_port=$(free_port)
replica_port=$(free_port)
export RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:$first_port,localhost:$replica_port
start_server() { # start_server LOG TOPIC [VAR=VALUE...]: its pid in $server_pid
  local log=$1 topic=$2
  shift 2
  env SYSTEM_TOPIC=eventsourcing_grpc.example:system APPLICATION_TOPIC="$topic" "$@" \
    "$server_bin" >"$work/$log.log" 2>&1 &
  server_pid=$!
}
start_server orders eventsourcing_grpc.example:Orders ORDERS_GRPC_LISTEN_ADDRESS=$orders_a
orders_pid=$server_pid
start_server orders-b eventsourcing_grpc.example:Orders ORDERS_GRPC_LISTEN_ADDRESS=$orders_b
orders_b_pid=$server_pid
start_server first eventsourcing_grpc.example:Reservations \
  RESERVATIONS_GRPC_LISTEN_ADDRESS=localhost:$first_port RESERVATIONS_LOG_LEVEL=debug
first_pid=$server_pid
start_server payments eventsourcing_grpc.example:Payments; payments_pid=$server_pid
for _ in $(seq 100); do grep -q "processing" "$work/first.log" && break; sleep 0.05; done
start_server replica eventsourcing_grpc.example:Reservations \
  RESERVATIONS_GRPC_LISTEN_ADDRESS=localhost:$replica_port
replica_pid=$server_pid
for _ in $(seq 100); do grep -q "standing by" "$work/replica.log" && break; sleep 0.05; done
check "the first replica processes" grep -q "processing: this replica holds the lease" \
  "$work/first.log"
check "the second replica stands by" grep -q "standing by: another replica holds the lease" \
  "$work/replica.log"
for i in 1 2 3; do check "with a standby: order $i paid" order_paid; done
# A Prompt that reaches the standby (as a Python leader's may, to the shared address) is passed
# on: the active replica takes it within a second (and pulls from the leaders that do not push
# to it: none here, Orders pushes), where it would otherwise wait for the minute.
passed_on() { # within 2 s
  for _ in $(seq 200); do
    grep -q "a Prompt passed on by a standby" "$work/first.log" && return 0
    sleep 0.01
  done
  echo "the active replica did not take the prompt"; return 1
}
RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:$replica_port "$client_bin" Reservations prompt Orders
check "a prompt to the standby is passed on to the active replica" passed_on
# Orders taken by each replica of Orders: Reservations follows one of them (its subscription),
# and hears of the other's writes through it (PostgreSQL NOTIFY, heard by the replica's watch).
for replica in "$orders_a" "$orders_b" "$orders_a" "$orders_b"; do
  check "order taken by the Orders replica at $replica paid" order_paid "$replica"
done
check "each order reserved once" all_reserved
killed_at=$(date +%s%N)
kill -KILL "$first_pid"
took_over=false
for _ in $(seq 400); do
  if grep -q "processing: this replica holds the lease" "$work/replica.log"; then
    took_over=true; break
  fi
  sleep 0.005
done
took_ms=$((($(date +%s%N) - killed_at) / 1000000))
echo "the standby took over ${took_ms} ms after the SIGKILL"
check "the standby takes over" $took_over
check "within 2 s" test "$took_ms" -lt 2000
for i in 1 2 3; do check "after the kill: order $i paid (through the other replica)" order_paid; done
check "orders after the kill reserved by the new replica, each once" all_reserved
for replica in "$orders_b" "$orders_a"; do
  check "after the kill: order taken by $replica paid" order_paid "$replica"
done
kill -TERM $replica_pid $orders_pid $orders_b_pid $payments_pid
wait $replica_pid $orders_pid $orders_b_pid $payments_pid 2>/dev/null

finish
