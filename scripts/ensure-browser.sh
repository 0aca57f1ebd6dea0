#!/usr/bin/env bash
# Makes sure the console's browser test can run (tests/console/browser.py, driven by the
# console's integration test): Debian's Chromium and ChromeDriver at /usr/bin, the Noto CJK
# fonts (the pages are in Chinese; without them the screenshots show boxes), and a Python
# venv at target/browser-tools holding a pinned Selenium. Idempotent: does nothing when all
# of it is already there; otherwise installs the Debian packages with apt-get (as root, or
# through sudo) and makes or mends the venv. Selenium never downloads a browser or a driver:
# the test points it at /usr/bin/chromium and /usr/bin/chromedriver.
set -euo pipefail
cd "$(dirname "$0")/.."

# 4.52.0 and 4.53.0 need a certifi (>= 2026.10.23) that the package index here does not have.
SELENIUM_VERSION=4.51.0
VENV=target/browser-tools

have_fonts() {
  # grep without -q reads all of fc-list's output (no SIGPIPE under pipefail).
  { command -v fc-list >/dev/null 2>&1 && fc-list 2>/dev/null | grep -i 'Noto Sans CJK' >/dev/null; } \
    || dpkg -s fonts-noto-cjk >/dev/null 2>&1
}

have_packages() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && have_fonts
}

did=()
if ! have_packages; then
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "ensure-browser: Chromium, ChromeDriver or the Noto CJK fonts are missing and this user cannot install them;" >&2
    echo "  install the \`chromium chromium-driver fonts-noto-cjk\` packages" >&2
    exit 1
  fi
  echo "ensure-browser: installing chromium chromium-driver fonts-noto-cjk with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  packages=(chromium chromium-driver fonts-noto-cjk)
  # The package lists are refreshed only when the install fails without them.
  if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"; then
    "${SUDO[@]}" apt-get update -q
    status=0
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" || status=$?
    if [ "$status" -ne 0 ]; then
      echo "ensure-browser: apt-get install ${packages[*]} failed (exit $status)" >&2
      exit "$status"
    fi
  fi
  if ! have_packages; then
    echo "ensure-browser: the packages were installed but /usr/bin/chromium, /usr/bin/chromedriver or the Noto CJK fonts are still missing" >&2
    exit 1
  fi
  did+=("installed chromium chromium-driver fonts-noto-cjk")
fi

have_selenium() {
  [ -x "$VENV/bin/python" ] \
    && "$VENV/bin/python" -c "import sys, selenium; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" >/dev/null 2>&1
}

if ! have_selenium; then
  # Debian's own Python when it is there, so the venv does not hang on a version manager's shim.
  python=python3
  if [ -x /usr/bin/python3 ]; then
    python=/usr/bin/python3
  fi
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    mkdir -p target
    "$python" -m venv --clear "$VENV"
    did+=("made the venv $VENV")
  fi
  status=0
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "selenium==$SELENIUM_VERSION" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "ensure-browser: pip install selenium==$SELENIUM_VERSION into $VENV failed (exit $status)" >&2
    exit "$status"
  fi
  if ! have_selenium; then
    echo "ensure-browser: selenium==$SELENIUM_VERSION was installed into $VENV but does not import there" >&2
    exit 1
  fi
  did+=("installed selenium==$SELENIUM_VERSION")
fi

found="$(/usr/bin/chromium --version 2>/dev/null | head -1), $(/usr/bin/chromedriver --version 2>/dev/null | cut -d' ' -f1-2), selenium $SELENIUM_VERSION in $VENV"
if [ "${#did[@]}" -eq 0 ]; then
  echo "ensure-browser: ready ($found)"
else
  joined="$(printf '%s; ' "${did[@]}")"
  echo "ensure-browser: ${joined%; } ($found)"
fi
