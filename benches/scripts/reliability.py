#!/usr/bin/env python3
"""Reliability campaign (not part of CI): how flowtap behaves on bad input
and over time.

    python3 benches/scripts/reliability.py fuzz   [--seconds 600]
    python3 benches/scripts/reliability.py mutate [--mutants 20] [--seed 1]
    sudo python3 benches/scripts/reliability.py soak [--minutes 10] [--pps 20000]

fuzz    every fuzz target for --seconds each (scripts/fuzz_smoke.sh with
        FUZZ_SECONDS): a crash, leak or hang fails it; executions per target
        are printed.
mutate  every corpus capture, mutated --mutants times each (byte flips,
        truncations, duplicated records, shuffled records), replayed by the
        release binary with a time limit: counts clean ends, damaged-input
        ends (exit 2: expected for a truncation), panics or signals, hangs
        (no end within 60 s) and runs whose peak RSS passed 1 GiB (leaks).
soak    a live capture in a throw-away network namespace for --minutes at a
        steady --pps (flowtap gen replaying W1 in a loop over a veth pair):
        flowtap's RSS sampled every second (first, last, peak) and the drops
        its final stats event reports. Needs root; nothing leaves the
        namespaces.
"""

import argparse
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
BIN = os.path.join(ROOT, "target", "release", "flowtap")
GIB = 1 << 30


def build():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "engine", "--bin", "flowtap"], cwd=ROOT, check=True)


def fuzz(a):
    env = dict(os.environ, FUZZ_SECONDS=str(a.seconds))
    r = subprocess.run([os.path.join(ROOT, "scripts", "fuzz_smoke.sh")], cwd=ROOT, env=env)
    sys.exit(r.returncode)


def pcap_records(data):
    """(header, records) of a classic pcap, or None (pcapng, other)."""
    if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        return None
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    recs, at = [], 24
    while at + 16 <= len(data):
        caplen = struct.unpack(e + "I", data[at + 8:at + 12])[0]
        end = at + 16 + caplen
        if end > len(data):
            break
        recs.append(data[at:end])
        at = end
    return data[:24], recs


def mutant(data, rng):
    kind = rng.choice(["flip", "truncate", "duplicate", "shuffle"])
    parsed = pcap_records(data)
    if kind in ("duplicate", "shuffle") and parsed and len(parsed[1]) > 1:
        head, recs = parsed
        if kind == "duplicate":
            i = rng.randrange(len(recs))
            recs = recs[:i + 1] + [recs[i]] * rng.randint(1, 3) + recs[i + 1:]
        else:
            i = rng.randrange(len(recs) - 1)
            j = min(len(recs), i + rng.randint(2, 16))
            part = recs[i:j]
            rng.shuffle(part)
            recs = recs[:i] + part + recs[j:]
        return kind, head + b"".join(recs)
    if kind == "truncate":
        return kind, data[:rng.randrange(1, len(data))]
    b = bytearray(data)
    for _ in range(rng.randint(1, 32)):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return "flip", bytes(b)


def run_limited(args, timeout):
    """(exit code or -signal or None on timeout, peak RSS bytes)."""
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
            return code, usage.ru_maxrss * 1024
        if time.time() > deadline:
            p.kill()
            _, _, usage = os.wait4(p.pid, 0)
            return None, usage.ru_maxrss * 1024
        time.sleep(0.02)


