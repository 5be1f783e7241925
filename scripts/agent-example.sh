#!/usr/bin/env bash
# What an agent desktop does against `callq serve`, in curl (docs/agents.md walks through it):
# provisioning creates the agent and issues its token (admin token), then the desktop checks
# its token, asks for available (answered 200, yet offered nothing: no heartbeat yet), sends
# its first heartbeat with the Voice SDK device registered (now offerable), pauses for lunch
# and trades its token for a fresh one, with which it beats again. The agent is left paused
# and beating until its heartbeat lapses.
#
#   CALLQ_URL=http://127.0.0.1:8080 CALLQ_ADMIN_TOKEN=... scripts/agent-example.sh [agent-id]
#
# CALLQ_QUEUE (default sales) is the queue the agent serves; CALLQ_IDENTITY (default the id)
# the identity its Twilio Voice SDK Device registers with. Uses jq when it is installed, plain
# sed otherwise (CALLQ_EXAMPLE_NO_JQ=1 forces that). Exits non-zero at the first answer that
# is not the one expected. The agent's token is written to stdout as `token=...` at the end.
set -euo pipefail

url=${CALLQ_URL:-http://127.0.0.1:8080}
url=${url%/}
admin=${CALLQ_ADMIN_TOKEN:?set CALLQ_ADMIN_TOKEN to the server\'s admin token}
agent=${1:-alice}
identity=${CALLQ_IDENTITY:-$agent}
queue=${CALLQ_QUEUE:-sales}

use_jq=
if [ -z "${CALLQ_EXAMPLE_NO_JQ:-}" ] && command -v jq >/dev/null 2>&1; then use_jq=1; fi

body=$(mktemp)
trap 'rm -f "$body"' EXIT
status=

# call METHOD PATH TOKEN [JSON]: the answer's status in $status, its body in $body.
call() {
  local method=$1 path=$2 token=$3 json=${4:-}
  local args=(-sS -o "$body" -w '%{http_code}' -X "$method" "$url$path"
    -H "authorization: Bearer $token")
  if [ -n "$json" ]; then args+=(-H 'content-type: application/json' --data "$json"); fi
  status=$(curl "${args[@]}")
}

# field NAME: a top-level string, number or boolean of the JSON in $body.
field() {
  if [ -n "$use_jq" ]; then
    jq -r --arg f "$1" 'if has($f) then .[$f] | tostring else empty end' "$body"
  else
    tr -d '\n' <"$body" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p"
  fi
}

# error code of the JSON error in $body.
error_code() {
  if [ -n "$use_jq" ]; then
    jq -r '.error.code // empty' "$body"
  else
    sed -n 's/.*"code":"\([^"]*\)".*/\1/p' "$body"
  fi
}

# expect STATUS WHAT: stop unless the last answer had that status.
expect() {
  if [ "$status" != "$1" ]; then
    echo "FAILED: $2: expected $1, got $status: $(cat "$body")" >&2
    exit 1
  fi
}

echo "server $url, agent $agent (identity $identity, queue $queue)$([ -n "$use_jq" ] && echo ", with jq")"

# 1. Provisioning (admin token): create the agent. It starts offline.
call POST /v1/admin/agents "$admin" \
  "{\"id\":\"$agent\",\"identity\":\"$identity\",\"queues\":[{\"queue\":\"$queue\",\"tier\":1}]}"
if [ "$status" = 409 ] && [ "$(error_code)" = agent_exists ]; then
  echo "1. agent $agent exists already; keeping it"
else
  expect 201 "create the agent"
  echo "1. created $agent: status $(field status), identity $(field identity)"
fi

# 2. Provisioning issues the desktop its token (12 hours unless ttl_s says otherwise).
call POST "/v1/admin/agents/$agent/token" "$admin" '{"ttl_s": 3600}'
expect 200 "issue a token"
token=$(field token)
echo "2. token issued, expires at $(field expires_at) (Unix seconds)"

# 3. The desktop checks its token: the agent as routing sees it.
call GET "/v1/agents/$agent" "$token"
expect 200 "whoami"
echo "3. whoami: status $(field status), online $(field online)"

# 4. Available before any heartbeat: answered 200, but no call is offered until a heartbeat
#    says the Voice SDK device is registered.
call PUT "/v1/agents/$agent/status" "$token" '{"status":"available"}'
expect 200 "go available"
call GET "/v1/agents/$agent" "$token"
expect 200 "whoami"
echo "4. available: status $(field status), online $(field online), device_registered $(field device_registered)"

# 5. The first heartbeat, once the Device has registered: now the agent can be offered calls.
#    Repeat every CALLQ_HEARTBEAT_TTL / 3 (ttl_ms / 3) for as long as the desktop runs.
call POST "/v1/agents/$agent/heartbeat" "$token" '{"device_registered":true}'
expect 200 "heartbeat"
ttl_ms=$(field ttl_ms)
echo "5. heartbeat: status $(field status), alive for $ttl_ms ms; beat again within $((ttl_ms / 3)) ms"

# 6. Lunch: paused with a reason. (On a call this answers 409 deferred_until_call_ends and
#    takes effect when the call ends.)
call PUT "/v1/agents/$agent/status" "$token" '{"status":"paused","reason":"lunch"}'
expect 200 "pause"
echo "6. paused: status $(field status)"

# 7. Trade the live token for a fresh one before it expires (no admin token needed).
call POST "/v1/agents/$agent/token" "$token" '{"ttl_s": 43200}'
expect 200 "refresh the token"
token=$(field token)
echo "7. token refreshed, expires at $(field expires_at)"

# 8. The next heartbeat carries the new token; the chosen status is kept.
call POST "/v1/agents/$agent/heartbeat" "$token" '{"device_registered":true}'
expect 200 "heartbeat with the new token"
echo "8. heartbeat: status $(field status)"
call GET "/v1/agents/$agent" "$token"
expect 200 "whoami"
echo "done: $agent is $(field status) ($(field reason)), online $(field online)"
echo "token=$token"
