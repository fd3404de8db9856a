#!/usr/bin/env bash
# Checks the formatting of every C file against .clang-format (scripts/fmt.sh fixes it).
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror
echo "lint: formatting clean"
