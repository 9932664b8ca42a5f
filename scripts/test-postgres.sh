#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL server on loopback for the test suite.
#   scripts/test-postgres.sh start   prints the admin URL on stdout
#   scripts/test-postgres.sh stop
#   scripts/test-postgres.sh down|up   stop it keeping its data, start it again
#                                      (the fault tests restart PostgreSQL)
# Uses Debian's postgresql package (installed by scripts/deps.sh). As root the
# server runs as the `postgres` system user, since PostgreSQL refuses root.
# MONGARS_PG_PORT and MONGARS_PG_DIR choose another server; MONGARS_PG_LISTEN
# (an address of this machine) makes it listen there too, trusting the hosts
# of that network, and its URL names that address (the fault tests' LAN).
set -euo pipefail

PORT="${MONGARS_PG_PORT:-55432}"
BASE="${MONGARS_PG_DIR:-${TMPDIR:-/tmp}/mongars-test-pg-$PORT}"
DATA="$BASE/data"
LISTEN="${MONGARS_PG_LISTEN:-}"
HOST="${LISTEN:-127.0.0.1}"

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "PostgreSQL server binaries not found: apt-get install postgresql" >&2; exit 1; }
  echo "$d"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Over TLS, verified: the server's certificate is signed by a throw-away CA
# made here, for 127.0.0.1 (and the extra address).
url() { echo "postgres://postgres@$HOST:$PORT/postgres?sslmode=verify-full&sslrootcert=$BASE/tls/ca.crt"; }

certificates() {
  local dir="$BASE/tls"
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=monGARS test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost%s\n' "${LISTEN:+,IP:$LISTEN}" >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.crt" 2>/dev/null
  chmod 600 "$dir/server.key"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
  chmod 644 "$dir/ca.crt"
}

start() {
  local bin; bin=$(bindir)
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    url; return 0
  fi
  rm -rf "$BASE"
  mkdir -p "$BASE"
  [ "$(id -u)" = 0 ] && chown postgres: "$BASE"
  as_owner "$bin/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-sync >"$BASE/initdb.log" 2>&1 \
    || { cat "$BASE/initdb.log" >&2; exit 1; }
  if [ -n "$LISTEN" ]; then
    echo "host all all samenet trust" >>"$DATA/pg_hba.conf"
  fi
  certificates
  launch
  url
}

launch() {
  local bin; bin=$(bindir)
  # Throw-away data: durability off for speed.
  as_owner "$bin/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1${LISTEN:+,$LISTEN} -p $PORT -k $BASE -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c ssl=on -c ssl_cert_file=$BASE/tls/server.crt -c ssl_key_file=$BASE/tls/server.key" \
    >/dev/null || { cat "$BASE/server.log" >&2; exit 1; }
}

down() {
  local bin; bin=$(bindir)
  as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
}

stop() {
  local bin; bin=$(bindir)
  if [ -d "$DATA" ]; then
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$BASE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  down) down ;;
  up) launch ;;
  *) echo "usage: $0 start|stop|down|up" >&2; exit 2 ;;
esac
