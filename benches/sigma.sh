#!/usr/bin/env bash
# The Sigma engine against rsigma-eval and sigma-rust on the same rules and events, and
# `vedette detect` against `rsigma engine eval` as whole commands on the same file.
#
#   benches/sigma.sh [EVENTS] [engines|commands|all]
#                                    (default 1000000 all; sigma-rust gets EVENTS/200)
#
# Needs the corpora (VEDETTE_CORPORA, default ../shared/corpora) and, for the command
# comparison, the rsigma CLI on PATH or in $HOME/.cache/vedette/tools/bin
# (`cargo install --root $HOME/.cache/vedette/tools rsigma --version =0.23.0 --locked
# --no-default-features --features daemon`: without `daemon` 0.23.0 does not build). Prints
# one JSON line per measurement; max RSS in KiB.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
PARTS=${2:-all}
export VEDETTE_CORPORA=${VEDETTE_CORPORA:-$(cd .. && pwd)/shared/corpora}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vedette/target}
RULES="$VEDETTE_CORPORA/sigma/rules/windows"
cargo build --release --locked -p vedette-bench-sigma -p vedette >&2
BENCH="$CARGO_TARGET_DIR/release/sigma-bench"
VEDETTE="$CARGO_TARGET_DIR/release/vedette"
measure() {
    local rss
    rss=$( { /usr/bin/time -f "%M" "$@" > /tmp/sigma-bench.out; } 2>&1 | tail -1)
    echo "$(cat /tmp/sigma-bench.out | tail -1) {\"max_rss_kib\": $rss}"
}
if [ "$PARTS" != commands ]; then
    echo "# engines: $EVENTS events, rules $RULES" >&2
    for threads in 1 2; do
        measure "$BENCH" --engine vedette --rules "$RULES" --events "$EVENTS" --threads $threads
        measure "$BENCH" --engine rsigma --rules "$RULES" --events "$EVENTS" --threads $threads
    done
    measure "$BENCH" --engine sigma-rust --rules "$RULES" --events $((EVENTS / 200)) --threads 1
fi
[ "$PARTS" = engines ] && exit 0

RSIGMA=$(command -v rsigma || echo "$HOME/.cache/vedette/tools/bin/rsigma")
if [ -x "$RSIGMA" ]; then
    FILE=$(mktemp --suffix .jsonl)
    trap 'rm -f "$FILE"' EXIT
    "$BENCH" --rules "$RULES" --events "$EVENTS" --write "$FILE"
    echo "# commands on $FILE ($(du -h "$FILE" | cut -f1))" >&2
    for run in 1 2 3; do
        start=$(date +%s.%N)
        /usr/bin/time -o /tmp/sigma-rss -f "%M" "$VEDETTE" detect --rules "$RULES" "$FILE" > /tmp/vedette-hits.jsonl 2>/dev/null
        rss=$(cat /tmp/sigma-rss)
        end=$(date +%s.%N)
        echo "{\"command\": \"vedette detect\", \"run\": $run, \"seconds\": $(echo "$end - $start" | bc), \"hits\": $(wc -l < /tmp/vedette-hits.jsonl), \"max_rss_kib\": $rss}"
        start=$(date +%s.%N)
        /usr/bin/time -o /tmp/sigma-rss -f "%M" "$RSIGMA" engine eval -r "$RULES" --logsource-routing -e "@$FILE" > /tmp/rsigma-hits.jsonl 2>/dev/null
        rss=$(cat /tmp/sigma-rss)
        end=$(date +%s.%N)
        echo "{\"command\": \"rsigma engine eval --logsource-routing\", \"run\": $run, \"seconds\": $(echo "$end - $start" | bc), \"hits\": $(wc -l < /tmp/rsigma-hits.jsonl), \"max_rss_kib\": $rss}"
    done
else
    echo "# rsigma CLI not found: command comparison skipped" >&2
fi
