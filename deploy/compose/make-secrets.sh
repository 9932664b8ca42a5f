#!/usr/bin/env bash
# Make the secret files compose.yaml reads, with random values, once.
#   deploy/compose/make-secrets.sh [DIR]     default DIR: deploy/compose/secrets
# The folder is private (0700); the files are readable inside it, since the
# containers read them as their own users.
set -euo pipefail
dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "$dir"
chmod 0700 "$dir"
random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
put() {
  [ -s "$dir/$1" ] && return 0
  printf '%s' "$2" > "$dir/$1"
  chmod 0644 "$dir/$1"
}
put postgres_password "$(random)"
put redis_password "$(random)"
put jwt_secret "$(random)"
put admin_password "$(random | cut -c1-24)"
put database_url "postgres://mongars:$(cat "$dir/postgres_password")@postgres:5432/mongars"
put redis_url "redis://:$(cat "$dir/redis_password")@redis:6379"
echo "secrets in $dir (the admin's password: $dir/admin_password)"
