# Sourced by the scripts that start their own servers: a free local TCP port, and whether a
# port answers. (Bash's /dev/tcp; no extra tools.)
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    port_in_use "$p" || { echo "$p"; return; }
  done
}

# A benchmark's scratch: `private_work` makes a temporary directory `work` and, when the script
# exits, stops the private redis-server (below) and removes the directory.
private_work() {
  work=$(mktemp -d)
  trap 'stop_redis; rm -rf "$work"' EXIT
}

# A private redis-server for a benchmark: `start_redis WORK [LAUNCHER...]` starts one on a
# free port with nothing kept on disk, its files and log in WORK, run through LAUNCHER when
# given (valgrind, say), and waits up to a minute for it to answer; sets `redis_pid` and
# `port`. `stop_redis` stops it (from the script's EXIT trap, as `private_work` sets; harmless
# when none started).
redis_pid=
start_redis() {
  local work=$1
  shift
  port=$(free_port)
  "$@" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 600); do port_in_use "$port" && return; sleep 0.1; done
  echo "redis-server did not come up${*:+ under $1}" >&2
  cat "$work/redis.log" >&2
  exit 1
}
stop_redis() {
  if [[ -n $redis_pid ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
}
