#!/usr/bin/env bash
# Runs Percona mongodb_exporter against N hosts, in one of three modes
# (PERCONA_MODE), with a Prometheus-like scraper (peerstat.py scrape: header
# X-Prometheus-Scrape-Timeout-Seconds = INTERVAL, the whole answer within
# INTERVAL, once per INTERVAL). Samples every exporter's CPU, RSS, threads and
# sockets every second and writes OUTDIR/summary.json plus a one-line summary.
#
#   multi   (default) ONE exporter with every host in --mongodb.uri (one
#           full URI per host, each mongodb://HOST/?directConnection=true...,
#           so each is its own target), and ONE GET of /scrapeall per
#           interval: the exporter visits the hosts one after the other and
#           labels each host's series instance="HOST". A host answered in a
#           scrape when its mongodb_up{instance="HOST"} is 1.
#   target  the same single exporter, scraped per host as Prometheus'
#           multi-target pattern does: GET /scrape?target=HOST for every host
#           once per interval, 16 at a time; ok = HTTP 200 and mongodb_up 1.
#   single  ONE PROCESS PER HOST on 127.0.0.1:BASE+i, GET each /metrics
#           once per interval, 16 at a time; ok = HTTP 200 and mongodb_up 1.
#
# Usage: benches/peers/percona.sh HOSTS_FILE [INTERVAL_SECS=10] [DURATION_SECS=60] [OUTDIR]
#   HOSTS_FILE  one host:port per line (loopback only)
# Env:
#   PERCONA_MODE       multi (default), target or single
#   PERCONA_BIN        default target/peers/bin/mongodb_exporter (benches/peers/install.sh)
#   PERCONA_FLAGS      collector flags; default: every collector of --collect-all
#                      except currentopmetrics (diagnosticdata, replicasetstatus,
#                      replicasetconfig, dbstats with free storage, topmetrics,
#                      indexstats, collstats with discovery, profile, shards, fcv,
#                      pbm) and --compatible-mode (the old metric names the
#                      Grafana/PMM dashboards read). currentopmetrics is left out
#                      because it sends the `currentOp` command, which the
#                      simulator does not implement, and the exporter then panics
#                      in the HTTP handler and answers nothing for the whole
#                      scrape (README.md). "--collect-all --compatible-mode" is
#                      what a real deployment would run.
#   PERCONA_BASE_PORT  first exporter port (default 19216; single: port = base + index)
#   PERCONA_SCRAPE_TIMEOUT  seconds the scraper waits for an answer (default
#                      INTERVAL). Larger values only measure how late a late
#                      answer is (scrape_secs_*, scrapes_late): the exporter is
#                      still told INTERVAL and ok still means within INTERVAL.
#   MONGOMON_BENCH_USER, MONGOMON_BENCH_PASSWORD  SCRAM credentials when set
set -euo pipefail
# Credentials when the hosts want them (see telegraf.sh).
CRED=""
if [[ -n "${MONGOMON_BENCH_USER:-}" ]]; then CRED="${MONGOMON_BENCH_USER}:${MONGOMON_BENCH_PASSWORD:-}@"; fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HOSTS_FILE="${1:?usage: percona.sh HOSTS_FILE [INTERVAL] [DURATION] [OUTDIR]}"
INTERVAL="${2:-10}"
DURATION="${3:-60}"
MODE="${PERCONA_MODE:-multi}"
OUTDIR="${4:-$ROOT/target/peers/runs/percona-$MODE-$(date +%Y%m%d-%H%M%S)}"
BIN="${PERCONA_BIN:-$ROOT/target/peers/bin/mongodb_exporter}"
DEFAULT_FLAGS="--collector.diagnosticdata --collector.replicasetstatus --collector.replicasetconfig \
--collector.dbstats --collector.dbstatsfreestorage --collector.topmetrics --collector.indexstats \
--collector.collstats --collector.profile --collector.shards --collector.fcv --collector.pbm \
--discovering-mode --compatible-mode"
FLAGS="${PERCONA_FLAGS:-$DEFAULT_FLAGS}"
BASE_PORT="${PERCONA_BASE_PORT:-19216}"
# How long the scraper waits for an answer; the exporter is still told
# INTERVAL and a scrape still counts only when complete within INTERVAL.
SCRAPE_TIMEOUT="${PERCONA_SCRAPE_TIMEOUT:-$INTERVAL}"
STAT="$ROOT/benches/peers/peerstat.py"

