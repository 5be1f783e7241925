#!/usr/bin/env bash
# Heartbeat throughput: one release-mode `callq serve` on a private redis-server, driven by
# examples/bench_heartbeats.rs through the real agent API (10,000 agents by default, a paced
# phase at 2,000 heartbeats/s = 10,000 agents every 5 s, then a flat-out phase). Prints
# heartbeats/s and latency percentiles. Extra arguments go to the load generator, e.g.
#   scripts/bench-heartbeats.sh --agents 20000 --rate 4000 --connections 512
# BENCH_THREADS sets the load generator's threads (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
# BENCH_PROFILE=debug: the debug build (scripts/bench-smoke.sh, which only checks it runs)
profile=${BENCH_PROFILE:-release}
if [[ "$profile" == debug ]]; then
  cargo build --locked --quiet --bin callq --example bench_heartbeats
else
  cargo build --release --locked --bin callq --example bench_heartbeats
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" && return 0; sleep 0.1; done
  echo "$what did not come up" >&2
  return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=($redis_pid)
wait_for redis-server port_in_use "$redis_port"

serve_port=$(free_port)
admin_token="bench-admin-$RANDOM$RANDOM-0123456789abcdef"
REDIS_URL="redis://127.0.0.1:$redis_port/" \
CALLQ_LISTEN="127.0.0.1:$serve_port" \
CALLQ_ADMIN_TOKEN="$admin_token" \
CALLQ_AGENT_SECRET="bench-agent-secret-$RANDOM$RANDOM-0123456789abcdef" \
TWILIO_AUTH_TOKEN="bench-twilio-token-$RANDOM$RANDOM" \
RUST_LOG="${RUST_LOG:-warn}" \
  "target/$profile/callq" serve >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
wait_for "callq serve" curl -fsS -o /dev/null "http://127.0.0.1:$serve_port/readyz" ||
  { cat "$work/serve.log" >&2; exit 1; }

echo "callq serve ($profile) on :$serve_port, redis-server $(redis-server --version | grep -o 'v=[^ ]*') on :$redis_port, $(nproc) cores"
CALLQ_ADMIN_TOKEN="$admin_token" "target/$profile/examples/bench_heartbeats" \
  --server "http://127.0.0.1:$serve_port" --watch "serve=$serve_pid" --watch "redis=$redis_pid" "$@"
