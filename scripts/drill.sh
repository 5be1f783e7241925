#!/usr/bin/env bash
# Failure drills (`callq drill`, release build): the bench's load through callq and the
# Twilio simulator, `callq worker`s as real processes, and one fault a third of the way into
# the arrivals — a worker SIGKILLed and replaced (kill-worker), Redis with its append-only file
# shut down and started again (redis-restart) or SIGKILLed under appendfsync always
# (redis-kill), CLUSTER FAILOVER of the centre's master on a local 3+3 cluster
# (cluster-failover), Twilio's REST API answering 500 for 30 s (rest-500). Prints one row per
# drill: calls offered, answered, lost, double bookings, the time from the fault's end to the
# next call reaching an agent and until no more callers wait than before the fault, and the
# writes Redis acknowledged then lost (restart drills). Exits 1 if a drill lost a call,
# double-booked an agent, held one, or did not recover.
#
#   scripts/drill.sh [drill…] [more callq drill flags…]    (no drill named: all five)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
# BENCH_PROFILE=debug: the debug build (scripts/bench-smoke.sh, which only checks it runs)
profile=${BENCH_PROFILE:-release}
if [[ "$profile" == debug ]]; then cargo build --locked --quiet; else cargo build --release --locked --quiet; fi
# callq's own warnings while Redis or Twilio is down are expected here: errors only
export RUST_LOG=${RUST_LOG:-error}
exec "target/$profile/callq" drill "$@"
