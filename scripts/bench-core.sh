#!/usr/bin/env bash
# Micro-benchmark of the routing core (Lua transitions against a private local redis-server):
# claim throughput and per-script latency percentiles, as ratios to a PING round trip.
# Usage: scripts/bench-core.sh [--json] [--core-seconds 10] [--core-claimers 8] [--core-agents 200]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
# BENCH_PROFILE=debug: the debug build (scripts/bench-smoke.sh, which only checks it runs)
if [[ "${BENCH_PROFILE:-release}" == debug ]]; then
  cargo build --locked --quiet
  exec target/debug/callq bench --core "$@"
fi
cargo build --release --locked --quiet
exec target/release/callq bench --core "$@"
