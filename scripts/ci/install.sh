#!/usr/bin/env bash
# Installs what the checks and tests need and is missing: Debian packages (apt-get) and the
# rustfmt and clippy components. Safe to run again: it only installs what is absent.
set -euo pipefail

# Debian packages the tests use: procps gives `kill` (SIGTERM tests); make and pkg-config
# build librdkafka (rdkafka-sys); clickhouse-server (18.16, the oldest server Vedette
# supports) backs the ClickHouse store tests; python3-venv holds chDB (below).
# chromium runs the console's browser test (driven by Playwright, from npm below).
APT_PACKAGES=(procps make pkg-config clickhouse-server python3 python3-venv chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "install.sh: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}"
fi

# Node.js and npm for the console's checks and browser test (any Node.js >= 18; the
# machine's own when it has one, else Debian's).
if ! command -v npm >/dev/null 2>&1; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "install.sh: installing nodejs and npm"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q nodejs npm
fi
# The console's npm packages (TypeScript for its type check, playwright-core for its
# browser test), exactly as console/package-lock.json pins them; again only when the
# lock file changed since the last install.
console_stamp="console/node_modules/.vedette-lock.sha256"
console_lock_sum="$(sha256sum console/package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$console_stamp" 2>/dev/null)" != "$console_lock_sum" ]; then
  echo "install.sh: installing the console's npm packages"
  (cd console && npm ci --no-audit --no-fund --loglevel=error)
  echo "$console_lock_sum" > "$console_stamp"
fi

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "install.sh: adding rust component $component"
    rustup component add "$component"
  fi
done

# tansu, a Kafka-compatible broker (Apache-2.0), for the bus tests. Its build takes
# minutes, so the binary is kept outside the clone and built only when missing.
TANSU_VERSION=0.6.0
tools="${VEDETTE_TOOLS:-$HOME/.cache/vedette/tools}"
if ! "$tools/bin/tansu" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "install.sh: building tansu $TANSU_VERSION into $tools (several minutes)"
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vedette/target}/tansu" \
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore --root "$tools"
fi

# chDB (PyPI chdb-core, ClickHouse 26.x in-process) for the modern-dialect test, in a
# virtual environment outside the clone; scripts/test.sh points VEDETTE_PYTHON at it.
CHDB_VERSION=26.9.0
venv="$tools/chdb-venv"
if ! "$venv/bin/python" -c "import chdb, sys; sys.exit(chdb.__version__ != '$CHDB_VERSION')" 2>/dev/null; then
  echo "install.sh: installing chdb-core $CHDB_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "chdb-core==$CHDB_VERSION"
fi
