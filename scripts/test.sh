#!/usr/bin/env bash
# The test command of README.md and CI: install the real servers the tests
# start, build the release binary (tests/release_secrets.rs checks the
# shipped build, whose logging differs from a debug build), then run every
# test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build runs while the installers wait on the package mirrors,
# so it costs little of the suite's time.
cargo build --release --bin mongomon >target-release-build.log 2>&1 &
release=$!
scripts/test-deps.sh
if ! wait "$release"; then
  cat target-release-build.log >&2
  echo "scripts/test.sh: cargo build --release failed (log above)" >&2
  exit 1
fi
rm -f target-release-build.log
export MONGOMON_TEST_VENV="$PWD/.venv-test"
cargo test "$@"
