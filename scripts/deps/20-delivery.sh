#!/usr/bin/env bash
# The receivers and middle boxes of the delivery tests, all from Debian:
# Prometheus (remote-write receiver), InfluxDB 1.x, tinyproxy (forward
# proxy), nginx (TLS in front of VictoriaMetrics), openssl (test CA).
# Their packages would start system services on install; a policy-rc.d
# keeps them stopped, since the tests start their own on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/deps/lib.sh

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || [ -x /usr/sbin/tinyproxy ] || missing+=(tinyproxy)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

apt_install_stopped "${missing[@]}"
