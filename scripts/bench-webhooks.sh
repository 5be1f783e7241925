#!/usr/bin/env bash
# Webhook load figure (README): p50/p99 latency and requests/s of /twilio/voice and /twilio/wait
# on a real `callq serve` with a real redis-server behind it, both started by the load generator
# (examples/webhook_load.rs), correctly signed requests at a fixed rate, open loop.
#
#   scripts/bench-webhooks.sh                               # 1,000 req/s, 20 s per endpoint
#   scripts/bench-webhooks.sh --rate 2000 --seconds 10      # any flag of the example
#   scripts/bench-webhooks.sh --redis-url redis://host:6379 # an existing Redis instead
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
# BENCH_PROFILE=debug: the debug build (scripts/bench-smoke.sh, which only checks it runs)
if [[ "${BENCH_PROFILE:-release}" == debug ]]; then
  cargo build --locked --quiet --example webhook_load
  exec target/debug/examples/webhook_load "$@"
fi
cargo build --release --locked --example webhook_load
exec target/release/examples/webhook_load "$@"
