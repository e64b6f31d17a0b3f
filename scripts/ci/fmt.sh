#!/usr/bin/env bash
# Formatting check: fails if any file is not rustfmt-clean.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo fmt --all -- --check
