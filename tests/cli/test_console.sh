#!/usr/bin/env bash
# Tests of the console programs as a user runs them: eventsourcing_grpc_server
# (topics, addresses, SYSTEM_TOPIC, persistence, exit codes, SIGTERM) and
# eventsourcing_grpc_client (commands and exit codes), against real servers.
# Usage: test_console.sh SERVER_BINARY CLIENT_BINARY
set -uo pipefail
server_bin=$1
client_bin=$2
export GRPC_DNS_RESOLVER=native
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

. "$(dirname "$0")/../../scripts/lib/ports.sh"

# Runs the server in the background with the given environment; waits until it listens.
start_server() { # start_server LOG ENV... -- ARGS...
  local log=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$server_bin" "$@" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$log" && return 0
    kill -0 $server_pid 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# --- eventsourcing_grpc_server: configuration errors ---
check "no topic" expect_exit 2 "APPLICATION_TOPIC" env -u APPLICATION_TOPIC "$server_bin"
check "help lists the environment" expect_exit 0 "ORDERS_GRPC_SERVER_ADDRESS" "$server_bin" --help
for setting in CIPHER_KEY CIPHER_TOPIC COMPRESSOR_TOPIC IS_SNAPSHOTTING_ENABLED AGGREGATE_CACHE_MAXSIZE \
  AGGREGATE_CACHE_FASTFORWARD_SKIPPING DEEPCOPY_FROM_AGGREGATE_CACHE CREATE_TABLE \
  POSTGRES_POOL_MAX_OVERFLOW POSTGRES_CONN_MAX_AGE POSTGRES_PRE_PING INFRASTRUCTURE_FACTORY \
  IDEMPOTENCY_KEY_TTL; do
  check "help lists $setting" expect_exit 0 "$setting" "$server_bin" --help
done
check "version" expect_exit 0 "0.1.0" "$server_bin" --version
check "an unknown option is a bad command line" expect_exit 2 "unknown option '--bogus'" \
  "$server_bin" --bogus
check "unknown topic" expect_exit 3 "has no Nope" "$server_bin" eventsourcing_grpc.example:Nope
check "malformed topic" expect_exit 3 "topic" "$server_bin" not-a-topic
check "no address" expect_exit 3 "ORDERS_GRPC_SERVER_ADDRESS is not set" \
  env -u ORDERS_GRPC_SERVER_ADDRESS "$server_bin" eventsourcing_grpc.example:Orders
check "TLS address without certificates" expect_exit 3 "GRPC_SSL_" \
  env ORDERS_GRPC_SERVER_ADDRESS=0.0.0.0:0 "$server_bin" eventsourcing_grpc.example:Orders
check "unknown system" expect_exit 3 "eventsourcing_grpc.example:nosystem" \
  env ORDERS_GRPC_SERVER_ADDRESS=localhost:0 SYSTEM_TOPIC=eventsourcing_grpc.example:nosystem \
  "$server_bin" eventsourcing_grpc.example:Orders
check "SQLite without a database name" expect_exit 3 "ORDERS_SQLITE_DBNAME" \
  env ORDERS_GRPC_SERVER_ADDRESS=localhost:0 PERSISTENCE_MODULE=eventsourcing.sqlite \
  "$server_bin" eventsourcing_grpc.example:Orders

# --- persistence settings: each honoured or refused at start, never ignored ---
key=$(head -c 32 /dev/urandom | base64)
orders() { # orders SETTING... : the server with those settings and a free localhost address
  env ORDERS_GRPC_SERVER_ADDRESS=localhost:0 "$@" "$server_bin" eventsourcing_grpc.example:Orders
}
check "127.0.0.1 needs mutual TLS, as in the reference" expect_exit 3 \
  "address '127.0.0.1:0' is not localhost:PORT" env ORDERS_GRPC_SERVER_ADDRESS=127.0.0.1:0 \
  "$server_bin" eventsourcing_grpc.example:Orders
check "an unknown cipher" expect_exit 3 "CIPHER_TOPIC 'my.cipher:Rot13' is not supported" \
  orders CIPHER_TOPIC=my.cipher:Rot13 CIPHER_KEY="$key"
check "a cipher without a key" expect_exit 3 "no key is set" \
  orders CIPHER_TOPIC=eventsourcing.cipher:AESCipher
check "a key that is not base64" expect_exit 3 "ORDERS_CIPHER_KEY is invalid" \
  orders ORDERS_CIPHER_KEY='not a key!'
check "a key of 20 bytes" expect_exit 3 "this one has 20" \
  orders CIPHER_KEY="$(head -c 20 /dev/urandom | base64)"
check "an unknown compressor" expect_exit 3 "COMPRESSOR_TOPIC 'lzma' is not supported" \
  orders COMPRESSOR_TOPIC=lzma
check "snapshots yes or no" expect_exit 3 "IS_SNAPSHOTTING_ENABLED is invalid" \
  orders IS_SNAPSHOTTING_ENABLED=often
check "a cache size" expect_exit 3 "AGGREGATE_CACHE_MAXSIZE is invalid" \
  orders AGGREGATE_CACHE_MAXSIZE=big
check "no deep copy" expect_exit 3 "DEEPCOPY_FROM_AGGREGATE_CACHE=n is not supported" \
  orders DEEPCOPY_FROM_AGGREGATE_CACHE=n
check "CREATE_TABLE on SQLite" expect_exit 3 "CREATE_TABLE is invalid" \
  orders PERSISTENCE_MODULE=eventsourcing.sqlite SQLITE_DBNAME="$work/x.db" CREATE_TABLE=perhaps
check "CREATE_TABLE=n on SQLite uses the tables there are" expect_exit 4 "no such table" \
  orders PERSISTENCE_MODULE=eventsourcing.sqlite SQLITE_DBNAME="$work/x.db" CREATE_TABLE=n
check "a PostgreSQL pool setting, before connecting" expect_exit 3 \
  "POSTGRES_POOL_MAX_OVERFLOW is invalid" orders PERSISTENCE_MODULE=eventsourcing.postgres \
  POSTGRES_DBNAME=x POSTGRES_HOST=nowhere.invalid POSTGRES_USER=x POSTGRES_PASSWORD=x \
  POSTGRES_POOL_MAX_OVERFLOW=lots
check "an unknown persistence module" expect_exit 3 "INFRASTRUCTURE_FACTORY 'x.y' is not supported" \
  orders INFRASTRUCTURE_FACTORY=x.y
# The legacy name Python still reads is honoured: the events go to SQLite, not to memory.
port=$(free_port)
if start_server "$work/legacy.log" ORDERS_GRPC_SERVER_ADDRESS=localhost:$port \
     INFRASTRUCTURE_FACTORY=eventsourcing.sqlite:Factory SQLITE_DBNAME="$work/legacy.db" \
     CIPHER_KEY="$key" COMPRESSOR_TOPIC=zlib IS_SNAPSHOTTING_ENABLED=y -- \
     eventsourcing_grpc.example:Orders; then
  check "says how it stores" grep -q "persistence eventsourcing.sqlite (JSON, zlib, AES-256-GCM, snapshots)" "$work/legacy.log"
  damaged=$("$client_bin" localhost:$port call create_new_order)
  "$client_bin" localhost:$port call create_new_order >/dev/null
  # A stored state damaged on disk: a server-side error that says why, not INVALID_ARGUMENT.
  /usr/bin/python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute("UPDATE stored_events SET state = X'"'"'00'"'"' || substr(state, 2) WHERE rowid = 1"); db.commit()' "$work/legacy.db"
  check "a damaged state is a server error that says why" expect_exit 5 "ESG_EREMOTE: cannot decrypt" \
    "$client_bin" localhost:$port call get_order "[$damaged]"
  check "the client shows encrypted state as base64" expect_exit 0 "Order.Created base64:" \
    "$client_bin" localhost:$port notifications
  check "and decodes it with the key" expect_exit 0 'Order.Created {"timestamp":' \
    env ORDERS_GRPC_SERVER_ADDRESS=localhost:$port ORDERS_CIPHER_KEY="$key" COMPRESSOR_TOPIC=zlib \
    "$client_bin" Orders notifications
  kill -TERM $server_pid; wait $server_pid
  check "INFRASTRUCTURE_FACTORY put the events in SQLite" test -s "$work/legacy.db"
  check "with another key the database is refused" expect_exit 3 "wrong CIPHER_KEY" \
    orders INFRASTRUCTURE_FACTORY=eventsourcing.sqlite SQLITE_DBNAME="$work/legacy.db" \
    CIPHER_KEY="$(head -c 32 /dev/urandom | base64)" COMPRESSOR_TOPIC=zlib
else
  fail "start with INFRASTRUCTURE_FACTORY" "$work/legacy.log"
fi

# --- a server from APPLICATION_TOPIC, called with the client, stopped with SIGTERM ---
port=$(free_port)
address=localhost:$port
if start_server "$work/orders.log" APPLICATION_TOPIC=eventsourcing_grpc.example:Orders \
     ORDERS_GRPC_SERVER_ADDRESS=$address PERSISTENCE_MODULE=eventsourcing.sqlite \
     SQLITE_DBNAME="$work/orders.db" --; then
  n_passed=$((n_passed + 1))
  check "ping" expect_exit 0 "ok" "$client_bin" "$address" ping
  order=$("$client_bin" "$address" call create_new_order)
  check "create_new_order returns a UUID" grep -q '"_type_":"uuid_hex"' <<<"$order"
  check "get_order" expect_exit 0 '"is_paid":false' "$client_bin" "$address" call get_order "[$order]"
  # For operators: health, JSON lines, a deadline.
  check "health" expect_exit 0 "SERVING" "$client_bin" "$address" health
  check "health of our service" expect_exit 0 '{"status":"SERVING"}' \
    "$client_bin" --json "$address" health eventsourcing_grpc.Application
  check "health of a service it does not know" expect_exit 5 "unknown service 'nope'" \
    "$client_bin" "$address" health nope
  check "--json ping" expect_exit 0 '{"ok":true}' "$client_bin" --json "$address" ping
  check "lag of an application that follows none" expect_exit 0 "Orders follows no application" \
    "$client_bin" "$address" lag
  check "--json lag of it: no lines" test -z "$("$client_bin" --json "$address" lag)"
  check "lag takes no arguments" expect_exit 2 "lag takes no arguments" \
    "$client_bin" "$address" lag Orders
  check "--json notifications: an object per line, the state embedded" /usr/bin/python3 -c '
import json, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True).stdout
lines = [json.loads(line) for line in out.splitlines()]
assert len(lines) == 1, out
n = lines[0]
assert list(n) == ["id", "originator_id", "originator_version", "topic", "state"], n
assert n["id"] == 1 and n["originator_version"] == 1, n
assert n["topic"] == "eventsourcing_grpc.example:Order.Created", n
assert "timestamp" in n["state"], n
' "$client_bin" --json "$address" notifications
  check "--json errors: a JSON line on stderr with the exit status" expect_exit 5 \
    '{"error":"ESG_EINVAL","message":"'"'"'Orders'"'"' is not a leader of Orders: it follows none","exit_status":5}' \
    "$client_bin" --json "$address" prompt Orders
  check "tail: from the start" expect_exit 0 " eventsourcing_grpc.example:Order.Created {" \
    "$client_bin" "$address" tail
  check "tail: a topic it does not have, nothing" test -z "$("$client_bin" "$address" tail 1 nope:Nope)"
  check "tail: START must be a number" expect_exit 2 "'soon' is not a number" \
    "$client_bin" "$address" tail --follow soon
  # --follow: still running once caught up, and prints what is recorded next.
  "$client_bin" --json "$address" tail --follow 2 >"$work/tail.out" 2>&1 &
  tail_pid=$!
  sleep 0.3
  check "tail --follow keeps running once caught up" kill -0 $tail_pid
  "$client_bin" "$address" call create_new_order >/dev/null
  for _ in $(seq 100); do grep -q '"id":2,' "$work/tail.out" && break; sleep 0.05; done
  check "tail --follow prints a notification recorded after it started" grep -q '"id":2,' "$work/tail.out"
  kill -INT $tail_pid; wait $tail_pid
  check "tail --follow ends with exit 0 on SIGINT" test $? -eq 0
  check "tail --follow 2 printed nothing before 2" test "$(grep -c '"id":1,' "$work/tail.out")" -eq 0
  check "--timeout takes seconds" expect_exit 2 "--timeout 'soon' is not a number of seconds" \
    "$client_bin" --timeout soon "$address" ping
  check "an unknown option" expect_exit 2 "unknown option '--yaml'" "$client_bin" --yaml "$address" ping
  check "get_order by keyword" expect_exit 0 '"is_reserved":false' \
    "$client_bin" "$address" call get_order '[]' "{\"order_id\":$order}"
  check "client by application name" expect_exit 0 "Order.Created" \
    env ORDERS_GRPC_SERVER_ADDRESS=$address "$client_bin" Orders notifications 1 10
  check "unknown method" expect_exit 5 "no method 'nope'" "$client_bin" "$address" call nope
  # --key: the same command twice runs once, and prints its first reply again.
  keyed=$("$client_bin" --key console-17 "$address" call create_new_order)
  check "--key: a repeat prints the first reply" test "$("$client_bin" --key=console-17 "$address" call create_new_order)" = "$keyed"
  check "--key: a repeat records nothing" test "$("$client_bin" "$address" tail | grep -c "${keyed:31:32}")" -eq 1
  check "--key: another command under the key" expect_exit 5 "another command" \
    "$client_bin" --key console-17 "$address" call get_order "[$keyed]"
  check "--key takes a printable KEY" expect_exit 2 "--key takes a KEY" \
    "$client_bin" --key "$(printf 'a\tb')" "$address" ping
  check "bad JSON" expect_exit 2 "ARGS_JSON is not JSON" "$client_bin" "$address" call get_order '[x'
  check "prompt without a system" expect_exit 5 "is not a leader" \
    "$client_bin" "$address" prompt Reservations
  check "a busy port" expect_exit 4 "in use" \
    env ORDERS_GRPC_SERVER_ADDRESS=$address "$server_bin" eventsourcing_grpc.example:Orders
  check "a misspelt setting is named, with the right one" expect_exit 4 \
    "warning eventsourcing_grpc_server: PERSISTENCE_MODUL is not a setting: did you mean PERSISTENCE_MODULE?" \
    env ORDERS_GRPC_SERVER_ADDRESS=$address PERSISTENCE_MODUL=eventsourcing.sqlite \
    "$server_bin" eventsourcing_grpc.example:Orders
  # A state with a type only its application transcodes, and an integer beyond 64 bits: still
  # JSON to the client, shown as it was stored.
  /usr/bin/python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute("UPDATE stored_events SET state = CAST(? AS BLOB) WHERE rowid = 1", (sys.argv[2],)); db.commit()' \
    "$work/orders.db" '{"price":{"_type_":"money_cents","_data_":5},"big":123456789012345678901234567890}'
  check "a state of types the client does not know is shown as JSON" expect_exit 0 \
    'Order.Created {"price":{"_type_":"money_cents","_data_":5},"big":123456789012345678901234567890}' \
    "$client_bin" "$address" notifications 1 1
  check "and embedded as such in --json" expect_exit 0 \
    '"state":{"price":{"_type_":"money_cents","_data_":5},"big":123456789012345678901234567890}}' \
    "$client_bin" --json "$address" notifications 1 1
  # SIGHUP asks for files to be reopened: there are none, so the server says so and serves on.
  kill -HUP $server_pid
  for _ in $(seq 50); do grep -q "SIGHUP" "$work/orders.log" && break; sleep 0.1; done
  check "SIGHUP is answered by a line" grep -q "SIGHUP: no file to reopen" "$work/orders.log"
  check "and the server serves on" expect_exit 0 "ok" "$client_bin" "$address" ping
  started=$(date +%s%N)
  kill -TERM $server_pid
  wait $server_pid
  rc=$?
  elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  check "SIGTERM stops with exit 0 (took ${elapsed_ms} ms)" test $rc -eq 0
  check "says it stops" grep -q "SIGTERM, stopping" "$work/orders.log"
  # The SQLite database keeps the order across a restart.
  if start_server "$work/orders2.log" ORDERS_GRPC_SERVER_ADDRESS=$address \
       PERSISTENCE_MODULE=eventsourcing.sqlite SQLITE_DBNAME="$work/orders.db" -- \
       eventsourcing_grpc.example:Orders; then
    check "events survive a restart" expect_exit 0 "Order.Created" \
      "$client_bin" "$address" notifications
    kill -INT $server_pid; wait $server_pid
    check "SIGINT stops with exit 0" test $? -eq 0
  else
    fail "restart" "$work/orders2.log"
  fi
