#!/usr/bin/env bash
# RustSec advisories, offline: the build network cannot reach GitHub, so the database is the
# snapshot in ../shared/advisory-db (its SNAPSHOT file names the upstream commit). cargo-deny
# wants a git repository at DB_PATH/advisory-db-<hash of the default URL>; we make one from
# the snapshot under target/, dated as the snapshot, and run `cargo deny --offline check
# advisories` against fedq's lockfiles and against a negative control that must fail.
#
# Usage: scripts/check-advisories.sh [SNAPSHOT_DIR]   (default: ../shared/advisory-db)
# Refreshing the snapshot: docs/reliability.md, "Supply chain".
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot="${1:-../shared/advisory-db}"
if [ ! -f "$snapshot/SNAPSHOT" ] || [ ! -d "$snapshot/crates" ]; then
  echo "advisories: no RustSec snapshot at \`$snapshot\` (expected SNAPSHOT and crates/); put one there or pass its path" >&2
  exit 2
fi
snapshot="$(cd "$snapshot" && pwd)"
command -v cargo-deny >/dev/null || { echo "advisories: cargo-deny is not on PATH (.ci/run installs it)" >&2; exit 2; }

# cargo-deny 0.20's directory name for https://github.com/RustSec/advisory-db. If a newer
# cargo-deny names it otherwise, the check fails loudly ("cannot change to …"), never passes.
root="$(pwd)/target/advisory-dbs"
db="$root/advisory-db-3157b0e258782691"
rm -rf "$db"
mkdir -p "$root"
cp -R "$snapshot" "$db"
rm -rf "$db/.git"
# The snapshot's own date, so cargo-deny's staleness check sees how old the data really is.
snap_date="$(grep -Eo '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9:]{5}' "$snapshot/SNAPSHOT" | head -1 || true)"
(
  cd "$db"
  git init -q
  git add -A
  GIT_AUTHOR_DATE="${snap_date:-}" GIT_COMMITTER_DATE="${snap_date:-}" \
    git -c user.name=fedq-ci -c user.email=ci@fedq.invalid -c commit.gpgsign=false \
    commit -q -m "RustSec advisory-db snapshot: $(head -c 200 "$snapshot/SNAPSHOT" | tr '\n' ' ')"
)
echo "advisories: $(cat "$snapshot/SNAPSHOT")"
export FEDQ_ADVISORY_DBS="$root"

# The crates must be in cargo's cache for an offline `cargo metadata`.
cargo fetch --locked --quiet
(cd fuzz && cargo fetch --locked --quiet)
(cd scripts/advisory-control && cargo fetch --locked --quiet)

cargo-deny --locked --offline check advisories
cargo-deny --locked --offline --manifest-path fuzz/Cargo.toml --config deny.toml check advisories

# Negative control: smallvec 1.6.0 has RUSTSEC-2021-0003. Passing here would mean the
# database was not read.
control_log="$root/control.log"
if cargo-deny --locked --offline --manifest-path scripts/advisory-control/Cargo.toml \
     --config deny.toml check advisories >"$control_log" 2>&1; then
  echo "advisories: the negative control (smallvec 1.6.0) passed; the advisory database was not read" >&2
  cat "$control_log" >&2
  exit 1
fi
if ! grep -q 'RUSTSEC-2021-0003' "$control_log"; then
  echo "advisories: the negative control failed without naming RUSTSEC-2021-0003:" >&2
  cat "$control_log" >&2
  exit 1
fi
echo "advisories: negative control refused as expected (RUSTSEC-2021-0003 on smallvec 1.6.0)"
