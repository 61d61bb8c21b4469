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
