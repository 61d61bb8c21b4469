#!/usr/bin/env bash
# Builds the three peer agents of the issue-7 benchmark with the machine's
# `go`, outside git:
#   telegraf           github.com/influxdata/telegraf/cmd/telegraf@v1.39.3 from
#                      the module proxy (tags custom,inputs.mongodb,outputs.file:
#                      only the mongodb input and the file output are compiled in)
#   mongodb_exporter   Percona's v0.53.0 from its source archive in
#                      ../shared/third_party/ (the module proxy refuses the module
#                      itself), extracted into target/peers/src/, dependencies from
#                      the proxy
#   otelcol-mongomon   an OpenTelemetry Collector v0.145.0 made by the collector
#                      builder (go.opentelemetry.io/collector/cmd/builder@v0.145.0)
#                      from benches/peers/otelcol-builder.yaml: the contrib
#                      mongodbreceiver and fileexporter only
#
# Usage: benches/peers/install.sh [DEST]      (default target/peers/bin)
# Env:   TELEGRAF_VERSION     overrides the pinned Telegraf version
#        PERCONA_ARCHIVE      the exporter's source archive (default
#                             $ROOT/../shared/third_party/mongodb_exporter-0.53.0.tar.gz)
#        OCB_VERSION          the collector builder's version (default v0.145.0)
#
# Idempotent: Telegraf is not rebuilt when its embedded module version
# (`go version -m`) already matches; the exporter and the collector are not
# rebuilt when the stamp beside the binary (DEST/NAME.source: the sha256 of
# the archive, resp. of the manifest and the builder version) matches.
# GOPATH, GOCACHE and GOMODCACHE live under target/peers/, so nothing lands
# in git or in the user's Go directories. Prints the path of each binary at
# the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
DEST="${1:-$PEERS/bin}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"

TELEGRAF_VERSION="${TELEGRAF_VERSION:-v1.39.3}"
PERCONA_ARCHIVE="${PERCONA_ARCHIVE:-$ROOT/../shared/third_party/mongodb_exporter-0.53.0.tar.gz}"
# The upstream commit of that archive (../shared/third_party/README.md).
PERCONA_COMMIT="${PERCONA_COMMIT:-48208f20d75371755bf0b76af2d99e74980add00}"
OCB_VERSION="${OCB_VERSION:-v0.145.0}"
MANIFEST="$ROOT/benches/peers/otelcol-builder.yaml"

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

# stamped BIN STAMP: true when $DEST/BIN exists and DEST/BIN.source says STAMP.
stamped() {
    [[ -x "$DEST/$1" && -f "$DEST/$1.source" ]] && [[ "$(cat "$DEST/$1.source")" == "$2" ]]
}

# The exporter from its source archive: extract into target/peers/src/ (a
# fresh copy each build), `go build` there, as its README says.
build_exporter() {
    [[ -f "$PERCONA_ARCHIVE" ]] || {
        echo "install.sh: $PERCONA_ARCHIVE not found (../shared/third_party/)" >&2
        return 1
    }
    local sum stamp
    sum=$(sha256sum "$PERCONA_ARCHIVE" | cut -d' ' -f1)
    stamp="$sum $(basename "$PERCONA_ARCHIVE")"
    if stamped mongodb_exporter "$stamp"; then
        echo "install.sh: mongodb_exporter already built from $(basename "$PERCONA_ARCHIVE")"
        return 0
    fi
    local top
    top=$(tar tzf "$PERCONA_ARCHIVE" | head -1)
    top="${top%%/*}"
    [[ -n "$top" && "$top" != "." && "$top" != ".." ]] || {
        echo "install.sh: unexpected layout of $PERCONA_ARCHIVE" >&2
        return 1
    }
    mkdir -p "$PEERS/src"
    rm -rf "${PEERS:?}/src/$top"
    tar xzf "$PERCONA_ARCHIVE" -C "$PEERS/src"
    local src="$PEERS/src/$top" version
    version=$(cat "$src/VERSION" 2>/dev/null || echo "${top#mongodb_exporter-}")
    echo "install.sh: building mongodb_exporter $version from $src (a few minutes) ..."
    local start=$SECONDS
    if ! (cd "$src" && go build -p 1 \
            -ldflags "-X main.version=$version -X main.commit=$PERCONA_COMMIT" \
            -o "$DEST/mongodb_exporter.tmp" .); then
        echo "install.sh: go build of mongodb_exporter failed" >&2
        rm -f "$DEST/mongodb_exporter.tmp"
        return 1
    fi
    mv -f "$DEST/mongodb_exporter.tmp" "$DEST/mongodb_exporter"
    echo "$stamp" > "$DEST/mongodb_exporter.source"
    echo "install.sh: built mongodb_exporter $version in $((SECONDS - start)) s"
}

# The collector: the builder (go install into target/peers/tools), then the
# builder on the manifest, from the project root (its output_path is
# relative), one package at a time (GOFLAGS -p=1 reaches the builder's go build).
build_otelcol() {
    local tools="$PEERS/tools"
    mkdir -p "$tools"
    if ! built_in "$tools" builder go.opentelemetry.io/collector/cmd/builder "$OCB_VERSION"; then
        echo "install.sh: installing the collector builder $OCB_VERSION ..."
        GOBIN="$tools" go install -p 1 "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" || {
            echo "install.sh: go install of the collector builder failed" >&2
            return 1
        }
    fi
    local stamp
    stamp="$(sha256sum "$MANIFEST" | cut -d' ' -f1) builder $OCB_VERSION"
    if stamped otelcol-mongomon "$stamp"; then
        echo "install.sh: otelcol-mongomon already built from $(basename "$MANIFEST")"
        return 0
    fi
    echo "install.sh: building otelcol-mongomon from $MANIFEST (a few minutes) ..."
    local start=$SECONDS
    if ! (cd "$ROOT" && GOFLAGS="$GOFLAGS -p=1" "$tools/builder" --config "$MANIFEST"); then
        echo "install.sh: the collector builder failed" >&2
        return 1
    fi
    cp -f "$PEERS/otelcol-build/otelcol-mongomon" "$DEST/otelcol-mongomon.tmp"
    mv -f "$DEST/otelcol-mongomon.tmp" "$DEST/otelcol-mongomon"
    echo "$stamp" > "$DEST/otelcol-mongomon.source"
    echo "install.sh: built otelcol-mongomon in $((SECONDS - start)) s"
}

# built_in DIR BIN MODULE VERSION: like built, for a binary in DIR.
built_in() {
    local bin="$1/$2"
    [[ -x "$bin" ]] || return 1
    go version -m "$bin" 2>/dev/null | awk -v m="$3" -v v="$4" \
        '$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

# Telegraf first: it is the long build. A peer that fails is reported and
# skipped, so the others still get built; the exit code says whether all
# three are there.
status=0
build telegraf github.com/influxdata/telegraf "$TELEGRAF_VERSION" \
    github.com/influxdata/telegraf/cmd/telegraf "custom,inputs.mongodb,outputs.file" || status=1
build_exporter || status=1
build_otelcol || status=1

for bin in telegraf mongodb_exporter otelcol-mongomon; do
    if [[ -x "$DEST/$bin" ]]; then
        printf '%-17s %s\n' "$bin:" "$DEST/$bin"
    else
        printf '%-17s %s\n' "$bin:" "NOT BUILT (see the error above)"
    fi
done
exit $status
