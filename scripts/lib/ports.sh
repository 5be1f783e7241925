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