else
  fail "start" "$work/orders.log"
fi
check "client: nobody listening" expect_exit 4 "unavailable" "$client_bin" "$address" ping
# A server that takes the connection and never answers: --timeout bounds the wait.
silent_port=$(free_port)
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # localhost: ::1 or 127.0.0.1
s.bind(("::", int(sys.argv[1]))); s.listen(8); print("up", flush=True)
conns = []
while True:
    conns.append(s.accept()[0])
' "$silent_port" >"$work/silent.log" &
silent_pid=$!
for _ in $(seq 100); do grep -q up "$work/silent.log" && break; sleep 0.05; done
started=$(date +%s%N)
check "--timeout: a silent server is unavailable" expect_exit 4 "" \
  "$client_bin" --timeout 0.2 "localhost:$silent_port" ping
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
# Three attempts of 0.2 s and their backoff, far below three of the default 5 s.
check "--timeout: gave up after ${elapsed_ms} ms, not the default 15 s" test "$elapsed_ms" -lt 10000
kill $silent_pid
# A bad command line is found before anything connects: exit 2, saying what is wrong.
check "client: call without a method" expect_exit 2 "call takes METHOD" "$client_bin" "$address" call
check "client: an unknown command" expect_exit 2 "no command 'frob'" "$client_bin" "$address" frob
check "client: ping takes nothing" expect_exit 2 "ping takes no arguments" \
  "$client_bin" "$address" ping now
