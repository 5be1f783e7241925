#!/usr/bin/env bash
# Make sure jq is installed: tests/agents.rs runs scripts/agent-example.sh both with jq (as a
# desktop developer would) and without. Installs Debian's `jq` package where it is missing
# (needs root or sudo), and fails loudly when it cannot.
set -euo pipefail
command -v jq >/dev/null 2>&1 && exit 0
echo "jq is missing; installing Debian's jq package" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq jq >/dev/null
else
  echo "no apt-get here: install jq yourself" >&2
  exit 1
fi
command -v jq >/dev/null 2>&1 || { echo "jq is still missing after the install" >&2; exit 1; }
