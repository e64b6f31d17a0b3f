#!/usr/bin/env bash
# Detection peers on the generator's stream, same machine, same run: `vedette detect`
# against `rsigma engine eval` on the same events and the same rules (the bundled rules
# plus every SigmaHQ rule of the corpora), RUNS runs each, interleaved; then `vedette
# detect` on one core against two. Prints one JSON line per run, the min / median / max of
# the ratio, and whether the hits agree (per-rule hit counts, `vedette-bench agree`).
#
#   benches/peers.sh [EVENTS] [RUNS]          (default 1000000 5)
#
# Installs the rsigma CLI (0.23.0) into $HOME/.cache/vedette/tools when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
RUNS=${2:-5}
export VEDETTE_CORPORA=${VEDETTE_CORPORA:-$(cd .. && pwd)/shared/corpora}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vedette/target}
TOOLS=$HOME/.cache/vedette/tools
RSIGMA=$(command -v rsigma || echo "$TOOLS/bin/rsigma")
if [ ! -x "$RSIGMA" ]; then
    cargo install --root "$TOOLS" rsigma --version =0.23.0 --locked >&2
    RSIGMA=$TOOLS/bin/rsigma
fi
cargo build --release --locked -p vedette -p vedette-bench --bin vedette --bin vedette-bench >&2
VEDETTE=$CARGO_TARGET_DIR/release/vedette
BENCH=$CARGO_TARGET_DIR/release/vedette-bench
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Both engines get the same file: every JSON record of the stream, with the Sigma
# product/category/service fields rsigma's log-source routing reads (Vedette routes by
# channel and event id and ignores them).
"$BENCH" generate --scenario benches/scenarios/embedded.toml --events "$EVENTS" --out "$WORK/gen" \
    --combined-json --logsource-fields
FILE=$WORK/gen/json-events.jsonl
RULES=$WORK/rules
mkdir -p "$RULES"
cp -r "$VEDETTE_CORPORA/sigma/rules" "$RULES/sigmahq"
cp -r rules/sigma "$RULES/bundled"
JSON_EVENTS=$(wc -l < "$FILE")
echo "# $JSON_EVENTS JSON events of $EVENTS records ($(du -h "$FILE" | cut -f1)), rules $(find "$RULES" -name '*.yml' | wc -l) files" >&2
timed() { # NAME OUT CMD...: one JSON line with seconds, hits and max RSS
    local name=$1 out=$2
    shift 2
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -o "$WORK/rss" -f "%M" "$@" > "$out" 2> "$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "{\"command\": \"$name\", \"events\": $JSON_EVENTS, \"seconds\": $(echo "$end - $start" | bc), \"hits\": $(wc -l < "$out"), \"max_rss_kib\": $(cat "$WORK/rss")}"
}
for run in $(seq "$RUNS"); do
    timed "vedette detect" "$WORK/vedette.jsonl" "$VEDETTE" detect --rules "$RULES" "$FILE" | tee -a "$WORK/runs"
    timed "rsigma engine eval" "$WORK/rsigma.jsonl" "$RSIGMA" engine eval -r "$RULES" --logsource-routing -e "@$FILE" | tee -a "$WORK/runs"
done
for cpus in 0 0,1; do
    timed "vedette detect on CPUs $cpus" "$WORK/vedette-cpus.jsonl" taskset -c "$cpus" "$VEDETTE" detect --rules "$RULES" "$FILE" | tee -a "$WORK/runs"
done
python3 - "$WORK/runs" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
v = [r["seconds"] for r in runs if r["command"] == "vedette detect"]
r = [r["seconds"] for r in runs if r["command"] == "rsigma engine eval"]
ratios = sorted(b / a for a, b in zip(v, r))
events = runs[0]["events"]
for name, secs in (("vedette detect", v), ("rsigma engine eval", r)):
    rates = sorted(events / x for x in secs)
    print(f"# {name}: events/s min {rates[0]:,.0f}, median {statistics.median(rates):,.0f}, max {rates[-1]:,.0f}")
print(f"# ratio rsigma seconds / vedette seconds over {len(ratios)} paired runs: "
      f"min {ratios[0]:.2f}, median {statistics.median(ratios):.2f}, max {ratios[-1]:.2f}")
one = [x["seconds"] for x in runs if x["command"] == "vedette detect on CPUs 0"]
two = [x["seconds"] for x in runs if x["command"] == "vedette detect on CPUs 0,1"]
if one and two:
    print(f"# vedette detect, one core to two: {one[0] / two[0]:.2f}x")
PY
"$BENCH" agree --vedette "$WORK/vedette.jsonl" --rsigma "$WORK/rsigma.jsonl"
