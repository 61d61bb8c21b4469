#!/usr/bin/env bash
# The test command of README.md and CI: install the real servers the tests
# start, then run every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
export MONGOMON_TEST_VENV="$PWD/.venv-test"
cargo test "$@"
