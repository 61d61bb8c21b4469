# Shared by the peer scripts (sourced, not run): the run folder and the
# host list, checked the same way for every peer.

# peer_setup NAME HOSTS_FILE OUTDIR: creates OUTDIR (made absolute in
# $OUTDIR), writes the non-comment lines of HOSTS_FILE to OUTDIR/hosts.txt,
# sets N to their count, and refuses an empty list or any address that is
# not on loopback (the benchmarks never leave 127.0.0.0/8).
peer_setup() {
    local name="$1" hosts_file="$2" h
    mkdir -p "$3"
    OUTDIR="$(cd "$3" && pwd)"
    grep -Ev '^\s*(#|$)' "$hosts_file" > "$OUTDIR/hosts.txt"
    N=$(wc -l < "$OUTDIR/hosts.txt")
    (( N > 0 )) || { echo "$name: no hosts in $hosts_file" >&2; exit 1; }
    while read -r h; do
        case "$h" in 127.*|localhost:*) ;; *) echo "$name: $h is not a loopback address" >&2; exit 1 ;; esac
    done < "$OUTDIR/hosts.txt"
}

# peer_start LOG CMD...: starts the peer (its output to LOG) at START, with
# the deadline UNTIL = START + DURATION; sets PEER_PID, writes
# OUTDIR/pids.txt, and stops every child on exit.
peer_start() {
    local log="$1"
    shift
    PIDS="$OUTDIR/pids.txt"
    : > "$PIDS"
    children=()
    trap peer_cleanup EXIT INT TERM
    START=$(date +%s.%N)
    UNTIL=$(python3 -c "print($START + $DURATION)")
    "$@" > "$log" 2>&1 &
    PEER_PID=$!
    children+=("$PEER_PID")
    echo "$PEER_PID" > "$PIDS"
}

peer_cleanup() {
    local p
    for p in "${children[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${children[@]}"; do wait "$p" 2>/dev/null || true; done
}

# peer_sample: CPU, RSS, threads and sockets of the peer every second until
# the deadline, into OUTDIR/samples.jsonl.
peer_sample() {
    python3 "$STAT" sample --pids "$PIDS" --hosts "$OUTDIR/hosts.txt" --every 1 \
        --until "$UNTIL" --out "$OUTDIR/samples.jsonl" &
    children+=("$!")
    wait "$!" || true
}

# peer_stop: SIGTERM (the peers flush their output on it), up to 10 s, then
# SIGKILL.
peer_stop() {
    kill -TERM "$PEER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PEER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PEER_PID" 2>/dev/null || true
    peer_cleanup
    trap - EXIT INT TERM
}
