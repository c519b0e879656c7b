#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1:54329 for running the suite locally:
#   bash scripts/dev_postgres.sh && DATABASE_URL=postgres://postgres@127.0.0.1:54329/postgres npm test
set -euo pipefail
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
PGDATA=/tmp/eof-dev-pg
if [ ! -d "$PGDATA" ]; then
  mkdir -p "$PGDATA" && chown postgres "$PGDATA"
  su postgres -s /bin/sh -c "$PGBIN/initdb -D $PGDATA -U postgres --auth=trust -E UTF8 >/dev/null"
fi
su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $PGDATA -o '-p 54329 -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200' -l $PGDATA/log -w start" >/dev/null || true
echo "postgres://postgres@127.0.0.1:54329/postgres"
