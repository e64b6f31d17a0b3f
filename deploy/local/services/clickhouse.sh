#!/usr/bin/env bash
# A ClickHouse server for the tests: Debian's clickhouse-server package (18.16, the
# oldest server Vedette supports) on loopback, in UTC, with its data under DIR.
# `start DIR` prints the address for services.env. CLICKHOUSE_SERVER_BIN overrides the
# binary (e.g. a current release, to run the suite against it).
set -euo pipefail
cmd="${1:?usage: clickhouse.sh start|stop DIR}"
dir="${2:?usage: clickhouse.sh start|stop DIR}"
server="${CLICKHOUSE_SERVER_BIN:-$(command -v clickhouse-server || true)}"
config="${CLICKHOUSE_CONFIG:-/etc/clickhouse-server/config.xml}"

# A loopback port nothing listens on, below the kernel's ephemeral range (32768 and up)
# and below the ports the tests give their own services (20000 and up).
free_port() {
  local port
  while :; do
    port=$((10000 + RANDOM % 10000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# Whether the server answers /ping on PORT.
pong() {
  local answer
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  answer="$(timeout 2 cat <&3 || true)"
  exec 3<&-
  [[ "$answer" == *"Ok."* ]]
}

case "$cmd" in
  start)
    [ -n "$server" ] && [ -x "$server" ] || {
      echo "clickhouse.sh: clickhouse-server is missing: run scripts/ci/install.sh" >&2
      exit 1
    }
    http="$(free_port)"
    tcp="$(free_port)"
    interserver="$(free_port)"
    mkdir -p "$dir/data/tmp"
    (exec "$server" --config-file="$config" -- \
      --path="$dir/data/" --tmp_path="$dir/data/tmp/" \
      --logger.log="$dir/server.log" --logger.errorlog="$dir/error.log" \
      --listen_host=127.0.0.1 --http_port="$http" --tcp_port="$tcp" \
      --interserver_http_port="$interserver" --timezone=UTC > "$dir/stdout.log" 2>&1) &
    echo $! > "$dir/pid"
    for _ in $(seq 1 300); do
      if pong "$http" 2>/dev/null; then
        echo "VEDETTE_CLICKHOUSE_URL=http://127.0.0.1:$http"
        exit 0
      fi
      sleep 0.1
    done
    echo "clickhouse.sh: the server did not answer on $http within 30 s; its logs:" >&2
    tail -n 30 "$dir/stdout.log" "$dir/error.log" >&2 || true
    exit 1
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      kill "$(cat "$dir/pid")" 2>/dev/null || true
      rm -f "$dir/pid"
    fi
    ;;
  *)
    echo "usage: clickhouse.sh start|stop DIR" >&2
    exit 2
    ;;
esac
