#!/usr/bin/env bash
# Runs COMMAND in a network namespace of its own (util-linux's unshare), on a loopback that loses
# LOSS percent of its packets at random, both ways (an nftables rule: numgen random), and with an
# empty nftables chain, "inet esg_chaos cut", in which the command may drop what goes to or
# comes from a port for a while: a network partition (example_cut_off in example_servers.c).
# (Loss by nftables, not tc netem: these kernels are built without netem, so no delays.) With
# --postgres DIR, a PostgreSQL test server of its own is started in the namespace, kept in DIR,
# and COMMAND runs under scripts/postgres-test-server.sh run DIR (it is stopped afterwards).
# Root only (namespaces, nftables): exits 77, which CTest reports as skipped, otherwise.
# Usage: tests/chaos/in_network_namespace.sh LOSS [--postgres DIR] -- COMMAND [ARG...]
set -euo pipefail
usage() {
  echo "usage: $0 LOSS [--postgres DIR] -- COMMAND [ARG...]" >&2
  exit 2
}
[ $# -ge 3 ] || usage
loss="$1"
shift
postgres_dir=""
if [ "$1" = "--postgres" ]; then
  [ $# -ge 4 ] || usage
  postgres_dir="$2"
  shift 2
fi
[ "$1" = "--" ] || usage
shift
case "$loss" in '' | *[!0-9]*) usage ;; esac
if [ "$(id -u)" -ne 0 ]; then
  echo "in_network_namespace.sh: skipped: a network namespace and nftables need root" >&2
  exit 77
fi
if [ -z "${ESG_IN_NETWORK_NAMESPACE:-}" ]; then
  if ! unshare --net -- nft list tables >/dev/null 2>&1; then
    echo "in_network_namespace.sh: skipped: no network namespace with nftables here" \
      "(unshare --net -- nft list tables failed)" >&2
    exit 77
  fi
  export ESG_IN_NETWORK_NAMESPACE=1
  if [ -n "$postgres_dir" ]; then
    exec unshare --net -- "$0" "$loss" --postgres "$postgres_dir" -- "$@"
  fi
  exec unshare --net -- "$0" "$loss" -- "$@"
fi
ip link set lo up
nft -f - <<RULES
table inet esg_chaos {
  chain loss {
    type filter hook input priority 0; policy accept;
    numgen random mod 1000 < $((loss * 10)) drop
  }
  chain cut {
    type filter hook input priority 1; policy accept;
  }
}
RULES
export ESG_CHAOS_PARTITIONS=1 ESG_CHAOS_LOSS="$loss"
if [ -z "$postgres_dir" ]; then
  exec "$@"
fi
postgres_script="$(cd "$(dirname "$0")/../.." && pwd)/scripts/postgres-test-server.sh"
rm -f "$postgres_dir/port" # chosen again: this namespace's ports are all free
"$postgres_script" start "$postgres_dir" >/dev/null
status=0
"$postgres_script" run "$postgres_dir" -- "$@" || status=$?
"$postgres_script" stop "$postgres_dir" || true
exit "$status"
