#!/usr/bin/env bash
# Reformats every C file with .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh
esg_need lint
git ls-files --cached --others --exclude-standard '*.c' '*.h' | xargs clang-format -i
