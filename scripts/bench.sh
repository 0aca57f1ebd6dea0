#!/usr/bin/env bash
# The whole benchmark suite in one command (docs/performance.md): makes sure PostgreSQL is
# installed for the postgres_fdw baseline, then builds fedq in release mode with the Cedar
# side of the policy comparison and runs `fedq bench` with any arguments given, e.g.
#   scripts/bench.sh --records 1000000 --court-records 10000000
# Writes target/bench-report/report.json and latency.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
exec cargo run --release --locked --features cedar -- bench "$@"
