#!/usr/bin/env bash
# Sets up and runs every check: formatting, lints, unit and integration tests
# (the integration tests replay ../shared/corpus and compare with tshark and
# Suricata's reference output; the live tests need root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ci=""
if [ -n "${CI:-}" ] && [ "${CI}" != false ] && [ "${CI}" != 0 ]; then ci=1; fi
# A one-shot CI build gains nothing from incremental caches but their disk.
[ -n "$ci" ] && export CARGO_INCREMENTAL=0
# Disk in use after each heavy step, so a full disk on CI shows where it went.
disk() { echo "test: disk after $1: target $(du -sh target 2>/dev/null | cut -f1), fuzz/target $(du -sh fuzz/target 2>/dev/null | cut -f1), free $(df -h --output=avail . | tail -1 | tr -d ' ')" >&2; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
disk "workspace tests"
# The DPDK source is a feature (off by default): linted, and tested on
# virtual devices (net_pcap, net_af_packet on a veth), for the crates it
# touches only (capture and engine rebuilt once with it: ~3 min).
cargo clippy -p capture -p engine --all-targets --features engine/dpdk -- -D warnings
cargo test -p capture --features dpdk --lib dpdk
cargo test -p engine --features dpdk --test dpdk
disk "dpdk tests"
# The Debian package: built (release build, reused from target/release),
# installed, checked (user, directories, unit, security score) and purged.
if [ "$(id -u)" -eq 0 ]; then
  scripts/package_test.sh
elif [ -n "$ci" ]; then
  echo "test: the package test needs root (dpkg -i), and CI runs as root" >&2
  exit 1
else
  echo "test: package test SKIPPED (needs root for dpkg -i)" >&2
fi
# The fuzz build (sanitizers, its own target dir under fuzz/) needs several GB
# more; on CI the debug test builds are not needed again, so they make room.
if [ -n "$ci" ]; then
  rm -rf target/debug
  disk "removing target/debug"
fi
# Every fuzz target built (cargo-fuzz, nightly) and run briefly on seeds cut
# from the corpus; a crash, leak or hang fails the run. Long campaigns:
# FUZZ_SECONDS=600 scripts/fuzz_smoke.sh
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" scripts/fuzz_smoke.sh
disk "fuzz smoke"
