#!/usr/bin/env bash
# The console's own checks: TypeScript's type check of its JavaScript (checkJs) and its
# unit tests (node --test). Its browser test runs with the workspace tests
# (tests/console.rs). Needs the npm packages scripts/ci/install.sh installs.
set -euo pipefail
cd "$(dirname "$0")/../../console"
npm run --silent check
npm run --silent unit
