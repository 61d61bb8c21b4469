#!/usr/bin/env bash
# The servers of the core tests: VictoriaMetrics (Debian) and SecantusDB +
# pymongo (PyPI, into .venv-test). SecantusDB is GPL-2.0: installed at test
# time, never vendored.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/deps/lib.sh
apt_need victoria-metrics victoria-metrics
apt_need python3 python3 python3-venv

VENV=.venv-test
SECANTUS_VERSION=0.7.0b3
if [ ! -x "$VENV/bin/secantusd-py" ] || ! "$VENV/bin/pip" show SecantusDB 2>/dev/null | grep -q "^Version: $SECANTUS_VERSION$"; then
  echo "deps: installing SecantusDB $SECANTUS_VERSION and pymongo into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "SecantusDB==$SECANTUS_VERSION" pymongo
fi
