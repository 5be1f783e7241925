#!/usr/bin/env bash
# Every benchmark script at a tiny size on the debug build (BENCH_PROFILE=debug): each must
# start, measure and exit 0, so none rots unnoticed. The figures mean nothing at this size.
# scripts/test.sh runs it after the tests (which leave the debug build in place); about
# two and a half minutes on two busy cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_PROFILE=debug
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() { # name, command... (exit status 75: a peer the benchmark needs is unavailable; skipped)
  local name=$1 started=$SECONDS status=0
  shift
  "$@" >"$log" 2>&1 || status=$?
  if [[ $status -eq 75 ]]; then
    echo "bench smoke: $name skipped: $(tail -n 1 "$log")"
    return
  fi
  if [[ $status -ne 0 ]]; then
    echo "bench smoke: $name failed:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  echo "bench smoke: $name ok ($((SECONDS - started)) s)"
}
run bench-core scripts/bench-core.sh --core-seconds 1 --core-samples 100 --core-agents 10 \
  --core-claimers 2
run bench-instructions scripts/bench-instructions.sh --core-samples 100 --core-agents 10 \
  --core-claimers 2
run bench-bullmq scripts/bench-bullmq.sh --jobs 200 --core-seconds 1 --core-samples 100 \
  --core-agents 10 --core-claimers 2
run bench-assign scripts/bench-assign.sh --assignments 20 --warmup 2
run bench-assign-wrapup scripts/bench-assign.sh --trigger complete --wrapup-ms 5 \
  --assignments 20 --warmup 2
run bench-webhooks scripts/bench-webhooks.sh --rate 50 --seconds 1 --warmup 0
run bench-heartbeats scripts/bench-heartbeats.sh --agents 50 --rate 50 --paced 1s --max 1s \
  --connections 8 --setup-concurrency 8
run bench scripts/bench.sh --agents 3 --rate 0.05 --duration 4 --drain 5
run bench-chaos scripts/bench-chaos.sh 1 --duration 4 --drain 5
run drill scripts/drill.sh kill-worker rest-500 --duration 4s --fault-at 1s --outage 1s \
  --agents 3 --rate 0.04 --talk 60
