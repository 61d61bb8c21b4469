#!/usr/bin/env bash
# Fleet mode's tests start a 3-member etcd cluster on loopback ports: etcd
# 3.4 from Debian (etcd-server, and etcd-client for etcdctl). The package
# would start a system etcd on install; a policy-rc.d keeps it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/deps/lib.sh

missing=()
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

apt_install_stopped "${missing[@]}"
