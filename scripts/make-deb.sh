#!/usr/bin/env bash
# Builds the Debian package from the tree (CPack, runtime dependencies found by
# dpkg-shlibdeps) into build-deb/ and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --build-dir=build-deb >/dev/null
if ! command -v dpkg-shlibdeps >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
fi
cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-deb -j"$(nproc)" >/dev/null
(cd build-deb && cpack -G DEB >/dev/null)
ls "$PWD"/build-deb/eventsourcing-grpc-c_*.deb
