#!/usr/bin/env python3
"""Writes N native flow lines (a week-sized flow log for `flowtap discover
--flows`) to stdout: 137 services (DNS, HTTP, TLS, SSH, MySQL, PostgreSQL),
one client in seven unique (about N/7 distinct clients), ephemeral client
ports, times spread over a week.

    python3 benches/scripts/gen_flow_log.py 10000000 | zstd -3 -o /tmp/week.json.zst
    flowtap discover --flows /tmp/week.json.zst --group /16 -f csv -o rules.csv
"""
import random
import sys

random.seed(7)
n = int(sys.argv[1])
servers = (
    [("10.0.0.53", 53, "UDP", 17, "dns")]
    + [(f"198.51.100.{i}", 80, "TCP", 6, "http") for i in range(1, 60)]
    + [(f"192.0.2.{i}", 443, "TCP", 6, "tls") for i in range(1, 60)]
    + [(f"203.0.113.{i}", p, "TCP", 6, None) for i in range(1, 20) for p in (22, 3306, 5432)]
)
out = sys.stdout
buf = []
for k in range(n):
    s = servers[k % len(servers)]
    c = f"10.{(k >> 16) & 15}.{(k >> 8) & 255}.{k & 255}" if k % 7 == 0 else f"10.1.{(k // 7) % 40}.{(k * 13) % 250 + 1}"
    sp = 32768 + (k * 7919) % 28000
    sec = k * 604800 // n
    ts = f"2026-07-{6 + sec // 86400:02d}T{(sec // 3600) % 24:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d}.{k % 1000000:06d}Z"
    hist = '"history":"ShADadFf"' if s[3] == 6 else ""
    tcp = f',"tcp":{{"tcp_flags_ts":"1b","tcp_flags_tc":"1b","state":"SF",{hist}}}' if s[3] == 6 else ""
    app = f',"app_proto":"{s[4]}"' if s[4] else ""
    buf.append(
        f'{{"timestamp":"{ts}","event_type":"flow","flow_id":{k},"community_id":"1:x","src_ip":"{c}","src_port":{sp},'
        f'"dest_ip":"{s[0]}","dest_port":{s[1]},"proto":"{s[2]}","ip_proto":{s[3]}{app},"flow":{{"start":"{ts}","end":"{ts}",'
        f'"duration_us":1000,"pkts_toserver":6,"bytes_toserver":591,"pkts_toclient":3,"bytes_toclient":332,"reason":"fin","slice":0}}{tcp}}}\n'
    )
    if len(buf) >= 10000:
        out.write("".join(buf))
        buf = []
out.write("".join(buf))
