#!/usr/bin/env bash
# The production-deployment tests (tests/deploy_*.rs) drive the real tools:
# logrotate, systemd-analyze (systemd), start-stop-daemon and dpkg-deb
# (dpkg), useradd (passwd), and cargo-deb to build the .deb.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/deps/lib.sh
apt_need logrotate logrotate
apt_need systemd-analyze systemd
apt_need start-stop-daemon dpkg
apt_need dpkg-deb dpkg
apt_need useradd passwd
apt_need update-rc.d init-system-helpers
# cargo-deb from crates.io; the compile takes minutes, so only when missing.
if ! cargo deb --version >/dev/null 2>&1; then
  echo "deps: installing cargo-deb from crates.io (a few minutes)"
  cargo install cargo-deb --locked
fi
