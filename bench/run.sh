#!/usr/bin/env bash
# Runs the benchmarks and regenerates their report. Usage:
#   bench/run.sh            full: 5 runs of everything (~10 min on 2 cores), then writes
#                           bench/results/latest.json, docs/benchmarks.md and
#                           docs/benchmarks-latency.png
#   bench/run.sh --short    each measurement once and briefly, to check that the harness
#                           works (CI); no timing assertions; writes only under
#                           build-bench/short/, never docs/
#   bench/run.sh --report-only   rewrites docs/benchmarks.md from the last full run's
#                           results (after editing bench/analysis.md, say)
# Other arguments go to esg_bench (e.g. --runs 3 --seconds 1). Builds Release in
# build-bench/ when needed. PostgreSQL: a server of our own is started with
# scripts/postgres-test-server.sh in build-bench/postgres (as the tests do, but with
# fsync turned back on) and stopped at the end; POSTGRES_DBNAME in the environment
# uses that server instead; ESG_BENCH_POSTGRES=0 skips PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh

short=0
report_only=0
args=()
for arg in "$@"; do
  case "$arg" in
    --short) short=1; args+=(--short) ;;
    --report-only) report_only=1 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done

build_dir=build-bench
pg_script=scripts/postgres-test-server.sh
pg_dir=$build_dir/postgres

# Starts a PostgreSQL server in $pg_dir with scripts/postgres-test-server.sh and puts its
# settings in our environment; on failure PostgreSQL is listed as skipped. The script turns
# fsync off for the tests; the figures here are meant durable, so it is turned back on.
start_postgres() {
  if [ -f "$pg_dir/runtime" ]; then # what an earlier run left: stop it and start afresh
    "$pg_script" stop "$pg_dir" >/dev/null 2>&1 || true
    rm -rf "$(cat "$pg_dir/runtime")"
  fi
  rm -rf "$pg_dir"
  if ! "$pg_script" start "$pg_dir" >/dev/null; then
    echo "bench/run.sh: the PostgreSQL server did not start: skipped" >&2
    return 0
  fi
  trap '"$pg_script" stop "$pg_dir" >/dev/null 2>&1 || true' EXIT
  local runtime port psql_bin owner=()
  runtime=$(cat "$pg_dir/runtime")
  port=$(cat "$pg_dir/port")
  psql_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)
  [ -x "$psql_bin" ] || psql_bin=psql
  [ "$(id -u)" -ne 0 ] || owner=(runuser -u postgres --)
  # The superuser's SQL over the server's own socket.
  admin_sql() {
    (cd "$runtime" && "${owner[@]}" "$psql_bin" -X -q -At -h "$runtime" -p "$port" -U postgres \
      -d postgres "$@")
  }
  admin_sql -c "ALTER SYSTEM SET fsync = on" -c "SELECT pg_reload_conf()" >/dev/null ||
    echo "bench/run.sh: could not turn fsync on in PostgreSQL (figures not durable)" >&2
  eval "$("$pg_script" env "$pg_dir")"
  ESG_POSTGRES_TEST_SERVER="$PWD/$pg_script"
  ESG_POSTGRES_TEST_DIR="$PWD/$pg_dir"
  export ESG_POSTGRES_TEST_SERVER ESG_POSTGRES_TEST_DIR
  sleep 0.2 # the reload is asynchronous
  admin_sql -c "SHOW fsync" -c "SHOW synchronous_commit" -c "SHOW server_version" |
    tr '\n' '|' >"$work/postgres.txt"
}

if [ "$short" -eq 1 ]; then
  work="$build_dir/short"
else
  work="$build_dir/results"
