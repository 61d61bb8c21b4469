# Sourced by the installers in scripts/deps/: small helpers, no side effects.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_UPDATED=""

# apt_need CMD PACKAGE...: installs PACKAGE(s) when CMD is not on PATH.
apt_need() {
  local cmd=$1; shift
  if command -v "$cmd" >/dev/null 2>&1; then return 0; fi
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  echo "deps: installing $* from Debian"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# apt_install_stopped PACKAGE...: installs Debian packages whose install
# would start a system service (etcd, prometheus, nginx...), with a
# policy-rc.d that keeps every service stopped: the tests start their own
# on loopback ports.
apt_install_stopped() {
  local policy=/usr/sbin/policy-rc.d made=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made=1
  fi
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  echo "deps: installing $* from Debian"
  local rc=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null || rc=$?
  if [ -n "$made" ]; then $SUDO rm -f "$policy"; fi
  return $rc
}
