#!/usr/bin/env bash
# Runs Percona mongodb_exporter as it is deployed: ONE PROCESS PER HOST, each
# on its own 127.0.0.1 port with --mongodb.uri=mongodb://HOST/?directConnection=true,
# and a Prometheus-like scraper (peerstat.py scrape) that GETs every
# exporter's /metrics once per INTERVAL, 16 at a time, counting bytes and
# samples. Samples every exporter's CPU, RSS, threads and sockets every
# second and writes OUTDIR/summary.json plus a one-line summary.
#
# Usage: benches/peers/percona.sh HOSTS_FILE [INTERVAL_SECS=10] [DURATION_SECS=60] [OUTDIR]
#   HOSTS_FILE  one host:port per line (loopback only)
# Env:
#   PERCONA_BIN        default target/peers/bin/mongodb_exporter (benches/peers/install.sh)
#   PERCONA_FLAGS      collector flags, default "--collect-all --compatible-mode":
#                      every collector (diagnosticdata, replicasetstatus,
#                      replicasetconfig, dbstats, topmetrics, currentopmetrics,
#                      indexstats, collstats with discovery, shards, fcv, pbm) and
#                      the old metric names that the Grafana/PMM dashboards read
#   PERCONA_BASE_PORT  first exporter port (default 19216; port = base + index)
set -euo pipefail
# Credentials when the hosts want them (see telegraf.sh).
CRED=""
if [[ -n "${MONGOMON_BENCH_USER:-}" ]]; then CRED="${MONGOMON_BENCH_USER}:${MONGOMON_BENCH_PASSWORD:-}@"; fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HOSTS_FILE="${1:?usage: percona.sh HOSTS_FILE [INTERVAL] [DURATION] [OUTDIR]}"
INTERVAL="${2:-10}"
DURATION="${3:-60}"
OUTDIR="${4:-$ROOT/target/peers/runs/percona-$(date +%Y%m%d-%H%M%S)}"
BIN="${PERCONA_BIN:-$ROOT/target/peers/bin/mongodb_exporter}"
FLAGS="${PERCONA_FLAGS:---collect-all --compatible-mode}"
BASE_PORT="${PERCONA_BASE_PORT:-19216}"
STAT="$ROOT/benches/peers/peerstat.py"

[[ -x "$BIN" ]] || { echo "percona.sh: $BIN not found; run benches/peers/install.sh" >&2; exit 1; }
mkdir -p "$OUTDIR/logs"
OUTDIR="$(cd "$OUTDIR" && pwd)"
grep -Ev '^\s*(#|$)' "$HOSTS_FILE" > "$OUTDIR/hosts.txt"
N=$(wc -l < "$OUTDIR/hosts.txt")
(( N > 0 )) || { echo "percona.sh: no hosts in $HOSTS_FILE" >&2; exit 1; }
while read -r h; do
    case "$h" in 127.*|localhost:*) ;; *) echo "percona.sh: $h is not a loopback address" >&2; exit 1 ;; esac
done < "$OUTDIR/hosts.txt"

PIDS="$OUTDIR/pids.txt"
TARGETS="$OUTDIR/targets.txt"
: > "$PIDS"
: > "$TARGETS"
children=()
cleanup() {
    for p in "${children[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${children[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

i=0
# shellcheck disable=SC2086 # FLAGS is a list of flags
while read -r host; do
    port=$((BASE_PORT + i))
    "$BIN" --mongodb.uri="mongodb://${CRED}$host/?directConnection=true&authSource=admin" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn $FLAGS \
        > "$OUTDIR/logs/$i-$host.log" 2>&1 &
    children+=("$!")
    echo "$!" >> "$PIDS"
    echo "http://127.0.0.1:$port/metrics" >> "$TARGETS"
    i=$((i + 1))
done < "$OUTDIR/hosts.txt"
echo "$FLAGS" > "$OUTDIR/flags.txt"

# Wait (at most 10 s) for the exporters to listen before the first scrape.
for _ in $(seq 1 100); do
    up=0
    while read -r url; do
        curl -s -o /dev/null --max-time 1 "${url%/metrics}/" && up=$((up + 1))
    done < "$TARGETS"
    (( up == N )) && break
    sleep 0.1
done

START=$(date +%s.%N)
UNTIL=$(python3 -c "print($START + $DURATION)")
python3 "$STAT" sample --pids "$PIDS" --hosts "$OUTDIR/hosts.txt" --every 1 \
    --until "$UNTIL" --out "$OUTDIR/samples.jsonl" &
SAMPLER=$!
children+=("$SAMPLER")
python3 "$STAT" scrape --targets "$TARGETS" --every "$INTERVAL" --until "$UNTIL" \
    --out "$OUTDIR/scrapes.jsonl" &
children+=("$!")
wait "$SAMPLER" || true
cleanup
trap - EXIT INT TERM

logs=()
for f in "$OUTDIR"/logs/*.log; do logs+=(--log "$f"); done
python3 "$STAT" summary --peer percona_mongodb_exporter --samples "$OUTDIR/samples.jsonl" \
    --scrapes "$OUTDIR/scrapes.jsonl" "${logs[@]}" \
    --hosts "$OUTDIR/hosts.txt" --interval "$INTERVAL" --duration "$DURATION" \
    --out "$OUTDIR/summary.json"
echo "percona.sh: results in $OUTDIR"
