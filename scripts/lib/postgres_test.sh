# What the PostgreSQL servers of the tests share (scripts/postgres-test-server.sh and
# scripts/patroni-test-cluster.sh source it): running PostgreSQL's programs as their owner
# (initdb, the server and Patroni refuse root, so as root they run as the `postgres` user, in
# $runtime, a folder that user can enter), and the `run` command.

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as the user that owns the server: postgres when we are root, else ourselves.
# It runs in the runtime folder, since postgres may not be allowed into the current one.
as_owner() {
  if is_root; then
    (cd "$runtime" && runuser -u postgres -- "$@")
  else
    (cd "$runtime" && "$@")
  fi
}

# `run DIR -- COMMAND...`, as run_with_settings SETTINGS -- COMMAND...: COMMAND with SETTINGS
# (`export POSTGRES_...=...` lines) in its environment, and ESG_POSTGRES_TEST_SERVER and
# ESG_POSTGRES_TEST_DIR naming the script ($0) and its folder ($dir), for tests that restart or
# fail over the server.
run_with_settings() {
  local settings="$1"
  shift
  [ "${1:-}" = "--" ] && shift
  if [ $# -eq 0 ]; then
    echo "usage: $0 run DIR -- COMMAND [ARG...]" >&2
    exit 2
  fi
  eval "$settings"
  export ESG_POSTGRES_TEST_SERVER
  ESG_POSTGRES_TEST_SERVER="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
  export ESG_POSTGRES_TEST_DIR="$dir"
  exec "$@"
}

# Sets command and dir (made if missing, then absolute) from the script's `COMMAND DIR ...`, or
# says the usage line given and exits 2. The caller shifts the two off.
command_and_dir() {
  local usage_line="$1"
  shift
  if [ $# -lt 2 ]; then
    echo "usage: $0 $usage_line" >&2
    exit 2
  fi
  command="$1"
  mkdir -p "$2"
  dir="$(cd "$2" && pwd)"
}
