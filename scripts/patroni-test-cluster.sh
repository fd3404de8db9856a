#!/usr/bin/env bash
# A throwaway PostgreSQL cluster managed by Patroni, for the tests: one etcd and two PostgreSQL
# servers (a primary and a synchronous standby, Patroni's synchronous_mode) on 127.0.0.1 and
# ports of their own, kept in a folder under /tmp named in DIR. Installs Debian's patroni,
# etcd-server and postgresql (the "patroni" set of scripts/lib/packages.sh) when missing.
#
# Usage: scripts/patroni-test-cluster.sh start|stop|status|env|leader DIR
#        scripts/patroni-test-cluster.sh switchover|kill-postmaster|crash-leader DIR
#        scripts/patroni-test-cluster.sh createdb DIR NAME...
#        scripts/patroni-test-cluster.sh run DIR -- COMMAND [ARG...]
#   start            starts etcd and both nodes, and waits until a leader and a synchronous
#                    standby run (a role and a database esg_test with a password, made once)
#   stop             stops the nodes and etcd, and removes the cluster
#   status           exits 0 when a leader runs
#   env              prints the settings as `export POSTGRES_...=...` lines: both servers in
#                    POSTGRES_HOST and POSTGRES_PORT (connections find the primary)
#   leader           prints the leader's name (pg1 or pg2)
#   switchover       makes the synchronous standby the leader (patronictl switchover), waits
#   kill-postmaster  SIGKILLs the leader's postmaster (Patroni then restarts it, or fails over)
#   crash-leader     SIGKILLs the leader's Patroni and postmaster, as a machine that dies; waits
#                    until the standby takes over (once the leader key expires: ttl 10 s), then
#                    starts the crashed node's Patroni again (it rejoins as a standby)
#                    The three wait first for a leader with a synchronous standby (up to 120 s).
#   createdb         makes more databases for the role esg_test, if missing
#   run              runs COMMAND with the settings in its environment, and
#                    ESG_POSTGRES_TEST_SERVER and ESG_POSTGRES_TEST_DIR naming this script and DIR
#
# Patroni and PostgreSQL refuse to run as root: as root they run as the `postgres` user.
set -euo pipefail
. "$(dirname "$0")/lib/packages.sh"
. "$(dirname "$0")/lib/postgres_test.sh"
. "$(dirname "$0")/lib/ports.sh"

readonly USAGE="start|stop|status|env|leader|switchover|kill-postmaster|crash-leader DIR | createdb DIR NAME... | run DIR -- COMMAND [ARG...]"
usage() {
  echo "usage: $0 $USAGE" >&2
  exit 2
}
command_and_dir "$USAGE" "$@"
shift 2

readonly DB_NAME=esg_test
readonly DB_USER=esg_test
readonly SCOPE=esg-test
readonly NODES=(pg1 pg2)

die() {
  echo "patroni-test-cluster: $*" >&2
  exit 1
}

# The state kept in DIR: the runtime folder, the ports, the passwords.
load() {
  [ -f "$dir/runtime" ] || die "no cluster in $dir: run '$0 start $dir' first"
  runtime="$(cat "$dir/runtime")"
  read -r etcd_port etcd_peer_port rest_ports_0 rest_ports_1 pg_ports_0 pg_ports_1 <"$dir/cluster-ports"
  rest_ports=("$rest_ports_0" "$rest_ports_1")
  pg_ports=("$pg_ports_0" "$pg_ports_1")
}

bindir() {
  printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n 1
}

# The cluster as patronictl sees it, as JSON.
members_json() {
  as_owner patronictl -c "$runtime/pg1.yml" list -f json 2>/dev/null || echo '[]'
}

# The member with ROLE (Leader, "Sync Standby") that is running or streaming, if any.
member_with_role() {
  members_json | /usr/bin/python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m.get("Role") == sys.argv[1] and m.get("State") in ("running", "streaming"):
        print(m["Member"])
        break' "$1"
}

