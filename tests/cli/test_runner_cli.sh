#!/usr/bin/env bash
# Tests of eventsourcing_grpc_runner as a user runs it: exit codes, the
# addresses it prints (kept as set, or assigned), a system that pays an order
# created with eventsourcing_grpc_client, stopping on SIGTERM, a server that
# dies, and a system from a plugin found along ESG_TOPIC_PATH.
# Usage: test_runner_cli.sh RUNNER_BINARY SERVER_BINARY CLIENT_BINARY PLUGIN_DIR
set -uo pipefail
runner_bin=$1
server_bin=$2
client_bin=$3
plugin_dir=$4
export GRPC_DNS_RESOLVER=native
unset SYSTEM_TOPIC APPLICATION_TOPIC PERSISTENCE_MODULE SQLITE_DBNAME MAX_PULL_INTERVAL \
  ORDERS_GRPC_SERVER_ADDRESS RESERVATIONS_GRPC_SERVER_ADDRESS PAYMENTS_GRPC_SERVER_ADDRESS
work=$(mktemp -d)
runner_pid=
all_children=() # every server process seen, killed on exit if still there
cleanup() {
  [ -n "$runner_pid" ] && kill -KILL "$runner_pid" 2>/dev/null
  for pid in "${all_children[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

free_ports() { # free_ports N: N distinct ports, free a moment ago
  /usr/bin/python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

port_is_free() { # port_is_free PORT: nothing listens on it, on IPv4 or IPv6 loopback
  /usr/bin/python3 -c '
import socket, sys
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(family)
    try: s.bind((host, int(sys.argv[1])))
    except OSError as e:
        if family == socket.AF_INET or e.errno != 99: sys.exit(1)
    finally: s.close()' "$1"
}

alive() { # alive PID: the process exists and is not a zombie
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Starts the runner in the background with the given environment and waits
# until it printed an address for each NAME; the log holds stdout and stderr.
start_runner() { # start_runner LOG NAME... -- ENV... -- ARGS...
  local log=$1; shift
  local names=() envs=()
  while [ "$1" != "--" ]; do names+=("$1"); shift; done
  shift
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$runner_bin" "$@" >"$log" 2>&1 &
  runner_pid=$!
  for _ in $(seq 600); do
    local n_printed=0
    for name in "${names[@]}"; do grep -q "^$name: " "$log" && n_printed=$((n_printed + 1)); done
    if [ $n_printed -eq ${#names[@]} ]; then
      for pid in $(pgrep -P "$runner_pid"); do all_children+=("$pid"); done
      return 0
    fi
    kill -0 "$runner_pid" 2>/dev/null || { wait "$runner_pid"; runner_pid=; return 1; }
    sleep 0.05
  done
  return 1
}

says_address() { # says_address LOG NAME ADDRESS: the runner printed NAME's address as ADDRESS
  local line
  line=$(grep "^$2: " "$1")
  if ! grep -qF -- "$3" <<<"$line"; then echo "  $2: printed '$line', expected $3"; return 1; fi
}

server_pid() { # server_pid APP_TOPIC: the runner's child serving that application
  local pid
  for pid in $(pgrep -P "$runner_pid"); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "APPLICATION_TOPIC=$1" ||
       tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

children_are_servers() { # every child of the runner runs SERVER_BINARY
  local pid n=0 expected
  expected=$(readlink -f "$server_bin")
  for pid in $(pgrep -P "$runner_pid"); do
    [ "$(readlink -f "/proc/$pid/exe")" = "$expected" ] || { echo "  child $pid is not the server"; return 1; }
    n=$((n + 1))
  done
  [ $n -eq "$1" ] || { echo "  $n children, expected $1"; return 1; }
}

children_show_topics() { # the children's command lines name their applications (what ps shows)
  local pid topic
  for topic in "$@"; do
    for pid in $(pgrep -P "$runner_pid"); do
      tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "eventsourcing_grpc_server $topic" && continue 2
    done
    echo "  no server's command line names $topic"; return 1
  done
}

none_alive() { # none_alive PID...: none of them is still running
  local pid
  for pid in "$@"; do
    if alive "$pid"; then echo "  process $pid is still running: $(tr '\0' ' ' </proc/"$pid"/cmdline)"; return 1; fi
  done
}

# Stops the runner with SIGTERM; checks exit 0, the time it took and that its servers are gone.
stop_runner() { # stop_runner WHAT
  local children started rc elapsed_ms
  children=$(pgrep -P "$runner_pid")
  started=$(date +%s%N)
  kill -TERM "$runner_pid"
  wait "$runner_pid"
  rc=$?
  runner_pid=
  elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  check "$1: SIGTERM stops it with exit 0 (got $rc)" test $rc -eq 0
  check "$1: stopping took ${elapsed_ms} ms, under 2 s" test $elapsed_ms -lt 2000
  # shellcheck disable=SC2086
  check "$1: no server left" none_alive $children
}

is_paid() { # is_paid ADDRESS ORDER_JSON
  [ "$("$client_bin" "$1" call is_order_paid "[$2]" 2>/dev/null)" = true ]
}

count_is() { # count_is ADDRESS N: the application's count() is N
  [ "$("$client_bin" "$1" call count 2>/dev/null)" = "$2" ]
}

# --- configuration errors ---
check "no topic" expect_exit 2 "SYSTEM_TOPIC" "$runner_bin"
check "no topic, SYSTEM_TOPIC empty" expect_exit 2 "SYSTEM_TOPIC" env SYSTEM_TOPIC= "$runner_bin"
check "unknown topic" expect_exit 3 "eventsourcing_grpc.example:nosystem" \
  "$runner_bin" eventsourcing_grpc.example:nosystem
check "unknown topic in SYSTEM_TOPIC" expect_exit 3 "nosuchmodule:system" \
  env SYSTEM_TOPIC=nosuchmodule:system "$runner_bin"
check "an application topic is not a system" expect_exit 3 "eventsourcing_grpc.example:Orders" \
  "$runner_bin" eventsourcing_grpc.example:Orders
check "help" expect_exit 0 "SYSTEM_TOPIC" "$runner_bin" --help

# --- the example system with every address set: kept, an order paid, SIGTERM ---
read -r p1 p2 p3 <<<"$(free_ports 3)"
orders=localhost:$p1
if start_runner "$work/system.log" Orders Reservations Payments -- \
     ORDERS_GRPC_SERVER_ADDRESS=$orders RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:$p2 \
     PAYMENTS_GRPC_SERVER_ADDRESS=localhost:$p3 -- eventsourcing_grpc.example:system; then
  n_passed=$((n_passed + 1))
  check "Orders' address as set" says_address "$work/system.log" Orders "localhost:$p1"
  check "Reservations' address as set" says_address "$work/system.log" Reservations "localhost:$p2"
  check "Payments' address as set" says_address "$work/system.log" Payments "localhost:$p3"
  check "three servers, all eventsourcing_grpc_server" children_are_servers 3
  check "ps tells them apart: each command line names its topic" children_show_topics \
    eventsourcing_grpc.example:Orders eventsourcing_grpc.example:Reservations \
    eventsourcing_grpc.example:Payments
  kill -HUP "$runner_pid"
  check "SIGHUP: the runner says so and goes on" wait_until 5 grep -q "SIGHUP: no file" "$work/system.log"
  check "and its servers serve on" expect_exit 0 "ok" "$client_bin" "localhost:$p2" ping
  check "each server answers" expect_exit 0 "ok" "$client_bin" "localhost:$p3" ping
  order=$("$client_bin" "$orders" call create_new_order)
  check "create_new_order returns a UUID" grep -q '"_type_":"uuid_hex"' <<<"$order"
  started=$(date +%s%N)
  if wait_until 10 is_paid "$orders" "$order"; then
    n_passed=$((n_passed + 1))
    echo "order paid in $(( ($(date +%s%N) - started) / 1000000 )) ms"
  else
    fail "the order is paid within 10 s" "$work/system.log"
  fi
  order_hex=$(sed 's/.*"_data_":"\([0-9a-f]*\)".*/\1/' <<<"$order")
  check "Orders' third notification: the order paid" \
    expect_exit 0 "3 $order_hex 3 eventsourcing_grpc.example:Order.Paid" \
    "$client_bin" "$orders" notifications 1 10
  stop_runner "example system"
  check "says it stops" grep -q "SIGTERM, stopping" "$work/system.log"
else
  fail "start the example system" "$work/system.log"
fi

# --- SYSTEM_TOPIC, with Payments' address left unset: it is assigned ---
read -r p1 p2 <<<"$(free_ports 2)"
if [ "$p1" != 50051 ] && [ "$p2" != 50051 ] && port_is_free 50051; then
  if start_runner "$work/assigned.log" Orders Reservations Payments -- \
       SYSTEM_TOPIC=eventsourcing_grpc.example:system ORDERS_GRPC_SERVER_ADDRESS=localhost:$p1 \
       RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:$p2 --; then
    n_passed=$((n_passed + 1))
    check "set addresses are not overwritten (Orders)" says_address "$work/assigned.log" Orders "localhost:$p1"
    check "set addresses are not overwritten (Reservations)" \
      says_address "$work/assigned.log" Reservations "localhost:$p2"
    check "an unset address is assigned" says_address "$work/assigned.log" Payments "localhost:50051"
    check "the assigned address answers" expect_exit 0 "ok" "$client_bin" localhost:50051 ping
    order=$("$client_bin" "localhost:$p1" call create_new_order)
    check "an order is paid through the assigned address" wait_until 10 is_paid "localhost:$p1" "$order"
    stop_runner "assigned address"
  else
    fail "start with SYSTEM_TOPIC and one address unset" "$work/assigned.log"
  fi
else
  echo "skipped: port 50051 is busy here, so the assigned-address case cannot run"
fi

# --- a server killed with SIGKILL: the runner says which, stops the others, fails ---
read -r p1 p2 p3 <<<"$(free_ports 3)"
if start_runner "$work/killed.log" Orders Reservations Payments -- \
     ORDERS_GRPC_SERVER_ADDRESS=localhost:$p1 RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:$p2 \
     PAYMENTS_GRPC_SERVER_ADDRESS=localhost:$p3 -- eventsourcing_grpc.example:system; then
  n_passed=$((n_passed + 1))
  children=$(pgrep -P "$runner_pid")
  payments_pid=$(server_pid eventsourcing_grpc.example:Payments)
  if [ -n "$payments_pid" ]; then
    n_passed=$((n_passed + 1))
    n_lines=$(wc -l <"$work/killed.log")
    kill -KILL "$payments_pid"
    rc=
    for _ in $(seq 200); do
      if ! kill -0 "$runner_pid" 2>/dev/null; then wait "$runner_pid"; rc=$?; runner_pid=; break; fi
      sleep 0.05
    done
    if [ -n "$rc" ]; then
      n_passed=$((n_passed + 1))
      check "exits non-zero (got $rc)" test "$rc" -ne 0
      # The runner's own words, not a server's complaint about Payments.
      check "says Payments died" grep -q "Z error eventsourcing_grpc_runner: .*Payments" \
        <(tail -n +$((n_lines + 1)) "$work/killed.log")
      # shellcheck disable=SC2086
      check "no server left" none_alive $children
    else
      fail "the runner exits within 10 s of a server dying" "$work/killed.log"
    fi
  else
    fail "find the Payments server among the runner's children"
  fi
else
  fail "start the example system to kill" "$work/killed.log"
fi

# --- a system from a plugin: test_systems:chain, A -> B -> C -> D ---
read -r pa pb pc pd <<<"$(free_ports 4)"
if start_runner "$work/chain.log" A B C D -- ESG_TOPIC_PATH="$plugin_dir" \
     A_GRPC_SERVER_ADDRESS=localhost:$pa B_GRPC_SERVER_ADDRESS=localhost:$pb \
     C_GRPC_SERVER_ADDRESS=localhost:$pc D_GRPC_SERVER_ADDRESS=localhost:$pd -- test_systems:chain; then
  n_passed=$((n_passed + 1))
  check "A starts an item" expect_exit 0 "uuid_hex" "$client_bin" "localhost:$pa" call start
  check "the item reaches D" wait_until 10 count_is "localhost:$pd" 1
  check "B and C have one each" test "$("$client_bin" "localhost:$pb" call count)$("$client_bin" "localhost:$pc" call count)" = 11
  stop_runner "chain"
else
  fail "start test_systems:chain" "$work/chain.log"
fi

# --- mutual TLS with a certificate per application (make-ssl.sh NAME...): an order paid; the
# runner's and the client's debug output hold no key material and no order's id ---
here=$(cd "$(dirname "$0")" && pwd)
is_clean() { # is_clean FILE TEXT: no line of a test key, and not TEXT (non-empty), in FILE
  local key
  [ -n "$2" ] || return 1
  grep -q "PRIVATE KEY" "$1" && return 1
  grep -qF -- "$2" "$1" && return 1
  for key in "$work"/ssl/*/*.key; do
    grep -qFf <(grep -v -- '-----' "$key") "$1" && return 1
  done
  return 0
}
if bash "$here/../../scripts/make-ssl.sh" "$work/ssl" orders reservations payments >/dev/null; then
  read -r p1 p2 p3 <<<"$(free_ports 3)"
  tls_env=()
  for name in orders reservations payments; do
    upper=$(tr a-z A-Z <<<"$name")
    tls_env+=("${upper}_GRPC_SSL_PRIVATE_KEY_PATH=$work/ssl/$name/$name.key"
              "${upper}_GRPC_SSL_CERTIFICATE_PATH=$work/ssl/$name/$name.crt"
              "${upper}_GRPC_SSL_ROOT_CERTIFICATE_PATH=$work/ssl/$name/root.crt")
  done
  # 127.0.0.1:PORT is not localhost:PORT: mutual TLS, each server and follower its own identity.
  if start_runner "$work/tls.log" Orders Reservations Payments -- "${tls_env[@]}" \
       LOG_LEVEL=debug GRPC_VERBOSITY=debug \
       ORDERS_GRPC_SERVER_ADDRESS=127.0.0.1:$p1 RESERVATIONS_GRPC_SERVER_ADDRESS=127.0.0.1:$p2 \
       PAYMENTS_GRPC_SERVER_ADDRESS=127.0.0.1:$p3 -- eventsourcing_grpc.example:system; then
    n_passed=$((n_passed + 1))
    as_orders=(env GRPC_SSL_PRIVATE_KEY_PATH="$work/ssl/orders/orders.key"
               GRPC_SSL_CERTIFICATE_PATH="$work/ssl/orders/orders.crt"
               GRPC_SSL_ROOT_CERTIFICATE_PATH="$work/ssl/orders/root.crt"
               LOG_LEVEL=debug GRPC_VERBOSITY=debug "$client_bin")
    order=$("${as_orders[@]}" "127.0.0.1:$p1" call create_new_order 2>>"$work/tls-client.log")
    paid() {
      "${as_orders[@]}" "127.0.0.1:$p1" call is_order_paid "[$order]" 2>>"$work/tls-client.log" |
        grep -q true
    }
    if wait_until 10 paid; then n_passed=$((n_passed + 1)); else
      fail "an order is paid over mutual TLS, a certificate per application" "$work/tls.log"
    fi
    stop_runner "mutual TLS"
    order_hex=$(grep -o '[0-9a-f]\{32\}' <<<"$order")
    check "the runner's debug log has its requests" grep -q "CallApplicationMethod OK" "$work/tls.log"
    check "the runner's debug log holds no key material and not the order's id" \
      is_clean "$work/tls.log" "$order_hex"
    check "the client's debug output holds no key material and not the order's id" \
      is_clean "$work/tls-client.log" "$order_hex"
  else
    fail "start the example system over mutual TLS" "$work/tls.log"
  fi
else
  fail "make-ssl.sh with names" /dev/null
fi

finish
