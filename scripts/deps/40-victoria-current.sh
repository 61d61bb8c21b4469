#!/usr/bin/env bash
# VictoriaMetrics 1.150.0, built from ../shared/third_party/ into
# target/third_party/: Debian's 1.79.5 takes no zstd bodies, which
# upload.compression = "zstd" is tested against. Its dependencies are
# vendored, so the build needs Go and nothing from the network (about
# 80 s cold on 2 cores). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$PWD/target/third_party/victoria-metrics-1.150.0"
if [ -x "$out" ]; then exit 0; fi
src="../shared/third_party/VictoriaMetrics-1.150.0.tar.gz"
if [ ! -f "$src" ]; then
  echo "deps: $src is missing; the tests expect ../shared beside the checkout" >&2
  exit 1
fi
if ! command -v go >/dev/null 2>&1; then
  echo "deps: go is needed to build VictoriaMetrics 1.150.0 (apt-get install golang-go)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar xzf "$src" -C "$work"
mkdir -p "$(dirname "$out")"
echo "deps: building VictoriaMetrics 1.150.0 from $src"
(cd "$work/VictoriaMetrics-1.150.0" && CGO_ENABLED=0 go build -mod=vendor -o "$out.tmp" ./app/victoria-metrics)
mv "$out.tmp" "$out"
