#!/usr/bin/env bash
# Prints the addresses of a running `mongomon sim` (GET /hosts on its control
# endpoint), one host:port a line, at most N of them (default all), skipping
# hosts that are down.
# Usage: benches/peers/sim-hosts.sh CONTROL_ADDR [N] > hosts.txt
#   CONTROL_ADDR  as printed by `mongomon sim` ("control endpoint: http://ADDR/hosts")
set -euo pipefail
CTL="${1:?usage: sim-hosts.sh CONTROL_ADDR [N]}"
N="${2:-0}"
CTL="${CTL#http://}"; CTL="${CTL%%/*}"
curl -sf --max-time 10 "http://$CTL/hosts" | python3 -c '
import json, sys
n = int(sys.argv[1])
hosts = [h["addr"] for h in json.load(sys.stdin) if h.get("up")]
print("\n".join(hosts[: n or None]))
' "$N"
