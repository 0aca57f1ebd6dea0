#!/usr/bin/env bash
# The test suite, as README says: makes sure PostgreSQL is installed (the node's
# PostgreSQL backend is tested against a real server), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f scripts/ensure-postgres.sh ]; then
  bash scripts/ensure-postgres.sh
fi
exec cargo test --workspace --locked "$@"
