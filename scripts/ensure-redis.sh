#!/usr/bin/env bash
# Make sure `redis-server` and `redis-cli` are on PATH: callq's tests and `callq demo` start
# their own private server from it, and tests/cluster.rs forms a local Redis Cluster with
# `redis-cli --cluster create`. Installs Debian's package (redis-tools comes with it) where
# either is missing (needs root or sudo).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
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
command -v redis-cli >/dev/null
