#!/usr/bin/env bash
# The GC policy's cost at scale: runs the agent with 10,000 TCP checks to
# closed ports on 2,500 loopback addresses (127.2.x.y: nothing leaves the
# host), scrapes /metrics every 15 s as a Prometheus would, and after 150 s
# prints the process CPU (/proc/PID/stat), RSS, collections and GC CPU (from
# GODEBUG=gctrace=1), once per --runtime.memory-limit value given:
#
#   bench/gcpolicy.sh off auto
#
# The agent is built as the packages ship it (see bench/sidebyside.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
GOTOOLCHAIN="${RELEASE_TOOLCHAIN:-go1.27.3}" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/connprobe" ./cmd/probe
{
  printf 'defaults: {ip_family: ipv4}\nchecks:\n'
  for i in $(seq 0 9999); do
    h=$((i / 4))
    printf '  - {name: s%d, kind: tcp, host: 127.2.%d.%d, port: %d}\n' "$i" $((h / 250)) $((h % 250 + 1)) $((39001 + i % 4))
  done
} > "$tmp/connprobe.yml"
addr=127.0.0.1:19479
limits=("$@")
[ ${#limits[@]} -gt 0 ] || limits=(off auto)
for limit in "${limits[@]}"; do
  GODEBUG=gctrace=1 "$tmp/connprobe" --config.file "$tmp/connprobe.yml" --web.listen-address "$addr" \
    --runtime.memory-limit "$limit" 2> "$tmp/trace" > /dev/null &
  pid=$!
  for _ in $(seq 1 10); do sleep 15; curl -s -o /dev/null "http://$addr/metrics"; done
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  runs=$(curl -s "http://$addr/metrics" | awk '/^connprobe_check_runs_total/ {s += $NF} END {print s}')
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  # gctrace: "... ms clock, STW+assist/background/idle+STW ms cpu, ..."
  gc=$(grep '^gc ' "$tmp/trace" | sed -E 's/.*ms clock, ([0-9.]+)\+([0-9.]+)\/([0-9.]+)\/([0-9.]+)\+([0-9.]+) ms cpu.*/\1 \2 \3 \4 \5/' |
    awk '{a += $1 + $2 + $3 + $5; i += $4; n++} END {printf "%d collections, GC CPU %.2fs (idle-time marking %.2fs)", n, (a + i) / 1000, i / 1000}')
  echo "--runtime.memory-limit=$limit: $gc, process CPU $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2fs", t / hz}'), RSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB), $runs runs"
done
