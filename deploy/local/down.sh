#!/usr/bin/env bash
# Stops what deploy/local/up.sh DIR started and removes DIR.
# Usage: deploy/local/down.sh DIR
set -uo pipefail
dir="${1:?usage: down.sh DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
shopt -s nullglob
for service in "$here"/services/*.sh; do
  name="$(basename "$service" .sh)"
  [ -d "$dir/$name" ] && "$service" stop "$dir/$name"
done
rm -rf "$dir"
