#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, on 127.0.0.1 and a port of its own, kept in DIR.
# Installs Debian's server and client (the "postgres" set of scripts/lib/packages.sh, with
# --no-install-recommends) when they are missing, unless PG_BINDIR names binaries of your own.
#
# Usage: scripts/postgres-test-server.sh start|stop|restart|status|env DIR
#        scripts/postgres-test-server.sh createdb DIR NAME...
#        scripts/postgres-test-server.sh run DIR -- COMMAND [ARG...]
#        scripts/postgres-test-server.sh standby DIR PRIMARY_DIR [--synchronous]
#        scripts/postgres-test-server.sh crash|promote|pause|resume|port DIR
#   start    initialises DIR on first use (initdb, a role and a database with a password) and
#            starts the server; does nothing when it is running already
#   stop     stops it (fast: sessions are ended, committed work is kept)
#   restart  stops and starts it again (what a database restart does to the clients)
#   status   exits 0 when it is running
#   createdb makes more databases for the same role (one per application, say), if missing
#   env      prints the settings as `export POSTGRES_...=...` lines
#   run      runs COMMAND with those settings in its environment, and ESG_POSTGRES_TEST_SERVER
#            and ESG_POSTGRES_TEST_DIR naming this script and DIR (for tests that restart it)
#   standby  makes DIR a streaming standby of the (running) server in PRIMARY_DIR, on a port of
#            its own, and starts it; with --synchronous the primary then waits for it at every
#            commit (synchronous_standby_names = '*'), so that no acknowledged write is lost
#   crash    stops the server at once, as a crash would (pg_ctl -m immediate: no checkpoint)
#   promote  makes a standby the primary (pg_ctl promote)
#   pause    freezes the server (SIGSTOP to the postmaster and every process it started), as a
#            hung machine would: connections stay open and nothing answers
#   resume   lets it go on (SIGCONT)
#   port     prints the server's port
#
# initdb refuses to run as root, so as root the server runs as the `postgres` user (runuser), in
# DIR/pg when that user can reach it and otherwise in a folder under /tmp (named in DIR/runtime).
set -euo pipefail
. "$(dirname "$0")/lib/packages.sh"
. "$(dirname "$0")/lib/postgres_test.sh"

readonly USAGE="start|stop|restart|status|env|crash|promote|pause|resume|port DIR | createdb DIR NAME... | run DIR -- COMMAND [ARG...] | standby DIR PRIMARY_DIR [--synchronous]"
usage() {
  echo "usage: $0 $USAGE" >&2
  exit 2
}
command_and_dir "$USAGE" "$@"
shift 2

readonly FIRST_PORT=54329 # ports are tried from here up, and the first free one is kept
readonly DB_NAME=esg_test
readonly DB_USER=esg_test

die() {
  echo "postgres-test-server: $*" >&2
  exit 1
}

# The newest installed server's binaries (PG_BINDIR overrides; else Debian's are installed).
find_bindir() {
  [ -n "${PG_BINDIR:-}" ] || esg_need postgres >&2
  local found="${PG_BINDIR:-}"
  if [ -z "$found" ]; then
    found="$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n 1)"
  fi
  if [ -z "$found" ] && command -v pg_ctl >/dev/null; then
    found="$(dirname "$(command -v pg_ctl)")"
  fi
  if [ -z "$found" ] || [ ! -x "$found/initdb" ]; then
    die "no PostgreSQL server found${found:+ in $found}: set PG_BINDIR to a folder with initdb"
  fi
  echo "$found"
}

# Whether the server's user can reach (traverse) a folder.
owner_can_reach() {
  if is_root; then
    runuser -u postgres -- test -x "$1" 2>/dev/null
  else
    test -x "$1"
  fi
}

