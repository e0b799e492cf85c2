#!/usr/bin/env bash
# The browser tests drive Debian's chromium through Playwright (never
# `playwright install`: its downloads are not reachable here).  Install the
# Debian package when it is missing; without it the browser tests fail.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium: installing Debian's chromium package for the browser tests" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || echo "chromium: apt-get install chromium failed; the browser tests will fail" >&2
else
  echo "chromium: not installed and cannot install it here (needs root and apt-get): sudo apt-get install chromium" >&2
fi
exit 0
