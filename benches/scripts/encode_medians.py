#!/usr/bin/env python3
"""Prints the median time and events/s per core of each encode bench from
criterion's saved estimates, optionally against a second baseline.

    cargo bench -p benches --bench encode -- --save-baseline before
    ... change the encoders ...
    cargo bench -p benches --bench encode -- --save-baseline after
    benches/scripts/encode_medians.py before after
    benches/scripts/encode_medians.py before,before2,before3 after,after2,after3

CARGO_TARGET_DIR (default: target) locates the criterion directory.
"""
import json
import os
import sys

GOAL = 2_000_000  # events/s per core


def medians(root, baseline):
    # criterion names the directories `<event>_<schema>` (from `encode/<event>/<schema>`)
    out = {}
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name, baseline, "estimates.json")
        if "_" in name and os.path.exists(p):
            kind, schema = name.split("_", 1)
            with open(p) as f:
                out[(kind, schema)] = json.load(f)["median"]["point_estimate"]
    return out


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    root = os.path.join(target, "criterion", "encode")
    baselines = sys.argv[1:] or ["base"]
    # `a,b,c` as one column: the median of those runs' medians (noisy machine)
    cols = []
    for b in baselines:
        runs = [medians(root, x) for x in b.split(",")]
        col = {}
        for k in runs[0]:
            vals = sorted(r[k] for r in runs if k in r)
            col[k] = vals[len(vals) // 2]
        cols.append(col)
    baselines = [b.split(",")[0] + (f" (median of {len(b.split(','))})" if "," in b else "") for b in baselines]
    head = "| event | schema | " + " | ".join(
        f"{b} median ns | {b} M events/s" for b in baselines
    ) + (" | speed-up |" if len(cols) == 2 else " |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    order = ["native", "ecs", "eve", "gelf", "nanocorp", "nutanix"]
    keys = sorted(cols[0], key=lambda k: (["flow", "http", "dns", "tls"].index(k[0]), order.index(k[1])))
    for k in keys:
        if k[1] == "nutanix" and k[0] != "flow":
            continue  # nutanix has no app-event layout: nothing is encoded
        cells = []
        for c in cols:
            ns = c.get(k)
            if ns is None:
                cells += ["-", "-"]
            else:
                mark = "" if 1e9 / ns >= GOAL else " (below goal)"
                cells += [f"{ns:.0f}", f"{1e3 / ns:.2f}{mark}"]
        row = f"| {k[0]} | {k[1]} | " + " | ".join(cells)
        if len(cols) == 2 and k in cols[1]:
            row += f" | {cols[0][k] / cols[1][k]:.2f}x"
        print(row + " |")


if __name__ == "__main__":
    main()
