#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine, runs a server from it
# and calls it with the installed client, then removes the package.
# Needs root (dpkg -i); CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh
esg_need build deb python
deb=$(scripts/make-deb.sh)
echo "package: $deb"
dpkg-deb --info "$deb" | grep -E "Package|Version|Depends"
# apt installs a local package with its dependencies (the run-time libraries).
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
trap 'dpkg -r eventsourcing-grpc-c >/dev/null' EXIT
/usr/bin/eventsourcing_grpc_server --version
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
GRPC_DNS_RESOLVER=native ORDERS_GRPC_SERVER_ADDRESS=localhost:$port \
  /usr/bin/eventsourcing_grpc_server eventsourcing_grpc.example:Orders >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.05; done
order=$(GRPC_DNS_RESOLVER=native /usr/bin/eventsourcing_grpc_client localhost:$port call create_new_order)
kill -TERM $pid; wait $pid
rm -f "$log"
echo "$order" | grep -q uuid_hex
test -f /usr/share/man/man1/eventsourcing_grpc_server.1.gz || test -f /usr/share/man/man1/eventsourcing_grpc_server.1
test -f /usr/share/bash-completion/completions/eventsourcing_grpc_client
test -f /usr/share/eventsourcing_grpc/proto/eventsourcing_grpc/protos/application.proto
pkg-config --modversion eventsourcing_grpc
echo "deb: installed, served and called an order: $order"
