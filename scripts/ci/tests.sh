#!/usr/bin/env bash
# Every test of the workspace: unit tests, end-to-end tests in tests/, doc tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --workspace --locked
