#!/usr/bin/env bash
# Lint: the formatting of every C file against .clang-format (scripts/fmt.sh
# fixes it) and static analysis with cppcheck; both must be clean.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh
esg_need lint
git ls-files --cached --others --exclude-standard '*.c' '*.h' | xargs clang-format --dry-run -Werror
echo "lint: formatting clean"
# The generated protobuf-c headers check the library's version: tell cppcheck
# the installed one instead of reading system headers.
generated="build/generated"
[ -d "$generated" ] || generated="$(mktemp -d)"
if [ ! -f "$generated/eventsourcing_grpc_c/v1/node.pb-c.h" ]; then
  protoc-c --proto_path=proto --c_out="$generated" eventsourcing_grpc/protos/application.proto \
    eventsourcing_grpc_c/v1/node.proto grpc/health/v1/health.proto
fi
if [ ! -f "$generated/grpc/reflection/v1/reflection.pb-c.h" ]; then
  protoc-c --proto_path=/usr/share/grpc-proto --c_out="$generated" \
    grpc/reflection/v1alpha/reflection.proto grpc/reflection/v1/reflection.proto
fi
# The tests and fuzz targets too, with the paths their build defines given as stand-ins.
cppcheck --quiet --enable=warning,performance,portability --std=c11 --inline-suppr \
  --error-exitcode=1 --suppress=missingIncludeSystem \
  -Iinclude -Isrc -Itests/support -I"$generated" \
  -DPROTOBUF_C_VERSION_NUMBER=1004001 -DPROTOBUF_C_MIN_COMPILER_VERSION=1000000 \
  -DESG_SERVER_PROGRAM='"x"' -DESG_SOURCE_DIR='"x"' -DESG_INTEROP_SERVER_SCRIPT='"x"' \
  -DESG_INTEROP_PYTHON='"x"' -DESG_TEST_VECTORS_DIR='"x"' -DESG_TEST_PLUGIN_DIR='"x"' \
  -DESG_VALGRIND_SUPPRESSIONS='"x"' \
  $(ls -d src examples bench tests fuzz 2>/dev/null)
echo "lint: cppcheck clean"
