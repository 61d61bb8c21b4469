#!/usr/bin/env bash
# Fuzzes every target of tests/fuzz.rs for SECS seconds each (default 60),
# from random seeds, and prints each target's executions and failures. A
# failure prints the shrunk input; turn it into a regression test named
# after what it found. (The suite runs the same targets from a fixed seed
# for a few seconds.)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
case "$secs" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECS]" >&2; exit 2;; esac
MONGOMON_FUZZ_SECS=$secs cargo test --test fuzz -- --nocapture --test-threads 1 2>&1 |
  grep -oE 'fuzz [a-z_]+: executions.*|panicked.*|minimal failing input.*|test result.*' || true
