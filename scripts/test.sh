#!/usr/bin/env bash
# The test suite, as README says: makes sure PostgreSQL is installed (the node's
# PostgreSQL backend is tested against a real server), then runs every test binary,
# even after one fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f scripts/ensure-postgres.sh ]; then
  bash scripts/ensure-postgres.sh
fi
# --no-fail-fast: every test binary runs even after one fails, so one run shows every failure.
exec cargo test --workspace --locked --no-fail-fast "$@"
