#!/usr/bin/env bash
# The example system with every server behind its guard, as README "Facing untrusted peers" and
# the deployment files run it: each eventsourcing_grpc_server listens on localhost (local
# credentials) and nghttpx with deploy/nghttpx/nghttpx.conf takes its peers' calls over mutual
# TLS. The followers prompt, subscribe (pushed pages) and pull through the guards, and so does
# the client. Pulls are a minute apart, so orders paid within seconds were pushed through them.
# The followers know Orders as replicas (a list) of which two are guards whose server is down
# (nghttpx answers 502): they subscribe through the live one within seconds all the same. A
# guard SIGKILLed and started again: the followers subscribe again through it.
# Usage: test_guarded_system.sh SERVER CLIENT NGHTTPX MAKE_SSL NGHTTPX_CONF
set -uo pipefail
server_bin=$1
client_bin=$2
nghttpx_bin=$3
make_ssl=$4
nghttpx_conf=$5
if [ ! -x "$nghttpx_bin" ]; then
  echo "skipped: no nghttpx at $nghttpx_bin (Debian's nghttp2-proxy; scripts/setup.sh installs it)"
  exit 77
fi
export GRPC_DNS_RESOLVER=native MAX_PULL_INTERVAL=60
export SYSTEM_TOPIC=eventsourcing_grpc.example:system PERSISTENCE_MODULE=eventsourcing.sqlite
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
. "$(dirname "$0")/../../scripts/lib/ports.sh"
"$make_ssl" "$work/ssl" >/dev/null || exit 1
apps=(orders reservations payments)
declare -A guard_port server_port guard_pid server_pid
for app in "${apps[@]}"; do
  guard_port[$app]=$(free_port)
  server_port[$app]=$(free_port)
done
# Everyone reaches the others at their guards (127.0.0.1 is not "localhost": mutual TLS).
export ORDERS_GRPC_SERVER_ADDRESS=127.0.0.1:${guard_port[orders]}
export RESERVATIONS_GRPC_SERVER_ADDRESS=127.0.0.1:${guard_port[reservations]}
export PAYMENTS_GRPC_SERVER_ADDRESS=127.0.0.1:${guard_port[payments]}

nghttpx_for() { # NAME FRONTEND_PORT BACKEND_PORT: NAME's guard; its pid in $!
  "$nghttpx_bin" --conf="$nghttpx_conf" --frontend="127.0.0.1,$2" \
    --backend="127.0.0.1,$3;;proto=h2" --verify-client-cacert="$work/ssl/root/root.crt" \
    "$work/ssl/$1/$1.key" "$work/ssl/$1/$1.crt" >>"$work/guard-$1.log" 2>&1 &
}
start_guard() { # APP
  nghttpx_for "$1" "${guard_port[$1]}" "${server_port[$1]}"
  guard_pid[$1]=$!
}
# Two more replicas of Orders for its followers: guards whose servers are down (nothing listens
# on their backend ports).
orders_replicas=$ORDERS_GRPC_SERVER_ADDRESS
for _ in 1 2; do
  port=$(free_port)
  nghttpx_for orders "$port" "$(free_port)"
  orders_replicas="$orders_replicas,127.0.0.1:$port"
done

tls_of() { # APP: the TLS settings of APP's certificate, for a server or the client
  echo "GRPC_SSL_PRIVATE_KEY_PATH=$work/ssl/$1/$1.key" \
    "GRPC_SSL_CERTIFICATE_PATH=$work/ssl/$1/$1.crt" \
    "GRPC_SSL_ROOT_CERTIFICATE_PATH=$work/ssl/root/root.crt"
}

for app in "${apps[@]}"; do
  # shellcheck disable=SC2046  # the settings are words without spaces
  env $(tls_of "$app") APPLICATION_TOPIC="eventsourcing_grpc.example:${app^}" \
    GRPC_LISTEN_ADDRESS="localhost:${server_port[$app]}" SQLITE_DBNAME="$work/$app.db" \
    ORDERS_GRPC_SERVER_ADDRESS="$orders_replicas" \
    "$server_bin" >"$work/$app.log" 2>&1 &
  server_pid[$app]=$!
  start_guard "$app"
done

client() { # the client with the payments certificate, through the guards
  # shellcheck disable=SC2046
  env $(tls_of payments) "$client_bin" "$@"
}

# Waits are long for sanitized servers on a loaded machine; pulls are a minute apart all the same.
for app in "${apps[@]}"; do
  check "${app^} answers through its guard" wait_until 30 client "${app^}" ping
done

# Each follower is subscribed to its leaders through their guards, and was pushed pages (a
# subscription's first page comes at once, even with nothing written yet).
subscribed() { # APP LEADER
  client --json "$1" lag | grep -E "\"leader\": ?\"$2\"" | grep -E '"is_subscribed": ?true' |
    grep -q -E '"pages_pushed": ?[1-9]'
}
# Before any order (no Prompt comes): past the two guards of Orders that answer 502.
for follower in Reservations Payments; do
  check "$follower is subscribed to Orders, one of three guards up" \
    wait_until 30 subscribed "$follower" Orders || client --json "$follower" lag
done

# Creates an order through Orders' guard and waits (up to 30 s) until it is paid.
order_paid() {
  local order paid
  order=$(client --key "guarded-$RANDOM$RANDOM" Orders call create_new_order 2>"$work/err") ||
    { cat "$work/err"; return 1; }
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    paid=$(client Orders call is_order_paid "[$order]" 2>/dev/null)
    [ "$paid" = true ] && return 0
    sleep 0.01
  done
  echo "order $order not paid within 30 s (pulls are a minute apart)"
  for log in "$work"/*.log; do echo "--- $log (last lines)"; tail -n 20 "$log"; done
  return 1
}
for i in 1 2 3; do check "order $i paid through the guards" order_paid || break; done

for pair in Reservations:Orders Payments:Orders Orders:Reservations Orders:Payments; do
  check "${pair%%:*} is pushed ${pair##*:}'s pages through its guard" \
    wait_until 30 subscribed "${pair%%:*}" "${pair##*:}" || client --json "${pair%%:*}" lag
done

# Reservations' guard dies: its followers' streams and its leaders' prompts through it fail; a
# new guard on the same port serves them again.
{ kill -KILL "${guard_pid[reservations]}" && wait "${guard_pid[reservations]}"; } 2>/dev/null
start_guard reservations
check "Reservations answers through its new guard" wait_until 30 client Reservations ping
check "an order is paid after the guard's restart" order_paid
check "Orders is pushed Reservations' pages again" wait_until 30 subscribed Orders Reservations

for app in "${apps[@]}"; do
  kill -TERM "${server_pid[$app]}" "${guard_pid[$app]}"
  wait "${server_pid[$app]}"
  check "${app^}'s server stops with exit 0" test $? -eq 0 || tail -n 40 "$work/$app.log"
done
finish
