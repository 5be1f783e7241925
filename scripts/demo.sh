#!/usr/bin/env bash
# The demo command (README.md): builds callq and runs `callq demo`, which starts its own
# redis-server, the server, a worker and a simulated Twilio with agents and callers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
exec cargo run --release --locked -- demo "$@"
