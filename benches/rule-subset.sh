#!/usr/bin/env bash
# Copies the first N Sigma rule files of a folder (paths sorted bytewise, the order
# `vedette` loads them in), with their folders, into OUT: a rule set of a given size to
# time `vedette rules check -q OUT` on (BENCHMARKS.md, "Sigma, sixth measurement").
#
#   benches/rule-subset.sh N OUT [RULES]      RULES: default $VEDETTE_CORPORA/sigma/rules
set -euo pipefail
N=${1:?usage: rule-subset.sh N OUT [RULES]}
OUT=${2:?usage: rule-subset.sh N OUT [RULES]}
CORPORA=${VEDETTE_CORPORA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/corpora}
RULES=${3:-$CORPORA/sigma/rules}
[ -d "$RULES" ] || { echo "rule-subset.sh: no rules at $RULES (set VEDETTE_CORPORA)" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$RULES"
find . -type f \( -name '*.yml' -o -name '*.yaml' \) | LC_ALL=C sort | head -n "$N" \
    | xargs -d '\n' cp --parents -t "$OUT"
echo "rule-subset.sh: $(find "$OUT" -type f | wc -l) rule files in $OUT" >&2
