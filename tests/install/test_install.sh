#!/usr/bin/env bash
# Installs the project into a temporary prefix and uses it as a C programmer
# would: the files are where they belong, the shared library exports exactly
# the public API, and the user's application (examples/user_application)
# builds against the installed library with pkg-config and with CMake's
# find_package, and runs under both installed console programs.
# Usage: test_install.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
source_dir=$1
build_dir=$2
export GRPC_DNS_RESOLVER=native
work=$(mktemp -d)
prefix="$work/prefix"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
n_passed=0
n_failed=0
check() {
  local what=$1; shift
  if "$@" >"$work/out" 2>&1; then n_passed=$((n_passed + 1)); else
    n_failed=$((n_failed + 1)); echo "FAILED: $what"; head -c 2000 "$work/out"; echo; fi
}
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

check "cmake --install" cmake --install "$build_dir" --prefix "$prefix"
libdir=$(cd "$prefix" && ls -d lib*/ | head -1); libdir=${libdir%/}
[ -d "$prefix/lib/x86_64-linux-gnu" ] && libdir=lib/x86_64-linux-gnu
for f in "$libdir/libeventsourcing_grpc.so.0.1.0" "$libdir/libeventsourcing_grpc.so.0" \
         "$libdir/libeventsourcing_grpc.so" "$libdir/libeventsourcing_grpc.a" \
         include/esg.h include/esg/grpc.h include/esg/runner.h \
         bin/eventsourcing_grpc_server bin/eventsourcing_grpc_runner bin/eventsourcing_grpc_client \
         "$libdir/pkgconfig/eventsourcing_grpc.pc" \
         "$libdir/cmake/eventsourcing_grpc/eventsourcing_grpcConfig.cmake" \
         share/man/man1/eventsourcing_grpc_server.1 share/man/man1/eventsourcing_grpc_runner.1; do
  check "installed $f" test -e "$prefix/$f"
done
check "soname" sh -c "objdump -p '$prefix/$libdir/libeventsourcing_grpc.so.0.1.0' | grep -q 'SONAME.*libeventsourcing_grpc.so.0'"

# Only the public API is exported: every esg_ name the headers declare, and nothing else.
nm -D --defined-only "$prefix/$libdir/libeventsourcing_grpc.so" | awk '$3 != "" {print $3}' \
  | sed 's/@.*//' | grep -v '^EVENTSOURCING_GRPC_' | sort -u >"$work/exported"
cat "$prefix"/include/esg/*.h | grep -oE '[ *]esg_[a-z0-9_]+\(|extern const [a-z_]+ esg_[a-z0-9_]+' \
  | grep -oE 'esg_[a-z0-9_]+\(?$' | tr -d '(' | grep -v '_fn$' | sort -u >"$work/declared"
check "exports exactly the declared API" diff "$work/declared" "$work/exported"
check "internal helpers are hidden" sh -c "! grep -q '^esg_buffer_put$' '$work/exported'"

check "man pages list the environment" grep -q "GRPC_SERVER_ADDRESS" "$prefix/share/man/man1/eventsourcing_grpc_server.1"
check "the protocol is installed" cmp "$source_dir/proto/eventsourcing_grpc/protos/application.proto" \
  "$prefix/share/eventsourcing_grpc/proto/eventsourcing_grpc/protos/application.proto"
check "and the health service's" test -f "$prefix/share/eventsourcing_grpc/proto/grpc/health/v1/health.proto"
for program in eventsourcing_grpc_server eventsourcing_grpc_runner eventsourcing_grpc_client; do
  check "bash completion for $program" grep -q "complete -F .* $program" \
    "$prefix/share/bash-completion/completions/$program"
done

# The user's application, with pkg-config ...
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
mkdir -p "$work/pc" "$work/cm"
check "pkg-config build" sh -c "cc -std=c17 -Wall -Werror -shared -fPIC \$(pkg-config --cflags eventsourcing_grpc) \
  '$source_dir/examples/user_application/counters.c' -o '$work/pc/user_counters.so' \$(pkg-config --libs eventsourcing_grpc)"
# ... and with CMake's find_package.
check "find_package configure" cmake -S "$source_dir/examples/user_application" -B "$work/cm-build" \
  -DCMAKE_PREFIX_PATH="$prefix"
check "find_package build" cmake --build "$work/cm-build"
cp "$work/cm-build/user_counters.so" "$work/cm/" 2>/dev/null

# Each build runs under the installed server, and the installed runner.
for way in pc cm; do
  port=$(free_port)
  ESG_TOPIC_PATH="$work/$way" COUNTERS_GRPC_SERVER_ADDRESS=localhost:$port \
    "$prefix/bin/eventsourcing_grpc_server" user_counters:Counters >"$work/server-$way.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/server-$way.log" && break; sleep 0.05; done
  id=$("$prefix/bin/eventsourcing_grpc_client" localhost:$port call create_counter '["visits"]')
  check "$way: server runs the user's application" test -n "$id"
  [ -n "$id" ] || cat "$work/server-$way.log"
  "$prefix/bin/eventsourcing_grpc_client" localhost:$port call increment "[$id]" '{"by":41}' >/dev/null
  check "$way: its methods work" sh -c "'$prefix/bin/eventsourcing_grpc_client' localhost:$port call increment '[$id]' | grep -qx 42"
  kill -TERM $pid; wait $pid
  check "$way: server stops cleanly" test $? -eq 0

  port=$(free_port)
  ESG_TOPIC_PATH="$work/$way" COUNTERS_GRPC_SERVER_ADDRESS=localhost:$port \
    "$prefix/bin/eventsourcing_grpc_runner" user_counters:system >"$work/runner-$way.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "running" "$work/runner-$way.log" && break; sleep 0.05; done
  check "$way: the runner runs the user's system" sh -c \
    "'$prefix/bin/eventsourcing_grpc_client' localhost:$port call create_counter '[\"x\"]' | grep -q uuid_hex"
  kill -TERM $pid; wait $pid
  check "$way: runner stops cleanly" test $? -eq 0
done

echo "$n_passed passed, $n_failed failed"
[ $n_failed -eq 0 ]
