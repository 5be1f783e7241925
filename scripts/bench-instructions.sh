#!/usr/bin/env bash
# What each routing script costs Redis in instructions, a figure no machine's load moves:
# `callq bench --core` against a private redis-server run under valgrind's callgrind, which
# counts every instruction Redis runs (callq reads the count around each batch of one
# script, as it reads INFO commandstats, with `callgrind_control -d`). Valgrind slows Redis
# some fifty times, so the µs columns mean nothing here; compare two builds by the
# "k instructions" column (thousands of instructions per call), which repeats to about 1%.
# Usage: scripts/bench-instructions.sh [--core-samples 300] [--core-agents 200]
#          [any other `callq bench --core` option]
# Needs valgrind (Debian: apt-get install valgrind). Exits 75 when it is unavailable
# (scripts/bench-smoke.sh then skips it). BENCH_PROFILE=debug: the debug build. CALLQ=path:
# measure that callq binary instead of building one (to compare two builds, copy each aside).
set -euo pipefail
cd "$(dirname "$0")/.."

unavailable() {
  echo "bench-instructions: valgrind unavailable: $*" >&2
  exit 75
}
command -v valgrind >/dev/null 2>&1 || unavailable "valgrind is not installed"
command -v callgrind_control >/dev/null 2>&1 || unavailable "callgrind_control is not installed"

scripts/ensure-redis.sh
profile=${BENCH_PROFILE:-release}
if [[ -n ${CALLQ:-} ]]; then
  callq=$CALLQ profile="given: $CALLQ"
elif [[ "$profile" == debug ]]; then
  cargo build --locked --quiet --bin callq
  callq=target/debug/callq
else
  cargo build --release --locked --quiet --bin callq
  callq=target/release/callq
fi

# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
private_work
start_redis "$work" valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out"

echo "redis-server $(redis-server --version | grep -o 'v=[^ ]*') under $(valgrind --version)" \
  "on :$port, callq ($profile)"
# defaults sized for valgrind (a short throughput phase, a few hundred calls per script),
# each unless given
args=(--core-redis-url "redis://127.0.0.1:$port/" --core-callgrind "$work/callgrind.out"
  --core-no-profile)
for default in "--core-seconds 1" "--core-samples 300"; do
  flag=${default%% *}
  if [[ " $* " != *" $flag "* && " $*" != *" $flag="* ]]; then
    read -ra pair <<<"$default"
    args+=("${pair[@]}")
  fi
done
"$callq" bench --core "${args[@]}" "$@"
