#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite with CTest.
# Usage: scripts/test.sh [--sanitize=address,undefined|thread]
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="build"
for arg in "$@"; do
  case "$arg" in
    --sanitize=*) s="${arg#--sanitize=}"; build_dir="build-${s//,/-}" ;;
  esac
done
scripts/setup.sh --tests "$@" --build-dir="$build_dir"

# Sanitizer settings: fail on the first report. Debian's gRPC is not built
# with ThreadSanitizer; tests/tsan.supp says which of its reports are hidden and why.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
# c-ares (gRPC's default resolver) leaks a little per lookup of "localhost".
export GRPC_DNS_RESOLVER=native
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)"
