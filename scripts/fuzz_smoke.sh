#!/usr/bin/env bash
# Builds every fuzz target (cargo-fuzz, nightly) and runs each for
# FUZZ_SECONDS seconds (default 15) from a seed corpus cut out of
# ../shared/corpus (fuzz/seeds.py; targets without a seed list start empty). A crash, a leak or a timeout fails it.
# scripts/test.sh runs it; long campaigns are `cargo +nightly fuzz run T`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-15}
# cargo-fuzz from crates.io, run with the nightly toolchain the machine
# image carries (libFuzzer needs nightly's sanitizer flags).
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked >/dev/null
fi
rustup toolchain list | grep -q '^nightly' || {
  echo "fuzz: the nightly toolchain is missing (cargo-fuzz needs it)" >&2
  exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 fuzz/seeds.py "$work/seeds" >&2
cargo +nightly fuzz build
targets=$(cargo +nightly fuzz list)
for t in $targets; do
  mkdir -p "$work/corpus/$t" "$work/seeds/$t"
  echo "fuzz: $t for ${secs}s" >&2
  set +e
  cargo +nightly fuzz run "$t" "$work/corpus/$t" "$work/seeds/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$work/$t.log" 2>&1
  status=$?
  set -e
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$work/$t.log" | sed "s/^/fuzz: $t: /" >&2 || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$work/$t.log" >&2
    echo "fuzz: $t failed (status $status)" >&2
    exit 1
  fi
done
