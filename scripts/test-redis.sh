#!/usr/bin/env bash
# Start or stop a throw-away Redis server on loopback for the test suite.
#   scripts/test-redis.sh start   prints its URL on stdout
#   scripts/test-redis.sh stop
# Uses Debian's redis-server package (installed by scripts/deps.sh test).
# MONGARS_REDIS_PORT and MONGARS_REDIS_DIR choose another server;
# MONGARS_REDIS_BIND (an address of this machine) makes it listen there too,
# and its URL names that address (the fault tests' LAN).
set -euo pipefail

PORT="${MONGARS_REDIS_PORT:-56379}"
BASE="${MONGARS_REDIS_DIR:-${TMPDIR:-/tmp}/mongars-test-redis-$PORT}"
BIND="${MONGARS_REDIS_BIND:-}"

url() { echo "redis://${BIND:-127.0.0.1}:$PORT"; }

start() {
  command -v redis-server >/dev/null || { echo "redis-server not found: apt-get install redis-server" >&2; exit 1; }
  if redis-cli -p "$PORT" ping >/dev/null 2>&1; then
    url; return 0
  fi
  rm -rf "$BASE"
  mkdir -p "$BASE"
  # Throw-away data: no persistence.
  # Without a password Redis answers other hosts only with protected mode
  # off; the extra address is a test network's, reachable from its hosts.
  local extra=()
  [ -n "$BIND" ] && extra=(--protected-mode no)
  redis-server --bind 127.0.0.1 $BIND "${extra[@]}" --port "$PORT" --daemonize yes --dir "$BASE" \
    --pidfile "$BASE/redis.pid" --logfile "$BASE/redis.log" \
    --save "" --appendonly no --maxclients 10000 >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && { url; return 0; }
    sleep 0.1
  done
  cat "$BASE/redis.log" >&2
  exit 1
}

stop() {
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$BASE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
