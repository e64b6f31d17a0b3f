#!/usr/bin/env bash
# Lints: every target of every crate, warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo clippy --workspace --all-targets --locked -- -D warnings