check "client: bad JSON before connecting" expect_exit 2 "KWARGS_JSON is not JSON" \
  "$client_bin" "$address" call get_order '[]' '{x'
check "client: a number" expect_exit 2 "'ten' is not a number" \
  "$client_bin" "$address" notifications 1 ten
check "client: a name without a port" expect_exit 3 \
  "'localhost' is not host:port, and LOCALHOST_GRPC_SERVER_ADDRESS" \
  env -u LOCALHOST_GRPC_SERVER_ADDRESS "$client_bin" localhost ping

# --- SYSTEM_TOPIC: the applications Orders follows may prompt it ---
port=$(free_port)
address=localhost:$port
check "in a system, the others' addresses are needed" expect_exit 3 \
  "RESERVATIONS_GRPC_SERVER_ADDRESS is not set" \
  env SYSTEM_TOPIC=eventsourcing_grpc.example:system ORDERS_GRPC_SERVER_ADDRESS=$address \
  "$server_bin" eventsourcing_grpc.example:Orders
# Its leaders are not running: it starts all the same, and says it will retry.
if start_server "$work/system.log" SYSTEM_TOPIC=eventsourcing_grpc.example:system \
     ORDERS_GRPC_SERVER_ADDRESS=$address RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:$(free_port) \
     PAYMENTS_GRPC_SERVER_ADDRESS=localhost:$(free_port) -- eventsourcing_grpc.example:Orders; then
  check "a leader may prompt" expect_exit 0 "" "$client_bin" "$address" prompt Reservations
  check "another leader may prompt" expect_exit 0 "" "$client_bin" "$address" prompt Payments
  check "a non-leader may not" expect_exit 5 "'Orders' is not a leader of Orders" \
    "$client_bin" "$address" prompt Orders
  kill -TERM $server_pid; wait $server_pid
  check "stops with exit 0 in a system" test $? -eq 0
  check "logs a leader that never answered once, as waiting, not failing" \
    test "$(grep -c 'waiting for Reservations at .* (not answering yet' "$work/system.log")" -eq 1
  check "and says nothing of failing to pull" test "$(grep -c 'cannot pull' "$work/system.log")" -eq 0
