#!/usr/bin/env bash
# Starts, on loopback, the services the tests need, each with its data under DIR, and
# writes their addresses as shell assignments to DIR/services.env.
#
# Usage: deploy/local/up.sh DIR        (stop them with deploy/local/down.sh DIR)
#
# Each service is a script deploy/local/services/NAME.sh that takes `start DIR` and
# `stop DIR`; `start` prints NAME_VAR=value lines for services.env: ClickHouse
# (clickhouse.sh) and a Kafka-protocol broker (kafka.sh).
set -euo pipefail
dir="${1:?usage: up.sh DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir"
: > "$dir/services.env"
shopt -s nullglob
for service in "$here"/services/*.sh; do
  name="$(basename "$service" .sh)"
  echo "up.sh: starting $name"
  mkdir -p "$dir/$name"
  "$service" start "$dir/$name" >> "$dir/services.env"
done
echo "up.sh: services ready in $dir"