fi
if [ "$report_only" -eq 0 ]; then
  esg_need build bench

  # Release build of the project and the harness, on its own (bench/CMakeLists.txt
  # builds the project under it when it is the top level).
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S bench -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DESG_WERROR=ON >/dev/null
  fi
  cmake --build "$build_dir" -j"$(nproc)" --target esg_bench >/dev/null

  rm -rf "$work"
  mkdir -p "$work"

  # PostgreSQL: a throwaway server of our own, started afresh (new databases every run).
  if [ -z "${POSTGRES_DBNAME:-}" ] && [ "${ESG_BENCH_POSTGRES:-1}" != 0 ]; then
    start_postgres
  fi
  # The servers the runner starts print to our stdout; keep the whole log, show ours.
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  # (What this run writes itself does not count as a change.)
  echo "$(git rev-parse --short HEAD 2>/dev/null || echo "?")|$(git status --porcelain 2>/dev/null |
    grep -v '^??' | grep -qv ' \(bench/results/\|docs/benchmarks\)' &&
    echo " with uncommitted changes" || true)" > "$work/commit.txt"
  set +e +o pipefail
  "$build_dir/esg_bench" --out "$work" "${args[@]}" 2>&1 | tee "$work/run.log" |
    grep -E '^(run |  |skipped|[0-9]+ target|esg_bench)'
  status=${PIPESTATUS[0]}
  set -e -o pipefail
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "$load_before|$load_after" > "$work/load.txt"
  if [ "$status" -ne 0 ]; then
    echo "bench/run.sh: esg_bench failed (exit $status); the log is $work/run.log" >&2
    exit "$status"
  fi
  if [ "$short" -eq 1 ]; then
    echo "bench/run.sh --short: the harness works (results in $work, not compared with anything)"
    exit 0
  fi
  # Instruction counts (callgrind), which the machine's other work does not change: the
  # application's path of create_new_order + get_order without gRPC, and what a process
  # spends on loading and opening before the first call.
  : >"$work/cpu.txt"
  if command -v valgrind >/dev/null; then
    echo "instruction counts (callgrind)"
    for module in eventsourcing.popo eventsourcing.sqlite; do
      counts=()
      for n in 0 1000; do
        rm -f "$work/cpu.db"*
        counts+=("$(PERSISTENCE_MODULE=$module ORDERS_SQLITE_DBNAME="$work/cpu.db" \
          valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$module.$n.out" \
          "$build_dir/esg_cpu_calls" "$n" 2>&1 | sed -n 's/.*refs: *//p' | tr -d ,)")
      done
      echo "$module|${counts[0]}|$(((counts[1] - counts[0]) / 1000))" >>"$work/cpu.txt"
    done
    rm -f "$work/cpu.db"*
  fi
fi
if [ ! -f "$work/latest.json" ]; then
  echo "bench/run.sh: no results in $work: run bench/run.sh first" >&2
  exit 1
fi

