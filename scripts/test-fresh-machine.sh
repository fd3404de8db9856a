#!/usr/bin/env bash
# The README's first command on a fresh Debian 12 machine: the files of a clean clone (tracked
# files, and new ones not ignored when the tree has changes) go into a container of the minbase
# image (scripts/lib/podman.sh), where scripts/run-example.sh must install what it needs, build,
# and take the example's orders to paid. Then the packages it installed are compared with what
# the build set needs (scripts/lib/packages.sh): anything more fails the test.
#
# Needs root (rootful podman). Work files in build-containers/fresh/.
# Usage: scripts/test-fresh-machine.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

. scripts/lib/podman.sh
esg_podman_as_root test-fresh-machine.sh "rootful podman, debootstrap"
. scripts/lib/packages.sh
esg_need podman python git
work="$root/build-containers/fresh"
image=localhost/esg-fresh-machine:test
rm -rf "$work"
mkdir -p "$work/src"
trap 'podman rmi -f "$image" >/dev/null 2>&1 || true' EXIT

esg_make_base_image "$root/build-containers"
podman run --rm --network=none "$esg_base_image" dpkg-query -W -f='${Package}\n' |
  sort >"$work/packages-before"

if [ -n "$(git status --porcelain)" ]; then
  echo "test-fresh-machine.sh: the tree has changes: testing its tracked and new files"
fi
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' file; do [ ! -e "$file" ] || printf '%s\0' "$file"; done |
  tar --null -T - -c | tar -x -C "$work/src"

# The build runs with the host's network (to reach Debian's mirror), so the example's servers
# take free ports of the host.
read -r port1 port2 port3 < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
cat >"$work/Containerfile" <<EOF
FROM $esg_base_image
COPY src /src
WORKDIR /src
ENV ORDERS_GRPC_SERVER_ADDRESS=localhost:$port1 RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:$port2 \
    PAYMENTS_GRPC_SERVER_ADDRESS=localhost:$port3
RUN started=\$(date +%s) && scripts/run-example.sh && \
    echo "run-example.sh on a fresh machine: \$((\$(date +%s) - started)) s"
EOF
echo "== scripts/run-example.sh in a fresh Debian 12 container =="
if ! podman build --isolation=chroot --no-cache -t "$image" "$work" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  echo "FAILED: scripts/run-example.sh on a fresh machine (log: $work/build.log)" >&2
  exit 1
fi
grep -E 'installing|paid:|fresh machine:' "$work/build.log"
n_paid=$(grep -c 'paid: true' "$work/build.log" || true)
if [ "$n_paid" -ne 3 ]; then
  echo "FAILED: $n_paid of 3 orders paid (log: $work/build.log)" >&2
  exit 1
fi

# What it installed, against what the build set needs (with dependencies, no recommends).
podman run --rm --network=none "$image" dpkg-query -W -f='${Package}\n' | sort >"$work/packages-after"
comm -13 "$work/packages-before" "$work/packages-after" >"$work/packages-installed"
mapfile -t build_packages < <(esg_packages build)
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${build_packages[@]}" | grep -v '^[ <]' | sort -u >"$work/packages-needed"
extra=$(comm -23 "$work/packages-installed" "$work/packages-needed")
if [ -n "$extra" ]; then
  echo "FAILED: scripts/run-example.sh installed packages the build does not need:" $extra >&2
  exit 1
fi
echo "fresh machine: 3 orders paid; $(wc -l <"$work/packages-installed") packages installed, all needed by the build"
