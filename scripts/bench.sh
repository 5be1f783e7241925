#!/usr/bin/env bash
# `callq bench` in release mode: callq (server, workers), a private redis-server and the
# Twilio simulator in one process, under a chosen load, judged against Erlang C.
#
#   scripts/bench.sh [callq bench flags…]     one run (e.g. --agents 20 --rate 0.0885 --json)
#   scripts/bench.sh --figures                the three loads of README.md, "Figures"
#   scripts/bench.sh --before-after           README.md's before/after table: the same
#                                             arrivals down the legacy path, then through
#                                             callq (--compare), at rho 0.85 and in overload
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
# BENCH_PROFILE=debug: the debug build (scripts/bench-smoke.sh, which only checks it runs)
profile=${BENCH_PROFILE:-release}
if [[ "$profile" == debug ]]; then cargo build --locked --quiet; else cargo build --release --locked --quiet; fi
bench="target/$profile/callq"
if [[ "${1:-}" == "--before-after" ]]; then
  shift
  echo "== rho 0.85, every agent answers: legacy, then callq"
  "$bench" bench --compare --agents 20 --rate 0.0885 --duration 480 --compress 120 "$@"
  echo "== overload: rho 1.20, patience 120 s, 10% of offers ring out: legacy, then callq"
  "$bench" bench --compare --agents 20 --rate 0.125 --duration 240 --compress 60 \
    --patience 120 --no-answer 0.1 "$@"
  exit 0
fi
if [[ "${1:-}" != "--figures" ]]; then
  exec "$bench" bench "$@"
fi
shift
# handle time = ring 2 s + talk 180 s + wrap-up 10 s = 192 s (simulated), 20 agents
echo "== light: rho 0.50"
"$bench" bench --agents 20 --rate 0.0521 --duration 240 --compress 120 "$@"
echo "== rho 0.85, every agent answers"
"$bench" bench --agents 20 --rate 0.0885 --duration 480 --compress 120 "$@"
echo "== overload: rho 1.20, patience 120 s, 10% of offers ring out"
"$bench" bench --agents 20 --rate 0.125 --duration 240 --compress 60 \
  --patience 120 --no-answer 0.1 "$@"
