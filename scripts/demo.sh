#!/usr/bin/env bash
# Sets up, builds and runs flowtap on the bundled sample capture.
# Usage: scripts/demo.sh [capture.pcap] (default: deploy/samples/mixed-sample.pcap)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --bin flowtap
pcap="${1:-deploy/samples/mixed-sample.pcap}"
mkdir -p out
./target/release/flowtap run --pcap "$pcap" --output out/flows.json
echo "--- first records of out/flows.json:"
head -n 3 out/flows.json
echo "--- $(grep -c '"event_type":"flow"' out/flows.json) flow records in out/flows.json"