# Waits (up to 120 s) for a leader with a synchronous standby, both running in one listing, and
# sets leader and standby to their names.
wait_healthy() {
  local deadline=$((SECONDS + 120)) pair
  while :; do
    pair="$(members_json | /usr/bin/python3 -c '
import json, sys
members = json.load(sys.stdin)
def running(role):
    return next((m["Member"] for m in members
                 if m.get("Role") == role and m.get("State") in ("running", "streaming")), "")
if running("Leader") and running("Sync Standby"):
    print(running("Leader"), running("Sync Standby"))')"
    if [ -n "$pair" ]; then
      read -r leader standby <<<"$pair"
      return 0
    fi
    ((SECONDS < deadline)) || {
      members_json >&2
      die "no leader with a synchronous standby after 120 s: see $runtime/*.log"
    }
    sleep 0.5
  done
}

# Runs a database event (a function) on a healthy cluster, again (up to 3 times) when the
# cluster changed between the listing and the event (a leader that was restarting, say).
on_healthy_cluster() {
  local attempt
  for attempt in 1 2 3; do
    wait_healthy
    "$1" && return 0
    sleep 1
  done
  die "$1 failed 3 times"
}

do_switchover() {
  as_owner patronictl -c "$runtime/pg1.yml" switchover --leader "$leader" --candidate "$standby" \
    --force >/dev/null 2>&1
}

do_kill_postmaster() {
  local pid
  pid="$(postmaster_pid "$leader")"
  [ -n "$pid" ] && kill -KILL "$pid"
}

do_crash_leader() {
  local patroni postmaster deadline new
  patroni="$(patroni_pid "$leader")"
  postmaster="$(postmaster_pid "$leader")"
  [ -n "$patroni" ] && [ -n "$postmaster" ] && kill -KILL "$patroni" "$postmaster" || return 1
  deadline=$((SECONDS + 60))
  until new="$(member_with_role Leader)" && [ -n "$new" ] && [ "$new" != "$leader" ]; do
    ((SECONDS < deadline)) || die "no new leader 60 s after $leader crashed"
    sleep 0.2
  done
  start_node "$leader"
}

write_config() { # NODE INDEX
  local node="$1" i="$2"
  cat >"$runtime/$node.yml" <<EOF
scope: $SCOPE
name: $node
log:
  level: WARNING
restapi:
  listen: 127.0.0.1:${rest_ports[i]}
  connect_address: 127.0.0.1:${rest_ports[i]}
etcd3:
  hosts: 127.0.0.1:$etcd_port
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_log_hints: "on"
        max_connections: 200
        fsync: "off"
  initdb:
    - encoding: UTF8
    - locale: C
  post_bootstrap: $runtime/post_bootstrap.sh
postgresql:
  listen: 127.0.0.1:${pg_ports[i]}
  connect_address: 127.0.0.1:${pg_ports[i]}
  data_dir: $runtime/$node
  bin_dir: $(bindir)
  pgpass: $runtime/pgpass-$node
  # (a standby's copy starts with a checkpoint: at once, not spread over minutes)
  basebackup:
    - checkpoint: fast
  authentication:
    superuser:
      username: postgres
      password: "$(cat "$dir/superuser-password")"
    replication:
      username: replicator
      password: "$(cat "$dir/replication-password")"
  parameters:
    unix_socket_directories: "$runtime"
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
EOF
}

start_node() { # NODE
  local node="$1"
  as_owner setsid patroni "$runtime/$node.yml" >>"$runtime/$node.log" 2>&1 </dev/null &
}

# The pid of a process whose command line is exactly $* (runuser's and setsid's are not).
pid_of() {
  pgrep -f -x "$*" || true
}

patroni_pid() { # NODE
  pid_of "/usr/bin/python3 /usr/bin/patroni $runtime/$1.yml"
}

postmaster_pid() { # NODE: from its pid file, if any
  if [ -f "$runtime/$1/postmaster.pid" ]; then head -n 1 "$runtime/$1/postmaster.pid"; fi
}

node_is_up() { # NODE: its Patroni runs
  [ -n "$(patroni_pid "$1")" ]
}

