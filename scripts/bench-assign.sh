#!/usr/bin/env bash
# Assignment latency benchmark: agent becomes ready with a call waiting -> the REST redirect
# reaches a local stand-in for Twilio. Release build; starts its own redis-server.
#   scripts/bench-assign.sh                      # 2,000 assignments, 1 chain, 1 worker
#   scripts/bench-assign.sh --agents 8 --workers 2 --assignments 5000
#   scripts/bench-assign.sh --trigger complete --wrapup-ms 20   # the worker's timer at a wrap-up's end
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
# BENCH_PROFILE=debug: the debug build (scripts/bench-smoke.sh, which only checks it runs)
if [[ "${BENCH_PROFILE:-release}" == debug ]]; then
  exec cargo run --locked --quiet --example bench_assign -- "$@"
fi
exec cargo run --release --locked --quiet --example bench_assign -- "$@"
