#!/bin/sh
# First start: create the cluster, the user and the database; then run the
# server in the foreground on every interface, passwords required.
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
password="${POSTGRES_PASSWORD:-}"
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then password=$(cat "$POSTGRES_PASSWORD_FILE"); fi
[ -n "$password" ] || { echo "POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required" >&2; exit 1; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$password" > "$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != "postgres" ]; then
    postgres -D "$PGDATA" -c listen_addresses='' >/dev/null 2>&1 &
    pid=$!
    until pg_isready -q -h /var/run/postgresql; do sleep 0.2; done
    PGPASSWORD="$password" createdb -h /var/run/postgresql -U "$user" "$db"
    kill -INT "$pid"; wait "$pid" || true
  fi
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
