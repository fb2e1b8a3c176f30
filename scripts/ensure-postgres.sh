#!/usr/bin/env bash
# Starts the local PostgreSQL cluster when it is not accepting connections.
set -euo pipefail
host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}
if pg_isready -h "$host" -p "$port" -q; then
  exit 0
fi
echo "PostgreSQL is down on $host:$port: starting it"
version=$(ls /etc/postgresql | sort -V | tail -n 1)
pg_ctlcluster --skip-systemctl-redirect "$version" main start
for _ in $(seq 1 30); do
  pg_isready -h "$host" -p "$port" -q && exit 0
  sleep 1
done
echo "PostgreSQL did not come up on $host:$port" >&2
exit 1
