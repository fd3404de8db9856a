#!/usr/bin/env bash
# Builds the fuzz targets (clang, libFuzzer, ASan+UBSan) and runs each for
# SECONDS (default 30) on a copy of its seed corpus in fuzz/corpus/<target>;
# with ESG_FUZZ_RUNS=N, each stops after N inputs if that comes first.
# With ESG_FUZZ_JOBS=N (default: the number of cores), N targets run at once.
# Usage: [ESG_FUZZ_RUNS=N] [ESG_FUZZ_JOBS=N] fuzz/run.sh [SECONDS] [TARGET...]
# Prints each target's executions and coverage (libFuzzer's final line) and
# fails if any target crashes, leaks, times out or breaks a property; the
# input that did is kept (its path is printed) to replay with
#   <build>/<target> <input>
# Builds in build-fuzz/ (or $ESG_FUZZ_BUILD_DIR); clang from $CC, else clang.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh
esg_need build fuzz

seconds=${1:-30}
shift || true
case "$seconds" in
  ''|*[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
runs_limit=${ESG_FUZZ_RUNS:--1}
case "$runs_limit" in
  -1) ;;
  ''|*[!0-9]*) echo "fuzz/run.sh: ESG_FUZZ_RUNS must be a number of inputs, not '$runs_limit'" >&2
               exit 2 ;;
esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_json fuzz_event_state fuzz_stored_state fuzz_uuid_datetime_decimal fuzz_topic
           fuzz_env_config fuzz_requests)
fi
build_dir=${ESG_FUZZ_BUILD_DIR:-build-fuzz}
compiler=${CC:-clang}
case "$compiler" in *clang*) ;; *) compiler=clang ;; esac

cmake -S fuzz -B "$build_dir" -DCMAKE_C_COMPILER="$compiler" >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/esg-fuzz-run.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Runs TARGET on a copy of its seed corpus; its log, exit status and seconds go to $work/TARGET.
run_target() {
  local target="$1" status=0 started=$SECONDS
  local corpus="$work/$target/corpus" artifacts="$work/$target/artifacts/"
  mkdir -p "$corpus" "$artifacts"
  cp fuzz/corpus/"$target"/* "$corpus"/
  # -timeout: one input may take at most 10 s; -rss_limit_mb: memory per process.
  "$build_dir/$target" -max_total_time="$seconds" -runs="$runs_limit" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" \
    >"$work/$target/log.txt" 2>&1 || status=$?
  echo "$status $((SECONDS - started))" >"$work/$target/result"
}

# libFuzzer runs one input at a time: up to ESG_FUZZ_JOBS targets (one a core) run at once.
jobs_at_once=${ESG_FUZZ_JOBS:-$(nproc)}
case "$jobs_at_once" in
  ''|*[!0-9]*|0) echo "fuzz/run.sh: ESG_FUZZ_JOBS must be a positive number, not '$jobs_at_once'" >&2
                 exit 2 ;;
esac
running=0
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s$([ "$runs_limit" = -1 ] || echo " or $runs_limit inputs")"
  if ((running >= jobs_at_once)); then
    wait -n || true # a target's failure is read from its result below
    running=$((running - 1))
  fi
  run_target "$target" &
  running=$((running + 1))
done
wait || true

failed=()
summary=()
for target in "${targets[@]}"; do
  log="$work/$target/log.txt"
  artifacts="$work/$target/artifacts/"
  status=1 elapsed=?
  [ -f "$work/$target/result" ] && read -r status elapsed <"$work/$target/result"
  final=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" 2>/dev/null | tail -n 1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -n 1)
  echo "== $target: ${final:-no final stats line}"
  if [ "$status" -ne 0 ] || [ -z "$final" ]; then
    failed+=("$target")
    grep -E 'ERROR|SUMMARY|fuzz property failed|runtime error|Test unit written' "$log" |
      head -n 20 | sed 's/^/   /' || true
    echo "   full log: $log; failing input: $(ls "$artifacts" | sed "s|^|$artifacts|" | head -n 1)"
    summary+=("$target: FAILED (exit $status)")
  else
    cov=$(echo "$final" | sed -n 's/.*cov: \([0-9]*\).*ft: \([0-9]*\).*corp: \([0-9]*\).*/cov \1, ft \2, corpus \3/p')
    summary+=("$target: ${runs:-?} executions in ${elapsed}s, $cov")
  fi
done

echo "== fuzzing summary (at most ${seconds}s per target)"
printf '   %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (logs and inputs kept in $work)"
  exit 1
fi
rm -rf "$work"
echo "fuzz: all ${#targets[@]} targets ran clean"
