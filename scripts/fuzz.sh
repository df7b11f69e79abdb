#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer) one after another, each for the given
# number of seconds (default 600) in one process (the machine has two cores). Stops at the
# first crash: the input is in fuzz/artifacts/<target>/; turn it into a regression test (see
# README, "Fuzzing").
#
#   scripts/fuzz.sh              # every target, 10 minutes each
#   scripts/fuzz.sh 60           # every target, 1 minute each
#   scripts/fuzz.sh 600 xds_sotw # one target
#
# Needs nightly Rust and cargo-fuzz (`cargo install cargo-fuzz`). CI does not run this; it runs
# the regression tests (plain `cargo test`). New corpus entries land in fuzz/corpus/<target>/;
# shrink before committing: `cargo +nightly fuzz cmin <target>`.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds=${1:-600}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -O
for target in "${targets[@]}"; do
  printf '== %s: %s s\n' "$target" "$seconds" >&2
  mkdir -p "corpus/$target"
  # One process, one thread (libFuzzer's default; -jobs/-workers would fork and log to files).
  cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1
done
