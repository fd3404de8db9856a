#!/usr/bin/env bash
# Builds the Debian package from the tree (CPack, runtime dependencies found by
# dpkg-shlibdeps) into build-deb/ and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh
esg_need build deb >&2
cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DESG_WERROR=ON >/dev/null
cmake --build build-deb -j"$(nproc)" >/dev/null
(cd build-deb && cpack -G DEB >/dev/null)
ls "$PWD"/build-deb/eventsourcing-grpc-c_*.deb
