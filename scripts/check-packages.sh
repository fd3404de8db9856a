#!/usr/bin/env bash
# Checks that each script installs all that it uses: every command a script calls (read from its
# syntax tree) and every command its package sets promise must come from a Debian package of
# Priority required (a minbase Debian 12 has those) or from the packages its sets install
# (scripts/lib/packages.sh). Run by CI. Usage: scripts/check-packages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh
# Every set, so that each command's package is on the machine to be looked up.
mapfile -t sets < <(esg_sets | cut -f1)
esg_need "${sets[@]}"
/usr/bin/python3 scripts/lib/check_packages.py