else
  fail "start in a system" "$work/system.log"
fi

# --- the log: LOG_FORMAT=json lines, LOG_LEVEL=debug request lines, never arguments ---
port=$(free_port)
address=localhost:$port
if start_server "$work/json.log" ORDERS_GRPC_SERVER_ADDRESS=$address ORDERS_LOG_FORMAT=json \
     LOG_LEVEL=debug -- eventsourcing_grpc.example:Orders; then
  order=$("$client_bin" "$address" call create_new_order)
  "$client_bin" "$address" call get_order "[$order]" >/dev/null
  # An order that does not exist: the error's message names the id, the log must not.
  missing=$(sed 's/"_data_":"\(........\)/"_data_":"00000000/' <<<"$order")
  "$client_bin" "$address" call get_order "[$missing]" >/dev/null 2>&1
  kill -TERM $server_pid; wait $server_pid
  check "json: every line is an object with time, level, app and message" /usr/bin/python3 -c '
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 5, lines
for line in lines:
    o = json.loads(line)
    assert list(o) == ["time", "level", "app", "message"], o
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", o["time"]), o
    assert o["level"] in ("error", "warning", "info", "debug") and o["app"] == "Orders", o
' "$work/json.log"
  check "debug: a line per request, with method, status, duration and peer" \
    grep -q '"level":"debug","app":"Orders","message":"/eventsourcing_grpc.Application/CallApplicationMethod OK in [0-9.]* ms from ipv' "$work/json.log"
  check "debug: a failed request has its status" \
    grep -q 'Application/CallApplicationMethod NotFound in' "$work/json.log"
  order_hex=$(sed 's/.*"_data_":"\([0-9a-f]*\)".*/\1/' <<<"$order")
  check "the log holds no argument" test "$(grep -c -e "$order_hex" -e 00000000 "$work/json.log")" -eq 0
