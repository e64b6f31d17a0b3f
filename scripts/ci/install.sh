#!/usr/bin/env bash
# Installs what the checks and tests need and is missing: Debian packages (apt-get) and the
# rustfmt and clippy components. Safe to run again: it only installs what is absent.
set -euo pipefail

# Debian packages the tests use: procps gives `kill` (SIGTERM tests).
APT_PACKAGES=(procps)

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

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "install.sh: adding rust component $component"
    rustup component add "$component"
  fi
done
