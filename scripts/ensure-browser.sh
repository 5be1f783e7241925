#!/usr/bin/env bash
# Make sure Chromium and its WebDriver are installed: tests/console.rs drives the agent console
# in a headless Chromium through chromedriver. Installs Debian's `chromium` and
# `chromium-driver` packages where either is missing (needs root or sudo), and fails loudly
# when it cannot.
set -euo pipefail
have() {
  command -v chromedriver >/dev/null 2>&1 &&
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
}
if have; then
  exit 0
fi
echo "chromium or chromedriver is missing; installing Debian's chromium and chromium-driver packages" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "no apt-get here: install Chromium and a matching chromedriver yourself" >&2
  exit 1
fi
if ! have; then
  echo "chromium and chromedriver are still missing after the install" >&2
  exit 1
fi
