#!/usr/bin/env bash
# `callq bench --chaos` over several seeds (release build, a private redis-server each run):
# every fault the Twilio simulator can produce, with callers giving up, agents not answering
# and devices dropping on top. Prints one line per seed and the totals; the promise is lost 0,
# double bookings 0, nothing held after the drain.
#
#   scripts/bench-chaos.sh [seeds (default 5)] [more callq bench flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
# BENCH_PROFILE=debug: the debug build (scripts/bench-smoke.sh, which only checks it runs)
profile=${BENCH_PROFILE:-release}
if [[ "$profile" == debug ]]; then cargo build --locked --quiet; else cargo build --release --locked --quiet; fi
seeds=${1:-5}
shift || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# 30 s of arrivals per seed unless the arguments give a --duration
duration=(--duration 30)
for a in "$@"; do [[ "$a" == --duration* ]] && duration=(); done
for seed in $(seq 1 "$seeds"); do
  "target/$profile/callq" bench --chaos --seed "$seed" "${duration[@]}" --rate 0.1 \
    --patience 240 --no-answer 0.15 --drops 900 --json "$@" > "$out/$seed.json" 2>/dev/null
done
python3 - "$out" "$seeds" <<'PY'
import json, sys
out, seeds = sys.argv[1], int(sys.argv[2])
keys = ["offered", "answered", "abandoned", "callbacks", "lost", "double_bookings",
        "agents_held_at_end", "open_at_end"]
tot = dict.fromkeys(keys, 0)
inj_tot = {}
print("seed  " + "  ".join(f"{k:>8}" for k in ["offered", "answered", "abandon", "callback", "lost", "double", "held", "open"]) + "  injected (webhooks drop/dup/delay, REST 429/500/404/400, Redis pauses, callback no-answer/busy)")
for s in range(1, seeds + 1):
    d = json.load(open(f"{out}/{s}.json"))
    i = d["injected"]
    for k in keys:
        tot[k] += d.get(k, 0)
    for k, v in i.items():
        inj_tot[k] = inj_tot.get(k, 0) + v
    inj_tot["redis_pauses"] = inj_tot.get("redis_pauses", 0) + d["redis_pauses"]
    print(f"{s:>4}  " + "  ".join(f"{d.get(k, 0):>8}" for k in keys) +
          f"  {i['webhooks_dropped']}/{i['webhooks_duplicated']}/{i['webhooks_delayed']},"
          f" {i['rest_429']}/{i['rest_500']}/{i['rest_404']}/{i['rest_400']},"
          f" {d['redis_pauses']}, {i['customers_no_answer']}/{i['customers_busy']}")
print(" all  " + "  ".join(f"{tot[k]:>8}" for k in keys))
PY
