#!/usr/bin/env bash
# The test suite, as README says: makes sure PostgreSQL is installed (the node's
# PostgreSQL backend is tested against a real server) and Chromium with Selenium (the
# officers' console is tested in a real browser), then runs every test binary, even
# after one fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f scripts/ensure-postgres.sh ]; then
  bash scripts/ensure-postgres.sh
fi
# The officers' console is tested in headless Chromium (Debian's) driven by Selenium.
if [ -f scripts/ensure-browser.sh ]; then
  bash scripts/ensure-browser.sh
fi
# --no-fail-fast: every test binary runs even after one fails, so one run shows every failure.
exec cargo test --workspace --locked --no-fail-fast "$@"