def mutate(a):
    build()
    rng = random.Random(a.seed)
    caps = []
    for d, _, files in os.walk(os.path.join(SHARED, "corpus")):
        caps += [os.path.join(d, f) for f in files if f.endswith((".pcap", ".pcapng"))]
    caps.sort()
    tally = {"clean": 0, "damaged": 0, "failed_start": 0, "panic_or_signal": 0, "hang": 0, "rss_over_1g": 0}
    kinds = {}
    worst = 0
    bad = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        m = os.path.join(tmp, "m.pcap")
        for cap in caps:
            data = open(cap, "rb").read()
            for _ in range(a.mutants):
                kind, out = mutant(data, rng)
                kinds[kind] = kinds.get(kind, 0) + 1
                open(m, "wb").write(out)
                code, rss = run_limited([BIN, "run", "--pcap", m, "--workers", "2", "--no-progress", "-q", "-o", "/dev/null"], 60)
                worst = max(worst, rss)
                if rss > GIB:
                    tally["rss_over_1g"] += 1
                if code is None:
                    tally["hang"] += 1
                    bad.append((cap, kind, "hang"))
                elif code == 0:
                    tally["clean"] += 1
                elif code == 2:
                    tally["damaged"] += 1
                elif code == 1:
                    tally["failed_start"] += 1
                else:
                    tally["panic_or_signal"] += 1
                    bad.append((cap, kind, code))
                    keep = os.path.join("/tmp", f"flowtap-mutant-{len(bad)}.pcap")
                    open(keep, "wb").write(out)
    n = sum(kinds.values())
    print(f"mutated captures: {n} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}) from {len(caps)} corpus captures in {time.time() - t0:.0f} s")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in tally.items()) + f"; peak RSS of a run {worst / 2**20:.0f} MiB")
    for b in bad:
        print("BAD", *b)
    sys.exit(1 if bad or tally["rss_over_1g"] else 0)


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def soak(a):
    if os.geteuid() != 0:
        sys.exit("soak needs root (network namespaces)")
    build()
    w1 = "/tmp/w1.pcap"
    if not os.path.exists(w1):
        sh(sys.executable, os.path.join(SHARED, "bench", "gen_bench_pcap.py"), "-o", w1, "-n", "200000", "--seed", "1")
    tag = str(os.getpid())
    na, nb, va, vb = f"ftsoakA{tag}", f"ftsoakB{tag}", f"ftsa{tag}", f"ftsb{tag}"
    tmp = tempfile.mkdtemp()
    try:
        sh("ip", "netns", "add", na)
        sh("ip", "netns", "add", nb)
        sh("ip", "link", "add", va, "netns", na, "type", "veth", "peer", "name", vb, "netns", nb)
        for ns, v in ((na, va), (nb, vb)):
            sh("ip", "-n", ns, "link", "set", v, "up")
        out = os.path.join(tmp, "events.json")
        ft = subprocess.Popen(["ip", "netns", "exec", nb, BIN, "run", "--iface", vb, "--capture", "afpacket",
                               "--workers", "1", "--duration", str(int(a.minutes * 60) + 5), "-o", out],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(2)
        pid = int(sh("pgrep", "-n", "-f", f"flowtap run --iface {vb}").stdout.split()[0])
        gen = subprocess.Popen(["ip", "netns", "exec", na, BIN, "gen", "--iface", va, "--pcap", w1,
                                "--pps", str(a.pps), "--loop", "1000000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = []
        end = time.time() + a.minutes * 60
        while time.time() < end and ft.poll() is None:
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        samples.append(int(line.split()[1]) * 1024)
            except FileNotFoundError:
                break
            time.sleep(1)
        gen.send_signal(signal.SIGINT)
        gen.wait(timeout=10)
        ft.wait(timeout=60)
        last = None
        for line in open(out):
            ev = json.loads(line)
            if ev.get("event_type") == "stats":
                last = ev["stats"]
        cap = (last or {}).get("capture", {})
        mib = [s / 2**20 for s in samples]
        print(f"soak {a.minutes} min at {a.pps} pps (AF_PACKET, one worker): RSS first {mib[0]:.0f} MiB, "
              f"last {mib[-1]:.0f} MiB, peak {max(mib):.0f} MiB over {len(mib)} samples")
        print(f"received {cap.get('received')}, dropped {json.dumps(cap.get('dropped'))}, "
              f"packets accounted: {(last or {}).get('packets', {}).get('accounted')}")
    finally:
        sh("ip", "netns", "del", na, check=False)
        sh("ip", "netns", "del", nb, check=False)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fuzz")
    f.add_argument("--seconds", type=int, default=600)
    m = sub.add_parser("mutate")
    m.add_argument("--mutants", type=int, default=20)
    m.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("soak")
    s.add_argument("--minutes", type=float, default=10)
    s.add_argument("--pps", type=int, default=20000)
    a = ap.parse_args()
    {"fuzz": fuzz, "mutate": mutate, "soak": soak}[a.cmd](a)


if __name__ == "__main__":
    main()
