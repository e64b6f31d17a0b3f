#!/usr/bin/env bash
# A Kafka-protocol broker for the tests: tansu (crates.io, Apache-2.0) on loopback,
# storing to SQLite under DIR. `start DIR` prints the addresses for services.env.
#
# The binary is installed by scripts/ci/install.sh under $VEDETTE_TOOLS (default
# ~/.cache/vedette/tools); TANSU_BIN overrides it.
set -euo pipefail
cmd="${1:?usage: kafka.sh start|stop DIR}"
dir="${2:?usage: kafka.sh start|stop DIR}"
tools="${VEDETTE_TOOLS:-$HOME/.cache/vedette/tools}"
tansu="${TANSU_BIN:-$tools/bin/tansu}"

# A loopback port nothing listens on, below the kernel's ephemeral range (32768 and up)
# and below the ports the tests give their own services (20000 and up).
free_port() {
  local port
  while :; do
    port=$((10000 + RANDOM % 10000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

case "$cmd" in
  start)
    [ -x "$tansu" ] || { echo "kafka.sh: $tansu is missing: run scripts/ci/install.sh" >&2; exit 1; }
    port="$(free_port)"
    url="tcp://127.0.0.1:$port"
    # tansu reads the SQLite path relative to its working folder.
    (cd "$dir" && exec "$tansu" broker --listener-url "$url" --advertised-listener-url "$url" \
      --storage-engine "sqlite://tansu.db" > broker.log 2>&1) &
    echo $! > "$dir/pid"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "VEDETTE_KAFKA_BROKERS=127.0.0.1:$port"
        echo "VEDETTE_TANSU_BIN=$tansu"
        exit 0
      fi
      sleep 0.1
    done
    echo "kafka.sh: tansu did not listen on $port within 10 s; its log:" >&2
    cat "$dir/broker.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      kill "$(cat "$dir/pid")" 2>/dev/null || true
      rm -f "$dir/pid"
    fi
    ;;
  *)
    echo "usage: kafka.sh start|stop DIR" >&2
    exit 2
    ;;
esac
