#!/usr/bin/env bash
# Sets up and runs every check: formatting, lints, unit and integration tests
# (the integration tests replay ../shared/corpus and compare with tshark and
# Suricata's reference output; the live tests need root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
