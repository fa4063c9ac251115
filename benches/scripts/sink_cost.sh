#!/usr/bin/env bash
# What writing events costs the workers on W1, one worker:
#   none     no sink: records are built but not encoded,
#   devnull  every event encoded (native) and handed to a file sink on /dev/null,
#   file     the same into a real file,
#   file-ecs the same in the ECS schema (the largest lines),
#   eve      the same in the eve schema.
# 1. In process (benches' `throughput` harness: the capture is in memory,
#    the time is the replay's, up to the worker's end, so process start and
#    the sink's final flush are not in it). The variants are interleaved over
#    ROUNDS rounds of REPEAT runs each (the machine is shared and noisy) and
#    the median of the round medians is shown, for the wall time and for
#    the worker thread's own CPU time (/proc/thread-self/schedstat: what
#    other processes take from it on a shared machine is not in it).
# 2. The real binary end to end (`flowtap run --pcap W1 --workers 1`: with
#    one worker the reader thread runs the worker itself), with hyperfine
#    (Debian package `hyperfine`), medians of RUNS runs.
#
#   benches/scripts/sink_cost.sh [W1]      # ROUNDS=5 REPEAT=5 RUNS=15 OUT_DIR=/tmp
#
# Builds nothing: `cargo build --release -p engine -p benches` first
# ($CARGO_TARGET_DIR or target/). W1 defaults to /tmp/w1.pcap
# (python3 ../shared/bench/gen_bench_pcap.py -o /tmp/w1.pcap -n 200000 --seed 1).
set -euo pipefail
target=${CARGO_TARGET_DIR:-$(dirname "$0")/../../target}
flowtap=${FLOWTAP:-$target/release/flowtap}
harness=${HARNESS:-$target/release/throughput}
w1=${1:-/tmp/w1.pcap}
rounds=${ROUNDS:-5}
repeat=${REPEAT:-5}
runs=${RUNS:-15}
out=${OUT_DIR:-/tmp}/flowtap-sink-cost
for b in "$flowtap" "$harness"; do
  [ -x "$b" ] || { echo "sink_cost: no $b (cargo build --release -p engine -p benches)" >&2; exit 1; }
done
[ -f "$w1" ] || { echo "sink_cost: no $w1 (see the header)" >&2; exit 1; }
mkdir -p "$out"
: >"$out/harness.txt"
for _ in $(seq "$rounds"); do
  for v in none devnull file file-ecs eve; do
    case $v in
      none) a=() ;;
      devnull) a=(--sink /dev/null) ;;
      file) a=(--sink "$out/events.json") ;;
      file-ecs) a=(--sink "$out/events-ecs.json" --schema ecs) ;;
      eve) a=(--sink "$out/events-eve.json" --schema eve) ;;
    esac
    "$harness" --repeat "$repeat" "${a[@]}" "$w1" 2>/dev/null |
      sed -n "s/.*: median \([0-9.]*\) ms = .*/$v wall \1/p; s/.*worker CPU time median \([0-9.]*\) ms/$v cpu \1/p" >>"$out/harness.txt"
  done
done
echo "in process (throughput harness), $((rounds * repeat)) runs each:"
python3 - "$out/harness.txt" <<'PY'
import sys, statistics
runs = {}
for line in open(sys.argv[1]):
    v, kind, ms = line.split()
    runs.setdefault((v, kind), []).append(float(ms))
med = {k: statistics.median(x) for k, x in runs.items()}
print("| sink | wall ms | vs none | worker CPU ms | vs none |\n|---|---|---|---|---|")
for v in dict.fromkeys(k[0] for k in runs):
    w, c = med[(v, "wall")], med[(v, "cpu")]
    print(f"| {v} | {w:.1f} | {w / med[('none', 'wall')]:.3f} | {c:.1f} | {c / med[('none', 'cpu')]:.3f} |")
PY
command -v hyperfine >/dev/null || { echo "sink_cost: install hyperfine for the end-to-end part" >&2; exit 0; }
printf '[output]\ntypes = []\n' >"$out/none.toml"
run="$flowtap run --pcap $w1 --workers 1 --no-progress -q"
hyperfine -N --warmup 2 --runs "$runs" --export-json "$out/result.json" \
  -n none "$run --config $out/none.toml -o $out/none.json" \
  -n devnull "$run -o /dev/null" \
  -n file "$run -o $out/events.json" \
  -n file-ecs "$run -o file://$out/events-ecs.json?schema=ecs" >/dev/null 2>&1
echo "flowtap run end to end (hyperfine, $runs runs; none = [output] types = []):"
python3 - "$out/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r["none"]["median"]
print("| sink | median s | vs none |\n|---|---|---|")
for name in ["none", "devnull", "file", "file-ecs"]:
    m = r[name]["median"]
    print(f"| {name} | {m:.4f} | {m / base:.3f} |")
PY
