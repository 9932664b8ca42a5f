#!/usr/bin/env bash
# Every fuzz target (fuzz/fuzz_targets, feeding crates/mongars-fuzz) under
# libFuzzer for the given seconds each (default 60). New inputs go to
# fuzz/work/<target> (not in git); those that reach code the saved corpus
# does not are merged into fuzz/corpus/<target> (commit them: the test suite
# runs every saved input once). An input that breaks a target stops its run
# and is saved in fuzz/artifacts/<target>/: fix the parser, then copy the
# input to fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

scripts/deps.sh run
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# cargo fuzz passes the sanitizer and coverage options that the stable
# compiler keeps behind this switch.
export RUSTC_BOOTSTRAP=1
cd fuzz
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^mongars-fuzzers$')
cargo fuzz build
status=0
for t in $targets; do
  mkdir -p "work/$t"
  echo "== $t for ${seconds} s"
  if ! cargo fuzz run "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1; then
    echo "!! $t broke: the input is in fuzz/artifacts/$t/" >&2
    status=1
  fi
  "target/$(rustc -vV | sed -n 's/^host: //p')/release/$t" -merge=1 -max_len=4096 \
    "corpus/$t" "work/$t" >/dev/null 2>&1 || true
done
exit $status
