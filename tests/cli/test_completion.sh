#!/usr/bin/env bash
# Tests of the bash completion (data/bash-completion/eventsourcing_grpc): each case types a
# command line, asks for completions at its end, as bash does on Tab, and compares the words.
# Usage: test_completion.sh COMPLETION_FILE
set -uo pipefail
source "$1"
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

# completes LINE EXPECTED...: the completions of LINE (cursor at its end) are EXPECTED.
completes() {
  local line=$1; shift
  COMP_LINE=$line
  COMP_POINT=${#line}
  COMP_WORDBREAKS=$' \t\n"'"'"'><=;|&(:'
  # The function the file registered for the program with `complete -F`.
  local spec function
  spec=$(complete -p "${line%% *}") || { fail "no completion for ${line%% *}"; return; }
  function=${spec#*-F }
  function=${function%% *}
  COMPREPLY=()
  "$function"
  local got="${COMPREPLY[*]:-}" want="$*"
  if [ "$got" = "$want" ]; then
    n_passed=$((n_passed + 1))
  else
    fail "'$line' completes to '$got', not '$want'"
  fi
}

export ORDERS_GRPC_SERVER_ADDRESS=localhost:50051 PAYMENTS_GRPC_SERVER_ADDRESS=payments:50053
completes "eventsourcing_grpc_client --" --json --timeout --help --version
completes "eventsourcing_grpc_client O" Orders
completes "eventsourcing_grpc_client loc" localhost:50051
completes "eventsourcing_grpc_client localhost:5" 50051 # bash took "localhost:" already
completes "eventsourcing_grpc_client --json --timeout 2 Orders h" health
completes "eventsourcing_grpc_client Orders " ping health call notifications prompt tail lag
completes "eventsourcing_grpc_client Orders tail --f" --follow
completes "eventsourcing_grpc_client localhost:50051 pr" prompt
completes "eventsourcing_grpc_client Orders health e" eventsourcing_grpc.Application eventsourcing_grpc_c.v1.Node
completes "eventsourcing_grpc_client Orders prompt P" Payments
completes "eventsourcing_grpc_client Orders call get_order " # nothing to offer
completes "eventsourcing_grpc_server eventsourcing_grpc.example:P" Payments
completes "eventsourcing_grpc_server eventsourcing_grpc.ex" eventsourcing_grpc.example:Orders \
  eventsourcing_grpc.example:Reservations eventsourcing_grpc.example:Payments
completes "eventsourcing_grpc_runner eventsourcing_grpc.example:s" system
completes "eventsourcing_grpc_runner --h" --help
completes "eventsourcing_grpc_server eventsourcing_grpc.example:Orders " # one topic only

finish
