#!/usr/bin/env bash
# The App tests (pytest marker `browser`) drive a headless Chromium through Playwright. Playwright's
# own browser download is not reachable from these machines; Debian's chromium package is, and
# Playwright drives it (tests/browser/app.py finds it). Installed when missing.
set -euo pipefail
for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" --version >/dev/null 2>&1; then
    exit 0
  fi
done
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "ensure-browser: installing Debian's chromium with apt-get" >&2
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
  command -v chromium >/dev/null 2>&1 && exit 0
fi
echo "ensure-browser: no chromium; install Chromium (Debian/Ubuntu: apt-get install chromium) for the App tests" >&2
exit 1
