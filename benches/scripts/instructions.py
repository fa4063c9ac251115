#!/usr/bin/env python3
"""Instructions per packet, whole process and per stage, on W1's first 50k
packets (callgrind: stable on a shared VM where wall time is not), for the
flow-only path and the full pipeline; then wall time, packets/s and Gbit/s
on W1-1M (median of several runs, one and two workers), with a control:
two one-worker runs side by side, which say how much of two cores this VM
gave at the time (2 x one run / the pair; 2.0 when both are idle).

    python3 benches/scripts/instructions.py [--bin target/release/flowtap]
        [--runs 9] [--skip-wall] [--skip-callgrind]

Per packet = (run over the first 50,000 packets - run over the first
packet) / 49,999, so start-up and the final flush cancel out. Stages are
callgrind's inclusive costs of the functions that do each job, over the
same 49,999 packets; they overlap where one stage calls another (the
parsers run inside reassembly), which the table says.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

# stage -> substrings of callgrind function names whose inclusive cost it
# is (less those of the third list: the decode is inlined into the worker's
# per-packet function, so it is that function less the flow table's part)
STAGES = [
    ("read (capture file)", ["capture::file::CaptureFile::next_packet"]),
    ("decode (L2-L4) + dispatch", ["engine::worker::Worker::process "], ["engine::worker::Worker::account "]),
    ("flow table (+ all below)", ["engine::worker::Worker::account "]),
    ("reassembly (+ parsers)", ["engine::stream::Session::on_tcp ", "engine::stream::Session::on_udp "]),
    ("http parser", ["<dissect::app::http::HttpParser as dissect::app::AppParser>::parse "]),
    ("dns parser", ["<dissect::app::dns::DnsParser as dissect::app::AppParser>::parse "]),
    ("tls parser", ["<dissect::app::tls::TlsParser as dissect::app::AppParser>::parse "]),
    ("community id", ["dissect::flow::FlowKey::community_id"]),
    ("encode flow records", ["output::outputs::WorkerOutput::push_flow "]),
    ("encode app events", ["output::outputs::WorkerOutput::push_app "]),
    ("app metrics", ["engine::kpi::AppMetrics::app ", "engine::kpi::AppMetrics::flow "]),
]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def ensure_inputs(tmp, w1):
    # Another tool may have left a smaller capture under that name: W1 is
    # exactly 200,001 packets.
    if not os.path.exists(w1) or "200001" not in sh(["capinfos", "-c", "-M", w1]).stdout:
        sh([sys.executable, os.path.join(SHARED, "bench", "gen_bench_pcap.py"), "-o", w1, "-n", "200000", "--seed", "1"])
    w1m = "/tmp/w1-1m.pcap"
    first50k = os.path.join(tmp, "w1-50k.pcap")
    first1 = os.path.join(tmp, "w1-1.pcap")
    sh(["editcap", "-r", w1, first50k, "1-50000"])
    sh(["editcap", "-r", w1, first1, "1"])
    return w1, w1m, first50k, first1


def callgrind(binary, pcap, cfg, out):
    sh(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "run", "--pcap", pcap,
        "--workers", "1", "--no-progress", "-q", "--config", cfg, "-o", "/dev/null"])
    total = 0
    with open(out) as f:
        for line in f:
            if line.startswith("summary:"):
                total = int(line.split()[1])
    return total


def inclusive(out):
    """function name -> inclusive instructions."""
    text = sh(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out]).stdout
    costs = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
        if m:
            name = m.group(2)
            # "file:function [object]": keep the function
            fn = name.split(":", 1)[1] if ":" in name else name
            costs[fn] = max(costs.get(fn, 0), int(m.group(1).replace(",", "")))
    return costs


def stage_costs(costs):
    def cost(k):
        return max((v for fn, v in costs.items() if k in fn + " "), default=0)
    rows = []
    for stage, keys, *minus in STAGES:
        n = sum(cost(k) for k in keys) - sum(cost(k) for k in (minus[0] if minus else []))
        rows.append((stage, n))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "flowtap"))
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--skip-wall", action="store_true")
    ap.add_argument("--skip-callgrind", action="store_true")
    ap.add_argument("--w1", default="/tmp/w1.pcap", help="W1 (generated there when missing or not W1)")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} missing: cargo build --release -p engine")
    with tempfile.TemporaryDirectory() as tmp:
        w1, w1m, first50k, first1 = ensure_inputs(tmp, a.w1)
        full = os.path.join(tmp, "full.toml")
        flow_only = os.path.join(tmp, "flow.toml")
        open(full, "w").write("")
        open(flow_only, "w").write("[app]\nenabled = false\n[output]\ntypes = [\"flow\", \"stats\"]\n")
        # Application metrics are counted only when /metrics is served: an
        # ephemeral port nobody scrapes.
        with_metrics = os.path.join(tmp, "metrics.toml")
        open(with_metrics, "w").write("[output]\nmetrics_listen = \"127.0.0.1:0\"\n")
        if not a.skip_callgrind:
            print("instructions per packet, W1 first 50k packets, one worker, whole process (callgrind)")
            for label, cfg in [("flow-only", flow_only), ("full pipeline", full),
                               ("full + app metrics", with_metrics)]:
                big = os.path.join(tmp, f"cg-{label[:6]}-50k.out")
                one = os.path.join(tmp, f"cg-{label[:6]}-1.out")
                t50, t1 = callgrind(a.bin, first50k, cfg, big), callgrind(a.bin, first1, cfg, one)
                print(f"  {label:18} {(t50 - t1) / 49999:8.0f}")
                c50, c1 = inclusive(big), inclusive(one)
                for (stage, n50), (_, n1) in zip(stage_costs(c50), stage_costs(c1)):
                    if n50:
                        print(f"      {stage:28} {(n50 - n1) / 49999:8.0f}")
        if not a.skip_wall:
            if not os.path.exists(w1m):
                sh([sys.executable, os.path.join(SHARED, "bench", "gen_bench_pcap.py"), "-o", w1m, "-n", "1000000", "--seed", "1"])
            info = sh(["capinfos", "-c", "-d", "-M", w1m]).stdout
            pkts = int(re.search(r"Number of packets:\s+(\d+)", info).group(1))
            size = int(re.search(r"Data size:\s+(\d+)", info).group(1))
            print(f"wall time on W1-1M ({pkts} packets, {size} bytes), median of {a.runs} runs "
                  "(one and two workers alternating), full pipeline, /dev/null sink")
            times, rss, pairs = {1: [], 2: []}, {1: [], 2: []}, []
            run = lambda workers: [a.bin, "run", "--pcap", w1m, "--workers", str(workers),
                                   "--no-progress", "-q", "-o", "/dev/null"]
            for _ in range(a.runs):
                for workers in (1, 2):
                    t, kib = timed_run(run(workers))
                    times[workers].append(t)
                    rss[workers].append(kib)
                pairs.append(timed_pair(run(1)))
            for workers in (1, 2):
                t = statistics.median(times[workers])
                print(f"  {workers} worker(s): {t:.3f} s  {pkts / t / 1e6:.2f} Mpps  {size * 8 / t / 1e9:.2f} Gbit/s"
                      f"  peak RSS {statistics.median(rss[workers]) / 1024:.0f} MiB"
                      f"  (runs: {', '.join(f'{x:.3f}' for x in times[workers])})")
            one, two = statistics.median(times[1]), statistics.median(times[2])
            print(f"  two workers / one: {one / two:.2f}x")
            pair = statistics.median(pairs)
            print(f"  control: two one-worker runs side by side {pair:.3f} s, so this VM's two cores "
                  f"gave {2 * one / pair:.2f}x one core  (runs: {', '.join(f'{x:.3f}' for x in pairs)})")


def timed_run(cmd):
    """Wall seconds and peak RSS (KiB) of one run of `cmd`."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {proc.returncode}")
    return elapsed, usage.ru_maxrss


def timed_pair(cmd):
    """Wall seconds of two runs of `cmd` started together (until both end)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(2)]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - t0
    if any(codes):
        sys.exit(f"{' '.join(cmd)}: exit {codes}")
    return elapsed


if __name__ == "__main__":
    main()