else
  fail "start with LOG_FORMAT=json" "$work/json.log"
fi
# LOG_LEVEL=warning: the start is not logged, the server serves all the same.
env ORDERS_GRPC_SERVER_ADDRESS=$address LOG_LEVEL=warning "$server_bin" \
  eventsourcing_grpc.example:Orders >"$work/quiet.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do "$client_bin" "$address" ping >/dev/null 2>&1 && break; sleep 0.05; done
check "LOG_LEVEL=warning: serving" expect_exit 0 "ok" "$client_bin" "$address" ping
kill -TERM $server_pid; wait $server_pid
check "LOG_LEVEL=warning: nothing logged at info" test ! -s "$work/quiet.log"
check "text: time, level, application" grep -qE \
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{15}Z info Orders: eventsourcing_grpc.example:Orders listening on ' "$work/orders.log"
check "a bad LOG_LEVEL is a configuration error" expect_exit 3 \
  "LOG_LEVEL is 'loud': error, warning, info or debug expected" \
  env ORDERS_GRPC_SERVER_ADDRESS=$address LOG_LEVEL=loud "$server_bin" eventsourcing_grpc.example:Orders
check "a bad LOG_FORMAT is a configuration error" expect_exit 3 \
  "ORDERS_LOG_FORMAT is 'xml': text or json expected" \
  env ORDERS_GRPC_SERVER_ADDRESS=$address ORDERS_LOG_FORMAT=xml "$server_bin" eventsourcing_grpc.example:Orders

finish
