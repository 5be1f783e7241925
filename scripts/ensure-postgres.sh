#!/usr/bin/env bash
# Make sure a PostgreSQL answers on 127.0.0.1:5432 for tests/archive.rs (each test makes and
# drops a database of its own as user postgres; PGHOST and PGPORT override where this script
# looks, and CALLQ_TEST_PG where the tests connect). Starts the machine's
# cluster when it is installed but stopped; installs Debian's postgresql package (trust auth
# on loopback for the tests) where it is missing (needs root or sudo).
set -euo pipefail
host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}
ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$host" -p "$port"; }
ready && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no PostgreSQL on $host:$port and no apt-get: start one (trust auth for user postgres)" >&2
    exit 1
  fi
  echo "PostgreSQL is missing; installing Debian's postgresql package" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  version=$(ls /etc/postgresql | sort -n | tail -1)
  # the tests connect as postgres over loopback without a password
  hba=/etc/postgresql/$version/main/pg_hba.conf
  $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
echo "starting PostgreSQL $version" >&2
$SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 50); do ready && exit 0; sleep 0.2; done
echo "PostgreSQL did not come up on $host:$port" >&2
exit 1
