#!/usr/bin/env bash
# Assignment latency benchmark: agent becomes ready with a call waiting -> the REST redirect
# reaches a local stand-in for Twilio. Release build; starts its own redis-server.
#   scripts/bench-assign.sh                      # 2,000 assignments, 1 chain, 1 worker
#   scripts/bench-assign.sh --agents 8 --workers 2 --assignments 5000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
exec cargo run --release --quiet --example bench_assign -- "$@"