# The folder holding the data, the socket and the log: chosen once, then read from DIR/runtime.
# The socket path must stay under the kernel's limit of about 107 bytes.
choose_runtime() {
  if [ -f "$dir/runtime" ]; then
    runtime="$(cat "$dir/runtime")"
    if [ ! -d "$runtime" ]; then # a folder under /tmp that was cleaned away: start afresh
      mkdir -p "$runtime"
      chmod 700 "$runtime"
      if is_root; then chown postgres: "$runtime"; fi
    fi
    return
  fi
  runtime="$dir/pg"
  mkdir -p "$runtime"
  chmod 700 "$runtime"
  if is_root; then chown postgres: "$runtime"; fi
  if ! owner_can_reach "$runtime" || [ ${#runtime} -gt 80 ]; then
    rmdir "$runtime"
    runtime="$(mktemp -d "${TMPDIR:-/tmp}/esg-pg.XXXXXX")"
    if is_root; then chown postgres: "$runtime"; fi
  fi
  echo "$runtime" >"$dir/runtime"
}

port_is_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

choose_port() {
  if [ -f "$dir/port" ]; then
    port="$(cat "$dir/port")"
    return
  fi
  free_port_from "$FIRST_PORT"
}

# Sets port to the first free one from $1 on, and keeps it in DIR/port.
free_port_from() {
  port="$1"
  while port_is_taken "$port"; do
    port=$((port + 1))
    [ "$port" -lt $((FIRST_PORT + 200)) ] || die "no free port in $FIRST_PORT..$port"
  done
  echo "$port" >"$dir/port"
}

is_running() {
  [ -f "$runtime/data/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$runtime/data" status >/dev/null 2>&1
}

# The superuser's SQL over the server's own socket (trusted; only the owner can open it).
admin_sql() {
  as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$runtime" -p "$port" -U postgres \
    -d postgres -At "$@"
}

initialise() {
  [ -f "$runtime/data/PG_VERSION" ] && return
  if [ ! -f "$dir/password" ]; then
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/password")
  fi
  as_owner "$bindir/initdb" -D "$runtime/data" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >"$runtime/initdb.log" 2>&1 ||
    die "initdb failed: see $runtime/initdb.log"
  # Loopback TCP only; the socket lives in the runtime folder, not /var/run/postgresql. fsync is
  # off because a test database need not survive the machine crashing, only the server.
  as_owner tee -a "$runtime/data/postgresql.conf" >/dev/null <<EOF

# postgres-test-server.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$runtime'
fsync = off
max_connections = 200
log_min_messages = warning
EOF
}

start() {
  is_running && return
  # The port kept from the first start may have been taken since: move to a free one.
  if port_is_taken "$port"; then
    rm -f "$dir/port"
    choose_port
    as_owner sed -i "s/^port = [0-9]*\$/port = $port/" "$runtime/data/postgresql.conf"
  fi
  local attempt=1
  until as_owner "$bindir/pg_ctl" -D "$runtime/data" -l "$runtime/postgres.log" -w -t 60 start \
    >/dev/null 2>&1; do
    # A port nothing listens on may still be bound: a client's connection may have it as its
    # own (the ports from FIRST_PORT lie in the kernel's ephemeral range). Try the next ones.
    if [ "$attempt" -ge 10 ] || ! tail -n 10 "$runtime/postgres.log" | grep -q "Address already in use"; then
      die "the server did not start: see $runtime/postgres.log"
    fi
    attempt=$((attempt + 1))
    free_port_from $((port + 1))
    as_owner sed -i "s/^port = [0-9]*\$/port = $port/" "$runtime/data/postgresql.conf"
  done
  local password
  password="$(cat "$dir/password")"
  if [ "$(admin_sql -c "SELECT count(*) FROM pg_roles WHERE rolname = '$DB_USER'")" = 0 ]; then
    admin_sql -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$password'"
  fi
  create_database "$DB_NAME"
}

create_database() {
  case "$1" in
  *[!a-z0-9_]* | "") die "database names here are lower-case letters, digits and _: '$1'" ;;
  esac
  if [ "$(admin_sql -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 0 ]; then
    admin_sql -c "CREATE DATABASE $1 OWNER $DB_USER"
  fi
}

stop() {
  is_running || return 0
  as_owner "$bindir/pg_ctl" -D "$runtime/data" -m "${1:-fast}" -w -t 60 stop >/dev/null
}

# A copy of the primary's data (pg_basebackup over its socket, as the superuser that owns both),
# written as a standby of it (-R), with this server's own port and socket folder.
make_standby() {
  local primary_dir="$1" primary_runtime primary_port
  [ -f "$primary_dir/runtime" ] && [ -f "$primary_dir/port" ] ||
    die "no server in $primary_dir: start it first"
  primary_runtime="$(cat "$primary_dir/runtime")"
  primary_port="$(cat "$primary_dir/port")"
  cp "$primary_dir/password" "$dir/password"
  [ -f "$runtime/data/PG_VERSION" ] && return
  as_owner "$bindir/pg_basebackup" -h "$primary_runtime" -p "$primary_port" -U postgres \
    -D "$runtime/data" -R -X stream -c fast >"$runtime/basebackup.log" 2>&1 ||
    die "pg_basebackup failed: see $runtime/basebackup.log"
  as_owner sed -i -e "s/^port = [0-9]*\$/port = $port/" \
    -e "s|^unix_socket_directories = .*\$|unix_socket_directories = '$runtime'|" \
    "$runtime/data/postgresql.conf"
}

# The primary in PRIMARY_DIR waits for a standby at each commit.
make_synchronous() {
  local primary_runtime primary_port
  primary_runtime="$(cat "$1/runtime")"
  primary_port="$(cat "$1/port")"
  as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$primary_runtime" -p "$primary_port" \
    -U postgres -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
    -c "SELECT pg_reload_conf()" >/dev/null
}

print_env() {
  if [ ! -f "$dir/port" ] || [ ! -f "$dir/password" ]; then
    die "no server in $dir: run '$0 start $dir' first"
  fi
  cat <<EOF
export POSTGRES_HOST=127.0.0.1
export POSTGRES_PORT=$(cat "$dir/port")
export POSTGRES_DBNAME=$DB_NAME
export POSTGRES_USER=$DB_USER
export POSTGRES_PASSWORD=$(cat "$dir/password")
EOF
}

case "$command" in
start)
  bindir="$(find_bindir)"
  choose_runtime
  choose_port
  initialise
  start
  ;;
stop | restart | status | crash | promote | pause | resume | port)
  if [ ! -f "$dir/runtime" ]; then # never started here
    case "$command" in
    stop | crash | resume) exit 0 ;;
    *) die "no server in $dir" ;;
    esac
  fi
  bindir="$(find_bindir)"
  choose_runtime
  choose_port
  case "$command" in
  stop) stop ;;
  crash) stop immediate ;;
  restart)
    stop
    start
    ;;
  status) is_running ;;
  promote) as_owner "$bindir/pg_ctl" -D "$runtime/data" -w -t 60 promote >/dev/null ;;
  pause | resume)
    # (Each backend is a process group of its own: the postmaster's children are named.)
    postmaster="$(head -n 1 "$runtime/data/postmaster.pid")"
    # shellcheck disable=SC2046 # one word per process id
    kill -"$([ "$command" = pause ] && echo STOP || echo CONT)" "$postmaster" \
      $(pgrep -P "$postmaster")
    ;;
  port) echo "$port" ;;
  esac
  ;;
standby)
  [ $# -ge 1 ] || usage
  primary_dir="$(cd "$1" && pwd)"
  bindir="$(find_bindir)"
  choose_runtime
  choose_port
  make_standby "$primary_dir"
  start
  if [ "${2:-}" = "--synchronous" ]; then make_synchronous "$primary_dir"; fi
  ;;
createdb)
  [ $# -ge 1 ] || usage
  bindir="$(find_bindir)"
  choose_runtime
  choose_port
  is_running || die "no server running in $dir: run '$0 start $dir' first"
  for name in "$@"; do create_database "$name"; done
  ;;
env) print_env ;;
run)
  run_with_settings "$(print_env)" "$@"
  ;;
*) usage ;;
esac
