#!/usr/bin/env bash
# callq's routing cycle against BullMQ's job cycle on the same private redis-server,
# interleaved: BullMQ (scripts/bullmq/cycle.mjs: bulk-add N jobs, then one Worker at
# concurrency 50 fetches and completes them), then `callq bench --core` (full call cycles:
# enqueue, claim, answer, complete; its slow-log profile off, which would tax Redis), and so
# on for --rounds pairs. Prints each run's rate, Redis main-thread CPU µs per cycle/job (INFO
# cpu deltas), the ratio callq/BullMQ per pair and the medians.
# Usage: scripts/bench-bullmq.sh [--rounds 3] [--jobs 20000] [--concurrency 50]
#          [--core-seconds 5] [--core-agents 200] [--core-claimers 8] [--core-samples 1000]
# Needs Node 18+ and npm (BullMQ is installed from scripts/bullmq/package-lock.json with
# `npm ci` into scripts/bullmq/node_modules). Exits 75 when Node or BullMQ is unavailable
# (scripts/bench-smoke.sh then skips it). BENCH_PROFILE=debug: the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 jobs=20000 concurrency=50
core_seconds=5 core_agents=200 core_claimers=8 core_samples=1000
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2 ;;
    --jobs) jobs=$2 ;;
    --concurrency) concurrency=$2 ;;
    --core-seconds) core_seconds=$2 ;;
    --core-agents) core_agents=$2 ;;
    --core-claimers) core_claimers=$2 ;;
    --core-samples) core_samples=$2 ;;
    *) echo "unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
  shift 2
done

unavailable() {
  echo "bench-bullmq: BullMQ unavailable: $*" >&2
  exit 75
}
command -v node >/dev/null 2>&1 || unavailable "node is not installed"
command -v npm >/dev/null 2>&1 || unavailable "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[[ $node_major -ge 18 ]] || unavailable "node $(node --version) is older than 18"
if ! node -e 'require("./scripts/bullmq/node_modules/bullmq/package.json")' 2>/dev/null; then
  echo "installing BullMQ (npm ci in scripts/bullmq)" >&2
  (cd scripts/bullmq && timeout 300 npm ci --no-audit --no-fund --loglevel=error --fetch-retries=1 \
    --fetch-timeout=30000 >&2) ||
    unavailable "npm ci failed (no registry?)"
fi

scripts/ensure-redis.sh
profile=${BENCH_PROFILE:-release}
if [[ "$profile" == debug ]]; then
  cargo build --locked --quiet --bin callq
else
  cargo build --release --locked --quiet --bin callq
fi
callq=target/$profile/callq

# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
private_work
start_redis "$work"
url="redis://127.0.0.1:$port/"

echo "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on :$port, callq ($profile)," \
  "BullMQ $(node -p 'require("./scripts/bullmq/node_modules/bullmq/package.json").version')," \
  "node $(node --version), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "BullMQ: $jobs jobs bulk-added, one Worker at concurrency $concurrency;" \
  "callq: bench --core, $core_agents agents, $core_claimers claimers, ${core_seconds} s"
for r in $(seq 1 "$rounds"); do
  node scripts/bullmq/cycle.mjs --redis-url "$url" --jobs "$jobs" --concurrency "$concurrency" \
    >"$work/bullmq.$r.json"
  "$callq" bench --core --json --core-no-profile --core-redis-url "$url" \
    --core-seconds "$core_seconds" --core-agents "$core_agents" --core-claimers "$core_claimers" \
    --core-samples "$core_samples" | tail -n 1 >"$work/callq.$r.json"
done

WORK=$work ROUNDS=$rounds node -e '
const fs = require("fs");
const { WORK, ROUNDS } = process.env;
const read = (f) => JSON.parse(fs.readFileSync(`${WORK}/${f}`, "utf8"));
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const us = (x) => (x == null ? "n/a" : x.toFixed(0));
const rows = [];
console.log("round  BullMQ jobs/s  (worker alone)  Redis µs/job   callq cycles/s  Redis µs/cycle   callq/BullMQ");
for (let r = 1; r <= Number(ROUNDS); r++) {
  const b = read(`bullmq.${r}.json`), c = read(`callq.${r}.json`);
  const row = { b: b.jobs_per_s, bw: b.worker_jobs_per_s, bcpu: b.redis_cpu_us_per_job,
                c: c.claims_per_s, ccpu: c.redis_cpu_us_per_cycle, ratio: c.claims_per_s / b.jobs_per_s };
  rows.push(row);
  console.log(`${String(r).padStart(5)}  ${row.b.toFixed(0).padStart(13)}  ${row.bw.toFixed(0).padStart(14)}  ` +
    `${us(row.bcpu).padStart(12)}   ${row.c.toFixed(0).padStart(14)}  ${us(row.ccpu).padStart(14)}   ${row.ratio.toFixed(2).padStart(12)}`);
}
const med = (k) => (rows.every((x) => x[k] != null) ? median(rows.map((x) => x[k])) : null);
console.log(`median ${med("b").toFixed(0).padStart(13)}  ${med("bw").toFixed(0).padStart(14)}  ` +
  `${us(med("bcpu")).padStart(12)}   ${med("c").toFixed(0).padStart(14)}  ${us(med("ccpu")).padStart(14)}   ` +
  `${med("ratio").toFixed(2).padStart(12)}`);
'
