#!/usr/bin/env bash
# Builds the two peer agents of the issue-7 benchmark from the Go module
# proxy with the machine's `go`, outside git:
#   telegraf           github.com/influxdata/telegraf/cmd/telegraf@v1.39.3
#                      (tags custom,inputs.mongodb,outputs.file: only the
#                      mongodb input and the file output are compiled in)
#   mongodb_exporter   github.com/percona/mongodb_exporter@v0.53.0
#
# Usage: benches/peers/install.sh [DEST]      (default target/peers/bin)
# Env:   TELEGRAF_VERSION, PERCONA_VERSION override the pinned versions.
#
# Idempotent: a binary whose embedded module version (`go version -m`)
# already matches is not rebuilt. GOPATH, GOCACHE and GOMODCACHE live under
# target/peers/, so nothing lands in git or in the user's Go directories.
# Prints the path of each binary at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
DEST="${1:-$PEERS/bin}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"

TELEGRAF_VERSION="${TELEGRAF_VERSION:-v1.39.3}"
PERCONA_VERSION="${PERCONA_VERSION:-v0.53.0}"

command -v go >/dev/null || { echo "install.sh: go not found on PATH" >&2; exit 1; }

export GOBIN="$DEST"
export GOPATH="$PEERS/gopath"
export GOCACHE="$PEERS/gocache"
export GOMODCACHE="$PEERS/gomodcache"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED="${CGO_ENABLED:-0}"
# Two cores: one build job at a time keeps the machine usable.
export GOMAXPROCS="${GOMAXPROCS:-2}"

# built BIN MODULE VERSION: true when $DEST/BIN was built from MODULE@VERSION.
built() {
    local bin="$DEST/$1"
    [[ -x "$bin" ]] || return 1
    go version -m "$bin" 2>/dev/null | awk -v m="$2" -v v="$3" \
        '$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

# build BIN MODULE VERSION PACKAGE [TAGS]
build() {
    local bin="$1" module="$2" version="$3" pkg="$4" tags="${5:-}"
    if built "$bin" "$module" "$version"; then
        echo "install.sh: $bin $version already built"
        return 0
    fi
    echo "install.sh: building $bin $version (this can take many minutes) ..."
    local start=$SECONDS
    local tagargs=()
    [[ -n "$tags" ]] && tagargs=(-tags "$tags")
    if ! go install -p 1 "${tagargs[@]}" "$pkg@$version"; then
        echo "install.sh: go install $pkg@$version failed" >&2
        return 1
    fi
    built "$bin" "$module" "$version" || {
        echo "install.sh: $DEST/$bin is not $module@$version after go install" >&2
        return 1
    }
    echo "install.sh: built $bin $version in $((SECONDS - start)) s"
}

# Telegraf first: it is the long build. A peer the proxy refuses is reported
# and skipped, so the other one still gets built; the exit code says whether
# both are there.
status=0
build telegraf github.com/influxdata/telegraf "$TELEGRAF_VERSION" \
    github.com/influxdata/telegraf/cmd/telegraf "custom,inputs.mongodb,outputs.file" || status=1
build mongodb_exporter github.com/percona/mongodb_exporter "$PERCONA_VERSION" \
    github.com/percona/mongodb_exporter || status=1

for bin in telegraf mongodb_exporter; do
    if [[ -x "$DEST/$bin" ]]; then
        printf '%-17s %s\n' "$bin:" "$DEST/$bin"
    else
        printf '%-17s %s\n' "$bin:" "NOT BUILT (see the go error above)"
    fi
done
exit $status
