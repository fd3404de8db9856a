# shellcheck shell=bash
# The checks the command-line tests share; sourced by tests/cli/test_*.sh, which then run their
# checks and end with `finish`. Each check counts as passed or failed; a failure says what failed
# and the script goes on, so that one run shows every failure.

n_passed=0
n_failed=0

pass() { # pass WHAT: count a check that passed (VERBOSE=1 names it)
  n_passed=$((n_passed + 1))
  [ -z "${VERBOSE:-}" ] || echo "ok: $1"
}

fail() { # fail WHAT [LOG]: count a check that failed, say so, and show LOG if given
  n_failed=$((n_failed + 1))
  echo "FAILED: $1"
  [ $# -lt 2 ] || cat "$2"
}

check() { # check WHAT COMMAND...: the command must succeed; its status is returned
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; return 1; fi
}

expect_exit() { # expect_exit CODE TEXT COMMAND...: exit code and a fragment of stderr+stdout
  local code=$1 text=$2; shift 2
  local out rc
  if declare -F "$1" >/dev/null; then # a shell function cannot run under timeout
    out=$("$@" 2>&1)
  else
    out=$(timeout 30 "$@" 2>&1)
  fi
  rc=$?
  if [ $rc -ne "$code" ] || ! grep -qF -- "$text" <<<"$out"; then
    echo "  got exit $rc, expected $code with '$text': $out" | head -c 400; echo
    return 1
  fi
}

wait_until() { # wait_until SECONDS COMMAND...: retries every 50 ms until the command succeeds
  local deadline=$(($(date +%s%N) + $1 * 1000000000)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt $deadline ] || return 1
    sleep 0.05
  done
}

finish() { # the tally; the script's exit status
  echo "$n_passed passed, $n_failed failed"
  [ $n_failed -eq 0 ]
}
