#!/bin/bash
# Output unchanged by a performance change: W1 through a flowtap binary in
# all six schemas, one worker, stats lines removed, compared byte for byte
# with the same from a reference binary (the tree before the change).
#
#   benches/scripts/w1_compare.sh REF_BIN NEW_BIN [W1]
#
# W1: ../shared/bench/gen_bench_pcap.py -o /tmp/w1.pcap -n 200000 --seed 1
set -euo pipefail
REF=$1; NEW=$2; W1=${3:-/tmp/w1.pcap}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rc=0
for s in native ecs eve gelf nanocorp nutanix; do
  for side in ref new; do
    bin=$REF; [ $side = new ] && bin=$NEW
    "$bin" run --pcap "$W1" --workers 1 --no-progress -q -o "file://$TMP/$side-$s.json?schema=$s" >/dev/null
    grep -v '"stats"' "$TMP/$side-$s.json" > "$TMP/$side-$s.events" || true
  done
  if cmp -s "$TMP/ref-$s.events" "$TMP/new-$s.events"; then
    echo "$s: identical ($(wc -l < "$TMP/new-$s.events") lines)"
  else
    echo "$s: DIFFERS"; diff "$TMP/ref-$s.events" "$TMP/new-$s.events" | head -5; rc=1
  fi
done
exit $rc
