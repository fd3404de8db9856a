#!/usr/bin/env bash
# Installs the Debian 12 packages a build needs (only those missing; scripts/lib/packages.sh
# names them) and builds.
#   scripts/setup.sh [--build-dir=DIR]     the library, the three console programs and the
#                                          example, into build/ (what scripts/run-example.sh uses)
#   scripts/setup.sh --tests [--sanitize=address,undefined|thread] [--build-dir=DIR]
#                                          the test suite's packages too (Patroni and etcd
#                                          for the failover test among them), and every target
#                                          (tests, benchmarks), with warnings fatal
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh

sanitize=""
build_dir="build"
tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    --sanitize=*) sanitize="${arg#--sanitize=}" ;;
    --build-dir=*) build_dir="${arg#--build-dir=}" ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
if [ -n "$sanitize" ] && [ "$tests" -eq 0 ]; then
  echo "setup.sh: --sanitize builds the tests: add --tests" >&2
  exit 2
fi

build_type=RelWithDebInfo
[ -z "$sanitize" ] || build_type=Debug
if [ "$tests" -eq 1 ]; then
  esg_need build tests patroni
  # Warnings are fatal for developers and CI, not for users (a newer compiler may warn more).
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" -DESG_SANITIZE="$sanitize" \
    -DBUILD_TESTING=ON -DESG_WERROR=ON >/dev/null
  cmake --build "$build_dir" -j"$(nproc)"
else
  esg_need build
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$build_dir" -j"$(nproc)" --target eventsourcing_grpc eventsourcing_grpc_server \
    eventsourcing_grpc_runner eventsourcing_grpc_client example_system
fi
