#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries are installed, for the node's PostgreSQL tests
# (they start a throwaway cluster with initdb + postgres on 127.0.0.1, or use
# FEDQ_TEST_POSTGRES_URL when it is set). Idempotent: does nothing when initdb is already
# there; otherwise installs Debian's `postgresql` package with apt-get (as root, or
# through sudo). It never starts the system's own cluster: the tests start their own.
set -euo pipefail

if [ -n "${FEDQ_TEST_POSTGRES_URL:-}" ]; then
  echo "ensure-postgres: FEDQ_TEST_POSTGRES_URL is set; the tests use that server"
  exit 0
fi

have_initdb() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1
}

if have_initdb; then
  echo "ensure-postgres: PostgreSQL is installed ($(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || command -v initdb))"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "ensure-postgres: PostgreSQL is not installed and this user cannot install it;" >&2
  echo "  install the \`postgresql\` package, or set FEDQ_TEST_POSTGRES_URL" >&2
  exit 1
fi

echo "ensure-postgres: installing PostgreSQL with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
# policy-rc.d refuses service starts during the install (no cluster is started: the
# tests make their own); removed again afterwards if we created it.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
status=0
"${SUDO[@]}" apt-get install -y -q --no-install-recommends postgresql || status=$?
if [ "$created_policy" -eq 1 ]; then
  rm -f /usr/sbin/policy-rc.d
fi
if [ "$status" -ne 0 ]; then
  echo "ensure-postgres: apt-get install postgresql failed (exit $status)" >&2
  exit "$status"
fi

if ! have_initdb; then
  echo "ensure-postgres: postgresql was installed but initdb is not under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
echo "ensure-postgres: PostgreSQL installed ($(ls -d /usr/lib/postgresql/*/bin | tail -1))"
