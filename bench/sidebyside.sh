#!/usr/bin/env bash
# Side-by-side benchmark of connprobe and blackbox_exporter (when installed:
# apt-get install prometheus-blackbox-exporter) in a throw-away network
# namespace; see internal/tools/sidebyside for what it measures.
#
#   sudo bench/sidebyside.sh                  # one run, 200 addresses
#   sudo bench/sidebyside.sh -runs 3 -scale 10000
#
#   sudo bench/sidebyside.sh -phases tls -blackbox none   # connprobe's TLS phase alone
#
# -runs N repeats the whole measurement N times (a fresh agent each time);
# every other flag goes to the tool (-hosts, -interval, -window, -scale, -json,
# -phases, -blackbox). -phases runs only the phases named, comma-separated:
# tcp, tls, classic (tls/classic), idle, scale (with -scale N); default all.
# blackbox_exporter runs beside the tcp and tls phases when installed;
# -blackbox none leaves it out, -blackbox PATH names its binary.
#
# The agent is built as the packages ship it (internal/tools/pkgbuild): static
# (CGO_ENABLED=0), -trimpath, stripped (-s -w), with the release toolchain, so
# the figures are those of the binary users run. RELEASE_TOOLCHAIN=local
# measures the installed Go instead.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=1
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -runs) runs="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
RELEASE_TOOLCHAIN="${RELEASE_TOOLCHAIN:-go1.27.3}"
GOTOOLCHAIN="$RELEASE_TOOLCHAIN" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/connprobe" ./cmd/probe
go build -o "$tmp/sidebyside" ./internal/tools/sidebyside
echo "agent: $("$tmp/connprobe" --version), $(stat -c %s "$tmp/connprobe") bytes, static, stripped"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$tmp/sidebyside" -agent "$tmp/connprobe" "${args[@]+"${args[@]}"}"
done
