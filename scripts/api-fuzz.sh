#!/usr/bin/env bash
# Property-based test of the agent and admin API against its own OpenAPI document: schemathesis
# reads `GET /v1/openapi.json` from a real `callq serve` (debug build, on a private
# redis-server, both on free loopback ports) and sends every operation valid and invalid
# requests, with the admin token on admin routes and a live agent token on agent routes (whose
# `{id}` is pinned to the agent that token belongs to). Checks: no 5xx (`not_a_server_error`)
# and no status the document does not list (`status_code_conformance`).
#
# schemathesis (pinned below) is installed with pip into a venv under
# ${XDG_CACHE_HOME:-~/.cache}/callq/; where Python, venv or PyPI is missing, the script prints
# "skipped: schemathesis not installable" and exits 0.
#
#   scripts/api-fuzz.sh                 # CALLQ_FUZZ_EXAMPLES (default 40) cases per operation
#   CALLQ_FUZZ_SEED=7 scripts/api-fuzz.sh
#   CALLQ_FUZZ_REPORT=/tmp/fuzz scripts/api-fuzz.sh   # also writes every exchange as HAR there
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
examples=${CALLQ_FUZZ_EXAMPLES:-40}
seed=${CALLQ_FUZZ_SEED:-1}
venv=${CALLQ_FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/callq/schemathesis-$SCHEMATHESIS_VERSION}

skip() {
  echo "api-fuzz: skipped: schemathesis not installable ($1)"
  exit 0
}

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  command -v python3 >/dev/null 2>&1 || skip "no python3"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")" 2>/dev/null || skip "cannot create $(dirname "$venv")"
  python3 -m venv "$venv" >/dev/null 2>&1 || { rm -rf "$venv"; skip "python3 -m venv failed"; }
  echo "api-fuzz: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check --timeout 30 --retries 2 \
    "schemathesis==$SCHEMATHESIS_VERSION" >"$venv.log" 2>&1; then
    tail -n 3 "$venv.log" >&2 || true
    rm -rf "$venv"
    skip "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
  fi
fi
schemathesis="$venv/bin/schemathesis"

scripts/ensure-redis.sh
cargo build --locked --bin callq

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
  for _ in $(seq 1 300); do "$@" && return 0; sleep 0.1; done
  echo "api-fuzz: $what did not come up" >&2
  return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for redis-server port_in_use "$redis_port"

# Each secret at least its minimum length (src/server.rs, check_secrets).
serve_port=$(free_port)
base="http://127.0.0.1:$serve_port"
admin_token="fuzz-admin-$RANDOM$RANDOM-0123456789abcdef"
REDIS_URL="redis://127.0.0.1:$redis_port/" \
CALLQ_LISTEN="127.0.0.1:$serve_port" \
CALLQ_PUBLIC_URL="$base" \
TWILIO_AUTH_TOKEN="fuzz-twilio-auth-token-0123456789" \
TWILIO_API_KEY="SK00000000000000000000000000000000" \
TWILIO_API_SECRET="fuzz-api-secret-0123456789abcdef" \
CALLQ_ADMIN_TOKEN="$admin_token" \
CALLQ_AGENT_SECRET="fuzz-agent-secret-$RANDOM$RANDOM-0123456789abcdef" \
RUST_LOG="${RUST_LOG:-warn}" \
  target/debug/callq serve >"$work/serve.log" 2>&1 &
pids+=($!)
wait_for "callq serve" curl -fs -o /dev/null "$base/readyz"

# The agent whose token the agent routes carry; agent routes' {id} is pinned to it.
agent=fuzz-agent
curl -fsS -o /dev/null -X POST "$base/v1/admin/agents" \
  -H "authorization: Bearer $admin_token" -H 'content-type: application/json' \
  -d "{\"id\":\"$agent\",\"queues\":[{\"queue\":\"sales\",\"tier\":1}]}"
agent_token=$(curl -fsS -X POST "$base/v1/admin/agents/$agent/token" \
  -H "authorization: Bearer $admin_token" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$agent_token" ] || { echo "api-fuzz: no agent token" >&2; exit 1; }

cat >"$work/schemathesis.toml" <<EOF
[auth.openapi.admin_token]
bearer = "\${CALLQ_FUZZ_ADMIN_TOKEN}"

[auth.openapi.agent_token]
bearer = "\${CALLQ_FUZZ_AGENT_TOKEN}"

[[operations]]
include-tag = "agent"
parameters = { "path.id" = "$agent" }
EOF

report=()
if [ -n "${CALLQ_FUZZ_REPORT:-}" ]; then
  mkdir -p "$CALLQ_FUZZ_REPORT"
  report=(--report har --report-dir "$(cd "$CALLQ_FUZZ_REPORT" && pwd)")
fi
# Two passes: the agent routes first, then the admin routes and the document itself, since
# fuzzing the admin routes revokes and deletes the agents it finds, the one above among them.
fuzz() { # pass name, filter...
  local pass=$1
  shift
  echo "api-fuzz: pass '$pass'"
  (
    cd "$work"
    CALLQ_FUZZ_ADMIN_TOKEN="$admin_token" CALLQ_FUZZ_AGENT_TOKEN="$agent_token" \
      "$schemathesis" --config-file "$work/schemathesis.toml" --no-color \
      run "$base/v1/openapi.json" "$@" \
      --checks not_a_server_error,status_code_conformance \
      --max-examples "$examples" --seed "$seed" --workers 1 --request-timeout 30 \
      --suppress-health-check too_slow --generation-database none "${report[@]}"
  )
}

version=$("$schemathesis" --version | grep -o '[0-9][0-9.]*$')
echo "api-fuzz: schemathesis $version against $base (seed $seed, $examples cases per operation)"
start=$(date +%s)
status=0
fuzz agent --include-tag agent || status=$?
fuzz admin --exclude-tag agent || status=$?
verdict=passed
[ "$status" -eq 0 ] || verdict=FAILED
echo "api-fuzz: $verdict in $(($(date +%s) - start)) s (schemathesis $version, seed $seed)"
if [ "$status" -ne 0 ]; then
  echo "--- callq serve log (last 40 lines) ---" >&2
  tail -n 40 "$work/serve.log" >&2 || true
fi
exit "$status"
