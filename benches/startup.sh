#!/usr/bin/env bash
# Time from `vedette run` (release build, fresh data folder, no config) to the first
# 200 from GET /health, then SIGTERM; repeated N times (default 10). Prints one line per
# run and the median. Needs curl.
# Usage: benches/startup.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/vedette/target}"
cargo build --release --locked -q
bin="$target/release/vedette"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
port=18080
times=()
for i in $(seq "$n"); do
  rm -rf "$work/data"
  start=$(date +%s%N)
  "$bin" run --data-dir "$work/data" --http-addr "127.0.0.1:$port" 2>/dev/null &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.002; done
  end=$(date +%s%N)
  kill -TERM "$pid"
  wait "$pid"
  ms=$(( (end - start) / 1000000 ))
  times+=("$ms")
  echo "run $i: healthy after ${ms} ms, exit 0 on SIGTERM"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median: ${median} ms over $n runs"
