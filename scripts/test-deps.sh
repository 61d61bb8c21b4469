#!/usr/bin/env bash
# Installs what the test suite starts for real: VictoriaMetrics (Debian) and
# SecantusDB + pymongo (PyPI, into .venv-test). Idempotent; uses sudo when
# not root. SecantusDB is GPL-2.0: installed at test time, never vendored.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v victoria-metrics >/dev/null 2>&1 || need_apt+=(victoria-metrics)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-deps: installing ${need_apt[*]} from Debian"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

VENV=.venv-test
SECANTUS_VERSION=0.7.0b3
if [ ! -x "$VENV/bin/secantusd-py" ] || ! "$VENV/bin/pip" show SecantusDB 2>/dev/null | grep -q "^Version: $SECANTUS_VERSION$"; then
  echo "test-deps: installing SecantusDB $SECANTUS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "SecantusDB==$SECANTUS_VERSION" pymongo
fi
echo "test-deps: victoria-metrics $(command -v victoria-metrics), secantusd-py $VENV/bin/secantusd-py"
