#!/usr/bin/env bash
# The browser tests drive Debian's chromium through Playwright (never
# `playwright install`: its downloads are not reachable here).
#
# A developer's `make test` never installs system packages by itself: when
# chromium is missing it says so, prints the one command that installs it,
# and fails.  With INSTALL_DEPS=1 (`make test INSTALL_DEPS=1`; CI's .ci/run
# sets it) it installs Debian's package with apt-get, as root.
set -u
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"   # where tests/browser/conftest.py launches it
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
can_install=no
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  can_install=yes
fi
if [ "${INSTALL_DEPS:-}" = 1 ] && [ "$can_install" = yes ]; then
  echo "chromium: installing Debian's chromium package for the browser tests (INSTALL_DEPS=1)" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 && [ -x "$CHROMIUM" ]; then
    exit 0
  fi
  echo "chromium: apt-get install chromium failed; the browser tests need $CHROMIUM" >&2
  exit 1
fi
if [ "$can_install" = yes ]; then
  fix="make test INSTALL_DEPS=1"
else
  fix="sudo apt-get install chromium"
fi
echo "chromium: $CHROMIUM is missing; the browser tests (tests/browser) drive it. Install it with: $fix" >&2
exit 1
