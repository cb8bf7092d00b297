#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster if it is down and wait until it accepts connections.
# Tests marked `postgres` need it; on a laptop without it run `make test-fast` instead.
set -u
host=127.0.0.1
port=5432
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
  exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "starting PostgreSQL..." >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
fi
for _ in $(seq 1 30); do
  pg_isready -q -h "$host" -p "$port" 2>/dev/null && exit 0
  sleep 1
done
echo "PostgreSQL is not reachable on $host:$port; postgres-marked tests will fail (deselect with -m 'not postgres')" >&2
exit 0
