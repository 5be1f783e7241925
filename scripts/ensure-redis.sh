#!/usr/bin/env bash
# Make sure `redis-server` is on PATH: callq's tests and `callq demo` start their own private
# server from it. Installs Debian's package where it is missing (needs root or sudo).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server is missing; installing Debian's redis-server package" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
else
  echo "no apt-get here: install redis-server yourself (e.g. 'brew install redis')" >&2
  exit 1
fi
command -v redis-server >/dev/null
