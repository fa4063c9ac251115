#!/usr/bin/env python3
"""The database workload benchmark: a generated mixed PostgreSQL / MySQL /
pipelined Redis capture (gen_db_pcap.py, 200,000 transactions, seed 1)
through the full pipeline on one worker.

    python3 benches/scripts/db_bench.py [--bin target/release/flowtap] [--runs 3]
        [--transactions 200000] [--skip-callgrind]

Prints wall time (median of --runs), transactions/s, packets/s and Gbit/s,
and instructions per packet (callgrind, whole process, the first 50,000
packets minus the first packet, as instructions.py measures W1).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def callgrind(binary, pcap, out):
    sh(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "run", "--pcap", pcap,
        "--workers", "1", "--no-progress", "-q", "-o", "/dev/null"])
    for line in open(out):
        if line.startswith("summary:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "flowtap"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--transactions", type=int, default=200000)
    ap.add_argument("--skip-callgrind", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} missing: cargo build --release -p engine")
    pcap = f"/tmp/db-{a.transactions}.pcap"
    summary_path = pcap + ".json"
    if not os.path.exists(summary_path):
        sh([sys.executable, os.path.join(ROOT, "benches", "scripts", "gen_db_pcap.py"), "-o", pcap,
            "-n", str(a.transactions), "--seed", "1", "--summary", summary_path])
    s = json.load(open(summary_path))
    txns = s["pgsql"] + s["mysql"] + s["redis"]
    print(f"database workload: {txns} transactions (pgsql {s['pgsql']}, mysql {s['mysql']}, "
          f"redis {s['redis']}), {s['sessions']} sessions, {s['packets']} packets, {s['bytes']} bytes")
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        sh([a.bin, "run", "--pcap", pcap, "--workers", "1", "--no-progress", "-q", "-o", "/dev/null"])
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(f"  1 worker, full pipeline, /dev/null sink: {t:.3f} s  {txns / t / 1e3:.0f}k transactions/s  "
          f"{s['packets'] / t / 1e6:.2f} Mpps  {s['bytes'] * 8 / t / 1e9:.2f} Gbit/s  "
          f"(runs: {', '.join(f'{x:.3f}' for x in times)})")
    if not a.skip_callgrind:
        with tempfile.TemporaryDirectory() as tmp:
            first50k, first1 = os.path.join(tmp, "50k.pcap"), os.path.join(tmp, "1.pcap")
            sh(["editcap", "-r", pcap, first50k, "1-50000"])
            sh(["editcap", "-r", pcap, first1, "1"])
            t50 = callgrind(a.bin, first50k, os.path.join(tmp, "cg50k.out"))
            t1 = callgrind(a.bin, first1, os.path.join(tmp, "cg1.out"))
            print(f"  instructions per packet (first 50k packets, callgrind): {(t50 - t1) / 49999:.0f}")


if __name__ == "__main__":
    main()