# ---- The report ----
IFS='|' read -r load_before load_after < "$work/load.txt" || { load_before="?"; load_after="?"; }
pg_text=""
if [ -f "$work/postgres.txt" ]; then
  IFS='|' read -r pg_fsync pg_sync pg_version < "$work/postgres.txt" || true
  pg_text="PostgreSQL ${pg_version:-?}: a server of our own on loopback TCP, started by
  \`scripts/postgres-test-server.sh\` in \`build-bench/postgres\` with fsync turned back on
  (\`fsync=${pg_fsync:-?}\`, \`synchronous_commit=${pg_sync:-?}\`): a call that returned is on disk."
  mkdir -p bench/results && cp "$work/postgres.txt" bench/results/postgres.txt
fi
mkdir -p bench/results
cp "$work/latest.json" bench/results/latest.json
gnuplot -e "dir='$work'; out='docs/benchmarks-latency.png'" bench/latency.gp

run_date=$(sed -n 's/.*"date": "\(.*\)T\(..:..\).*/\1 \2/p' "$work/latest.json")
runs=$(sed -n 's/.*"runs": \([0-9]*\),.*/\1/p' "$work/latest.json" | head -1)
measure_ms=$(sed -n 's/.*"measure_ms": \([0-9]*\),.*/\1/p' "$work/latest.json")
warm_ms=$(sed -n 's/.*"warm_ms": \([0-9]*\),.*/\1/p' "$work/latest.json")
skipped=$(sed -n 's/.*"skipped": "\(.*\)",.*/\1/p' "$work/latest.json")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
thousands() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
tmp_fs=$(df -T "${TMPDIR:-/tmp}" | awk 'NR == 2 {print $2}')
# The code measured: the commit of the full run (kept beside its results, so that --report-only
# names it rather than the commit it runs at).
IFS='|' read -r commit dirty < "$work/commit.txt" || { commit="?"; dirty=""; }

{
  cat <<EOF
# Benchmarks

Generated by \`bench/run.sh\` from a run of $run_date (UTC) at commit $commit$dirty. Do not
edit by hand: change \`bench/\` and run it again (about 10 minutes). Raw figures, every run:
\`bench/results/latest.json\`.

## Method

- **What runs**: the servers are real subprocesses: \`eventsourcing_grpc_server\` serving
  \`eventsourcing_grpc.example:Orders\` alone, on each backend, and \`floor_server\`
  (\`bench/floor_server.c\`), a minimal server on the same gRPC C core built the same way (one
  completion queue, 2 worker threads, registered methods, local credentials on both loopback
  families) that answers Ping and CallApplicationMethod with a constant reply without decoding
  the request, and GetNotifications with a constant page of 10, 100 or 1,000 notifications
  shaped as the example's (chosen by the request's limit, the one field it reads). Both are measured by the same code (\`bench/esg_bench.c\`) through our client
  (\`esg_client_*\`), over \`localhost\` (loopback, gRPC local credentials), client and servers on
  the same machine, sharing its $(nproc) cores.
- **Calls/s**: 1 or 8 client threads, each with its own \`esg_client\` (channel), calling as
  fast as it can for ${measure_ms} ms after ${warm_ms} ms of warm-up; calls/s = calls started
  in the window / window. \`get_order\` reads orders made just before, at random.
  GetNotifications asks for a full page from a random start, 1 client. Latency p50 is that of
  the 1-client run.
- **Start-up**: from \`posix_spawn\` to the first answered Ping, with a new client per attempt
  and 0.5 ms between attempts. **Memory**: VmRSS from \`/proc/PID/status\`, idle 100 ms after
  the first Ping (200 ms after the first order for the system), and beside it the pages that
  are the process's own (Private_Clean + Private_Dirty of \`/proc/PID/smaps_rollup\`) and its
  proportional share (Pss), since VmRSS also counts every page of the shared libraries it
  touched (gRPC, abseil, OpenSSL, ...), pages any other process using them shares; the peak is
  sampled every 20 ms under load (8 clients calling \`create_new_order\`; the in-memory store grows with the
  orders, so its peak includes the data).
- **The example system** (Orders -> Reservations -> Orders -> Payments -> Orders) runs through
  \`esg_grpc_runner\` in subprocess mode: three \`eventsourcing_grpc_server\` processes.
  *Created to paid*: from \`create_new_order\` returning to our follower reading the order's
  \`Order.Paid\` notification (GetNotifications filtered by topic from its last position,
  polled with 50 us pauses while nothing is new), one order at a time
  (${runs} x the orders in each run). *Orders/s*: 8 threads create orders for 3 s while the
  follower reads; orders paid / time from the start to the last one paid; the created-to-paid
  figures under that load are mostly queueing (creation outruns processing).
  *First order*: created as soon as the runner returns (every server answered a Ping), timed
  to its Order.Paid, from the system being up and from the runner's start.
- **Runs**: everything ${runs} times in turn (floor, servers, systems); each figure is the
  median of the runs with min and max. "/ floor" divides our median by the floor's median of the
  same kind (calls: CallApplicationMethod or Ping with the same number of clients;
  GetNotifications: the floor's constant page of the same size; times and memory: the floor's). Above 1
  is better for calls/s, worse for times and memory. "/ reference" divides by the middle of the
  Python reference's range quoted in issue 8 (measured on a 2-core machine like this one, not in
  this run).
- **Durability**: SQLite in WAL mode with \`synchronous=FULL\` (the library's setting): every
  call that returned is on disk, and a crash (of the process or the machine) loses only calls
  that had not returned; the databases are in \`${TMPDIR:-/tmp}\` (${tmp_fs}). ${pg_text}
  Followers record a whole page of notifications (their new events and one tracking record per
  notification) in one transaction on SQLite and PostgreSQL: a crash loses the page's work
  together with its tracking records, which is then done again, never twice.
- **Not measured**: ${skipped:-nothing skipped}.

## Machine

| | |
|---|---|
| cores (\`nproc\`) | $(nproc) |
| CPU | ${cpu:-?} |
| memory | $memory |
| kernel | $(uname -r) |
| OS | $os |
| compiler | $(gcc --version | head -1), \`-O3\` (CMake Release) |
| gRPC C core | $(pkg-config --modversion grpc) (Debian libgrpc-dev $(pkg_version libgrpc-dev)) |
| protobuf-c | $(pkg-config --modversion libprotobuf-c) |
| SQLite | $(pkg-config --modversion sqlite3) |
| jansson | $(pkg-config --modversion jansson) |
| yajl (the JSON decoder's parser) | $(pkg-config --modversion yajl) |
| load average (1, 5, 15 min) | before the run $load_before, after it $load_after (other work shares this machine) |
| perf counters | $(perf stat -e instructions true 2>&1 | grep -q 'not supported' && echo "not supported here (profiles: valgrind --tool=callgrind)" || echo "available") |

## Results

EOF
  cat "$work/table.md"
  if [ -s "$work/cpu.txt" ]; then
    cat <<'EOF'

Instructions counted by callgrind (`bench/cpu_calls.c`: N `create_new_order` then N
`get_order` through `esg_application_call_json`, the server's path without gRPC; the same
whatever else the machine runs, so they compare versions where wall-clock figures cannot):

| backend | instructions to start, open and close (our library linked statically) | instructions per create_new_order + get_order |
|---|--:|--:|
EOF
    while IFS='|' read -r module startup per_pair; do
      printf '| %s | %s | %s |\n' "$module" "$(thousands "$startup")" "$(thousands "$per_pair")"
    done <"$work/cpu.txt"
  fi
  cat <<'EOF'

![Latency distributions](benchmarks-latency.png)

## Targets of issues 8 and 19

The "second round" rows are issue 19's; its orders/s in memory (8,700) and on SQLite (3,700) and
SQLite's create_new_order from 8 clients (0.5) are the same bounds as issue 8's rows above them.

EOF
  cat "$work/targets.md"
  if [ -f bench/analysis.md ]; then
    echo
    cat bench/analysis.md
  fi
} > docs/benchmarks.md
echo "bench/run.sh: wrote docs/benchmarks.md, docs/benchmarks-latency.png, bench/results/latest.json"