case "$MODE" in multi|target|single) ;; *) echo "percona.sh: PERCONA_MODE must be multi, target or single" >&2; exit 1 ;; esac
[[ -x "$BIN" ]] || { echo "percona.sh: $BIN not found; run benches/peers/install.sh" >&2; exit 1; }
# shellcheck source=benches/peers/common.sh
. "$ROOT/benches/peers/common.sh"
peer_setup percona.sh "$HOSTS_FILE" "$OUTDIR"
mkdir -p "$OUTDIR/logs"

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

uri() { echo "mongodb://${CRED}$1/?directConnection=true&authSource=admin"; }
echo "$MODE $FLAGS" > "$OUTDIR/flags.txt"
WORKERS=16
# shellcheck disable=SC2086 # FLAGS is a list of flags
if [[ "$MODE" == single ]]; then
    i=0
    while read -r host; do
        port=$((BASE_PORT + i))
        "$BIN" --mongodb.uri="$(uri "$host")" \
            --web.listen-address="127.0.0.1:$port" --log.level=warn $FLAGS \
            > "$OUTDIR/logs/$i-$host.log" 2>&1 &
        children+=("$!")
        echo "$!" >> "$PIDS"
        echo "http://127.0.0.1:$port/metrics" >> "$TARGETS"
        i=$((i + 1))
    done < "$OUTDIR/hosts.txt"
else
    # One flag per URI (kong appends repeated flags; one argument of all N
    # URIs joined by commas would pass ARG_MAX's 128 KiB per argument near
    # N = 1,500). Each entry starts with mongodb://, so each is its own target.
    args=()
    while read -r host; do args+=(--mongodb.uri="$(uri "$host")"); done < "$OUTDIR/hosts.txt"
    "$BIN" "${args[@]}" --web.listen-address="127.0.0.1:$BASE_PORT" --log.level=warn $FLAGS \
        > "$OUTDIR/logs/exporter.log" 2>&1 &
    children+=("$!")
    echo "$!" >> "$PIDS"
    if [[ "$MODE" == multi ]]; then
        echo "http://127.0.0.1:$BASE_PORT/scrapeall" > "$TARGETS"
        WORKERS=1
    else
        sed "s|.*|http://127.0.0.1:$BASE_PORT/scrape?target=&|" "$OUTDIR/hosts.txt" > "$TARGETS"
    fi
fi

# Wait (at most 10 s) for the exporters to listen before the first scrape.
sort -u "$TARGETS" | sed 's|^\(http://[^/]*\)/.*|\1/|' | sort -u > "$OUTDIR/roots.txt"
NR=$(wc -l < "$OUTDIR/roots.txt")
for _ in $(seq 1 100); do
    up=0
    while read -r url; do
        curl -s -o /dev/null --max-time 1 "$url" && up=$((up + 1))
    done < "$OUTDIR/roots.txt"
    (( up == NR )) && break
    sleep 0.1
done

START=$(date +%s.%N)
UNTIL=$(python3 -c "print($START + $DURATION)")
python3 "$STAT" sample --pids "$PIDS" --hosts "$OUTDIR/hosts.txt" --every 1 \
    --until "$UNTIL" --out "$OUTDIR/samples.jsonl" &
SAMPLER=$!
children+=("$SAMPLER")
python3 "$STAT" scrape --targets "$TARGETS" --every "$INTERVAL" --start "$START" --until "$UNTIL" \
    --timeout "$SCRAPE_TIMEOUT" --workers "$WORKERS" --out "$OUTDIR/scrapes.jsonl" &
SCRAPER=$!
children+=("$SCRAPER")
wait "$SAMPLER" || true
# The scraper starts a round only while it can end by the deadline; give a
# late answer (SCRAPE_TIMEOUT > INTERVAL) its time, then stop everything.
for _ in $(seq 1 $(( (${SCRAPE_TIMEOUT%.*} + 5) * 10 ))); do
    kill -0 "$SCRAPER" 2>/dev/null || break
    sleep 0.1
done
cleanup
trap - EXIT INT TERM

logs=()
for f in "$OUTDIR"/logs/*.log; do logs+=(--log "$f"); done
python3 "$STAT" summary --peer "percona_mongodb_exporter_$MODE" --samples "$OUTDIR/samples.jsonl" \
    --scrapes "$OUTDIR/scrapes.jsonl" "${logs[@]}" \
    --hosts "$OUTDIR/hosts.txt" --interval "$INTERVAL" --duration "$DURATION" \
    --out "$OUTDIR/summary.json"
echo "percona.sh: results in $OUTDIR"
