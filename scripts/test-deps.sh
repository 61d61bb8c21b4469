#!/usr/bin/env bash
# Installs what the test suite starts for real. Each area of the project
# keeps its own installer in scripts/deps/*.sh (Debian packages, PyPI
# packages into .venv-test, tools); this runs them all, in name order.
# Idempotent; the installers use sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in scripts/deps/*.sh; do
  bash "$f"
done