start() {
  esg_need patroni
  if [ -f "$dir/runtime" ]; then
    load
    node_is_up pg1 && node_is_up pg2 && return
    die "a cluster in $dir is half up: '$0 stop $dir' first"
  fi
  runtime="$(mktemp -d "${TMPDIR:-/tmp}/esg-patroni.XXXXXX")"
  chmod 700 "$runtime"
  if is_root; then chown postgres: "$runtime"; fi
  echo "$runtime" >"$dir/runtime"
  local ports=() i work="$dir" # (free_port keeps the ports it gave in $work/ports)
  for i in 1 2 3 4 5 6; do ports+=("$(free_port)"); done
  echo "${ports[*]}" >"$dir/cluster-ports"
  for secret in password superuser-password replication-password; do
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/$secret")
  done
  load
  cat >"$runtime/post_bootstrap.sh" <<EOF
#!/bin/sh
# Patroni runs this once, on the first primary, with a connection string for the superuser.
set -e
psql -X -q -v ON_ERROR_STOP=1 "\$1" -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$(cat "$dir/password")'" \
  -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
EOF
  chmod 755 "$runtime/post_bootstrap.sh"
  for i in 0 1; do write_config "${NODES[i]}" "$i"; done
  if is_root; then chown postgres: "$runtime"/*; fi
  as_owner setsid etcd --name esg --data-dir "$runtime/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "esg=http://127.0.0.1:$etcd_peer_port" >"$runtime/etcd.log" 2>&1 </dev/null &
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$etcd_port") 2>/dev/null; do
    ((SECONDS < deadline)) || die "etcd does not listen: see $runtime/etcd.log"
    sleep 0.2
  done
  start_node pg1
  # The first node bootstraps the cluster; the second copies it once it leads.
  deadline=$((SECONDS + 120))
  until [ -n "$(member_with_role Leader)" ]; do
    ((SECONDS < deadline)) || die "pg1 did not bootstrap: see $runtime/pg1.log"
    sleep 0.5
  done
  start_node pg2
  wait_healthy
}

stop() {
  [ -f "$dir/runtime" ] || return 0
  load
  local node pid etcd
  for node in "${NODES[@]}"; do
    pid="$(patroni_pid "$node")"
    if [ -n "$pid" ]; then kill -TERM "$pid"; fi
  done
  for node in "${NODES[@]}"; do
    for _ in $(seq 300); do node_is_up "$node" || break; sleep 0.1; done
    pid="$(patroni_pid "$node")"
    if [ -n "$pid" ]; then kill -KILL "$pid"; fi
    # A postmaster left by a killed Patroni.
    pid="$(postmaster_pid "$node")"
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  etcd="$(pgrep -f "^etcd --name esg --data-dir $runtime/etcd" || true)"
  if [ -n "$etcd" ]; then kill -TERM "$etcd"; fi
  for _ in $(seq 50); do pgrep -f "^etcd --name esg --data-dir $runtime/etcd" >/dev/null || break; sleep 0.1; done
  rm -rf "$runtime"
  rm -f "$dir"/runtime "$dir"/ports "$dir"/cluster-ports "$dir"/*password
}

leader_port() {
  local leader
  leader="$(member_with_role Leader)"
  [ -n "$leader" ] || die "no leader"
  if [ "$leader" = pg1 ]; then echo "${pg_ports[0]}"; else echo "${pg_ports[1]}"; fi
}

admin_sql() { # on the leader, as the superuser, over its socket
  as_owner psql -X -q -v ON_ERROR_STOP=1 -h "$runtime" -p "$(leader_port)" -U postgres \
    -d postgres -At "$@"
}

create_database() {
  case "$1" in
  *[!a-z0-9_]* | "") die "database names here are lower-case letters, digits and _: '$1'" ;;
  esac
  if [ "$(admin_sql -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 0 ]; then
    admin_sql -c "CREATE DATABASE $1 OWNER $DB_USER"
  fi
}

print_env() {
  cat <<EOF
export POSTGRES_HOST=127.0.0.1,127.0.0.1
export POSTGRES_PORT=${pg_ports[0]},${pg_ports[1]}
export POSTGRES_DBNAME=$DB_NAME
export POSTGRES_USER=$DB_USER
export POSTGRES_PASSWORD=$(cat "$dir/password")
EOF
}

case "$command" in
start) start ;;
stop) stop ;;
*)
  load
  case "$command" in
  status) [ -n "$(member_with_role Leader)" ] ;;
  env) print_env ;;
  leader) member_with_role Leader ;;
  switchover)
    on_healthy_cluster do_switchover
    wait_healthy
    ;;
  kill-postmaster) on_healthy_cluster do_kill_postmaster ;;
  crash-leader) on_healthy_cluster do_crash_leader ;;
  createdb)
    [ $# -ge 1 ] || usage
    for name in "$@"; do create_database "$name"; done
    ;;
  run)
    run_with_settings "$(print_env)" "$@"
    ;;
  *) usage ;;
  esac
  ;;
esac
