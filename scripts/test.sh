#!/usr/bin/env bash
# Every check and test of Vedette, on a fresh machine or a used one:
#   1. installs what the tests need (Debian packages, Rust components),
#   2. starts the services the tests need on loopback, data under a temporary folder,
#   3. runs cargo fmt --check, clippy -D warnings, the console's type check and unit
#      tests, and every test of the workspace (its browser test among them),
#   4. stops the services, and fails if any step failed.
# .ci/run calls this script; the README names it as the one test command.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build output lives outside the clone so repeated runs are fast; nothing relies on it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vedette/target}"
# Incremental state only helps an edit-compile loop; here it doubles the disk used.
export CARGO_INCREMENTAL=0
scripts/ci/disk_guard.sh "$CARGO_TARGET_DIR"
# Third-party test corpora (see README, "Test data"): `shared/corpora` next to the
# repository, or next to one of its parent folders.
if [ -z "${VEDETTE_CORPORA:-}" ]; then
  for up in .. ../.. ../../..; do
    if [ -d "$up/shared/corpora" ]; then
      VEDETTE_CORPORA="$(cd "$up/shared/corpora" && pwd)"
      break
    fi
  done
fi
if [ -z "${VEDETTE_CORPORA:-}" ] || [ ! -d "$VEDETTE_CORPORA" ]; then
  echo "test.sh: the test corpora are missing: set VEDETTE_CORPORA to the corpora folder" >&2
  echo "test.sh: (see README, \"Test data\", for where they come from)" >&2
  exit 1
fi
export VEDETTE_CORPORA

scripts/ci/install.sh
# The Python that has chDB (installed by install.sh) for the modern ClickHouse dialect test.
export VEDETTE_PYTHON="${VEDETTE_PYTHON:-${VEDETTE_TOOLS:-$HOME/.cache/vedette/tools}/chdb-venv/bin/python}"

services_dir="$(mktemp -d -t vedette-services.XXXXXX)"
export VEDETTE_SERVICES_DIR="$services_dir"
trap 'deploy/local/down.sh "$services_dir"' EXIT
deploy/local/up.sh "$services_dir"
# up.sh writes the addresses of what it started; the tests read them from the environment.
set -a
# shellcheck disable=SC1091
. "$services_dir/services.env"
set +a

scripts/ci/fmt.sh
scripts/ci/clippy.sh
scripts/ci/console.sh
scripts/ci/tests.sh
echo "test.sh: all checks passed"
