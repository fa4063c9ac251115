#!/usr/bin/env python3
"""Generate a mixed database workload capture: PostgreSQL (simple queries,
one connection per client session, errors), MySQL (login, COM_QUERY with
result sets, OK and ERR answers) and Redis (pipelines of 10-40 commands per
segment), over TCP with handshakes and FIN teardown, checksums and
sequence numbers right (the TCP machinery comes from W1's generator,
../shared/bench/gen_bench_pcap.py). Deterministic for a seed.

    gen_db_pcap.py -o db.pcap [-n TRANSACTIONS] [--seed 1] [--summary db.json]

The summary (JSON) counts what the clients asked, per protocol: the
transactions a parser should report (sessions' startups/logins and
terminations included), and the errors among them.
"""
import argparse
import json
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "shared", "bench"))
import gen_bench_pcap as w1  # noqa: E402

TABLES = ["orders", "customers", "items", "invoices", "sessions", "events", "stock", "users"]


def cstr(s):
    return s.encode() + b"\0"


# ----------------------------------------------------------------------------- PostgreSQL

def pg_msg(t, body):
    return t + struct.pack("!I", len(body) + 4) + body


def pg_session(sink, ep, t0, queries, summary):
    c, cp, s = ep.tuple(ep.pg, 5432)
    conn = w1.TcpConn(sink, t0, c, cp, s, 5432, random.uniform(100e-6, 2e-3))
    conn.handshake()
    params = cstr("user") + cstr("app%d" % random.randrange(20)) + cstr("database") + cstr("shop") \
        + cstr("application_name") + cstr("bench") + b"\0"
    conn.client_send(struct.pack("!II", 8 + len(params), 196608) + params)
    conn.server_send(pg_msg(b"R", struct.pack("!I", 0))
                     + pg_msg(b"S", cstr("server_version") + cstr("16.1"))
                     + pg_msg(b"K", struct.pack("!II", random.randrange(1 << 20), random.randrange(1 << 31)))
                     + pg_msg(b"Z", b"I"), random.uniform(200e-6, 1e-3))
    summary["pgsql"] += 1
    for _ in range(queries):
        conn.adv(random.uniform(50e-6, 5e-3))
        table = random.choice(TABLES)
        kind = random.random()
        if kind < 0.05:
            sql = "SELECT * FROM %s_archive WHERE id = %d;" % (table, random.randrange(1 << 20))
            conn.client_send(pg_msg(b"Q", cstr(sql)))
            err = b"SERROR\0VERROR\0C42P01\0" + cstr("Mrelation \"%s_archive\" does not exist" % table) + b"\0"
            conn.server_send(pg_msg(b"E", err) + pg_msg(b"Z", b"I"), random.uniform(100e-6, 1e-3))
            summary["pgsql_errors"] += 1
        elif kind < 0.75:
            sql = "SELECT id, name FROM %s WHERE id = %d;" % (table, random.randrange(1 << 20))
            conn.client_send(pg_msg(b"Q", cstr(sql)))
            rows = random.randrange(0, 6)
            desc = struct.pack("!H", 2)
            for name, oid in (("id", 23), ("name", 25)):
                desc += cstr(name) + struct.pack("!IHIhiH", 16384, 1, oid, -1, -1, 0)
            out = pg_msg(b"T", desc)
            for r in range(rows):
                name = ("%s-%d" % (table, r)).encode()
                out += pg_msg(b"D", struct.pack("!H", 2) + struct.pack("!I", 4) + b"%04d" % r
                              + struct.pack("!I", len(name)) + name)
            out += pg_msg(b"C", cstr("SELECT %d" % rows)) + pg_msg(b"Z", b"I")
            conn.server_send(out, random.uniform(100e-6, 3e-3))
        else:
            sql = "INSERT INTO %s (name, qty) VALUES ('n%d', %d);" % (table, random.randrange(1 << 16),
                                                                      random.randrange(100))
            conn.client_send(pg_msg(b"Q", cstr(sql)))
            conn.server_send(pg_msg(b"C", cstr("INSERT 0 1")) + pg_msg(b"Z", b"I"), random.uniform(200e-6, 4e-3))
        summary["pgsql"] += 1
    conn.adv(random.uniform(50e-6, 1e-3))
    conn.client_send(pg_msg(b"X", b""))
    summary["pgsql"] += 1
    conn.close()


# ----------------------------------------------------------------------------- MySQL

CAPS = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000  # no CLIENT_DEPRECATE_EOF: EOF packets


def my_pkt(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def lenenc(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    return b"\xfd" + struct.pack("<I", n)[:3]


def lenstr(b):
    return lenenc(len(b)) + b


def my_session(sink, ep, t0, queries, summary):
    c, cp, s = ep.tuple(ep.my, 3306)
    conn = w1.TcpConn(sink, t0, c, cp, s, 3306, random.uniform(100e-6, 2e-3))
    conn.handshake()
    salt = bytes(random.randrange(33, 127) for _ in range(20))
    greeting = b"\x0a" + cstr("8.0.36") + struct.pack("<I", random.randrange(1, 1 << 20)) + salt[:8] + b"\0" \
        + struct.pack("<H", CAPS & 0xFFFF) + b"\xff" + struct.pack("<H", 2) + struct.pack("<H", CAPS >> 16) \
        + bytes([21]) + b"\0" * 10 + salt[8:] + b"\0" + cstr("mysql_native_password")
    conn.server_send(my_pkt(0, greeting), random.uniform(100e-6, 1e-3))
    login = struct.pack("<IIB", CAPS, 1 << 24, 0xff) + b"\0" * 23 + cstr("app%d" % random.randrange(20)) \
        + bytes([20]) + bytes(random.randrange(256) for _ in range(20)) + cstr("shop") + cstr("mysql_native_password")
    conn.client_send(my_pkt(1, login))
    conn.server_send(my_pkt(2, b"\x00\x00\x00" + struct.pack("<HH", 2, 0)), random.uniform(200e-6, 2e-3))
    summary["mysql"] += 1
    for _ in range(queries):
        conn.adv(random.uniform(50e-6, 5e-3))
        table = random.choice(TABLES)
        kind = random.random()
        if kind < 0.05:
            sql = "SELECT * FROM %s_old WHERE id = %d" % (table, random.randrange(1 << 20))
            conn.client_send(my_pkt(0, b"\x03" + sql.encode()))
            msg = ("Table 'shop.%s_old' doesn't exist" % table).encode()
            conn.server_send(my_pkt(1, b"\xff" + struct.pack("<H", 1146) + b"#42S02" + msg),
                             random.uniform(100e-6, 1e-3))
            summary["mysql_errors"] += 1
        elif kind < 0.75:
            sql = "SELECT id, name FROM %s WHERE id = %d" % (table, random.randrange(1 << 20))
            conn.client_send(my_pkt(0, b"\x03" + sql.encode()))
            rows = random.randrange(0, 6)
            seq = 1
            out = my_pkt(seq, lenenc(2))
            for name, typ in ((b"id", 3), (b"name", 253)):
                seq += 1
                col = lenstr(b"def") + lenstr(b"shop") + lenstr(table.encode()) + lenstr(table.encode()) \
                    + lenstr(name) + lenstr(name) + b"\x0c" + struct.pack("<HIBHB", 255, 80, typ, 0, 0) + b"\0\0"
                out += my_pkt(seq, col)
            seq += 1
            out += my_pkt(seq, b"\xfe" + struct.pack("<HH", 0, 2))
            for r in range(rows):
                seq += 1
                out += my_pkt(seq, lenstr(b"%d" % r) + lenstr(("%s-%d" % (table, r)).encode()))
            seq += 1
            out += my_pkt(seq, b"\xfe" + struct.pack("<HH", 0, 2))
            conn.server_send(out, random.uniform(100e-6, 3e-3))
        else:
            sql = "UPDATE %s SET qty = qty + 1 WHERE id = %d" % (table, random.randrange(1 << 20))
            conn.client_send(my_pkt(0, b"\x03" + sql.encode()))
            conn.server_send(my_pkt(1, b"\x00" + lenenc(1) + lenenc(0) + struct.pack("<HH", 2, 0)),
                             random.uniform(200e-6, 4e-3))
        summary["mysql"] += 1
    conn.adv(random.uniform(50e-6, 1e-3))
    conn.client_send(my_pkt(0, b"\x01"))
    summary["mysql"] += 1
    conn.close()


# ----------------------------------------------------------------------------- Redis

def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def redis_session(sink, ep, t0, pipelines, summary):
    c, cp, s = ep.tuple(ep.redis, 6379)
    conn = w1.TcpConn(sink, t0, c, cp, s, 6379, random.uniform(50e-6, 1e-3))
    conn.handshake()
    for _ in range(pipelines):
        conn.adv(random.uniform(50e-6, 2e-3))
        req, rep = b"", b""
        for _ in range(random.randrange(10, 41)):
            key = "%s:%d" % (random.choice(TABLES), random.randrange(10000))
            k = random.random()
            if k < 0.45:
                req += resp("GET", key)
                v = b"v%d" % random.randrange(1 << 30)
                rep += b"$%d\r\n%s\r\n" % (len(v), v) if random.random() < 0.8 else b"$-1\r\n"
            elif k < 0.8:
                req += resp("SET", key, "x" * random.randrange(8, 64))
                rep += b"+OK\r\n"
            elif k < 0.97:
                req += resp("INCR", key + ":n")
                rep += b":%d\r\n" % random.randrange(1, 1000)
            else:
                req += resp("LPUSH", key, "y")
                rep += b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
                summary["redis_errors"] += 1
            summary["redis"] += 1
        conn.client_send(req)
        conn.server_send(rep, random.uniform(50e-6, 1e-3))
    conn.close()


class DbEndpoints(w1.Endpoints):
    def __init__(self):
        super().__init__()
        self.pg = [w1.ip4("10.20.0.%d" % i) for i in range(1, 5)]
        self.my = [w1.ip4("10.20.1.%d" % i) for i in range(1, 5)]
        self.redis = [w1.ip4("10.20.2.%d" % i) for i in range(1, 5)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default="db.pcap")
    ap.add_argument("-n", "--transactions", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--start", type=float, default=1783339200.0)
    ap.add_argument("--summary", help="write the transaction counts here (JSON)")
    a = ap.parse_args()
    random.seed(a.seed)
    w1._ipid[0] = random.randrange(65536)
    ep = DbEndpoints()
    sink = w1.Sink()
    summary = dict.fromkeys(["pgsql", "pgsql_errors", "mysql", "mysql_errors", "redis", "redis_errors"], 0)
    sessions = 0
    est = max(1, a.transactions // 60)
    while summary["pgsql"] + summary["mysql"] + summary["redis"] < a.transactions:
        t0 = a.start + a.duration * (sessions / est) + random.uniform(0, 0.05)
        k = random.choices(("pgsql", "mysql", "redis"), (40, 30, 30))[0]
        if k == "pgsql":
            pg_session(sink, ep, t0, random.randrange(5, 60), summary)
        elif k == "mysql":
            my_session(sink, ep, t0, random.randrange(5, 60), summary)
        else:
            redis_session(sink, ep, t0, random.randrange(1, 6), summary)
        sessions += 1
    sink.pkts.sort(key=lambda p: (p[0], p[1]))
    nbytes = 0
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, _, frame in sink.pkts:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            if usec >= 1000000:
                sec, usec = sec + 1, usec - 1000000
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)
            nbytes += len(frame)
    summary["packets"] = len(sink.pkts)
    summary["bytes"] = nbytes
    summary["sessions"] = sessions
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(summary, f)
    print("wrote %s: %d packets, %d frame bytes, %d sessions, %s"
          % (a.out, len(sink.pkts), nbytes, sessions, json.dumps(summary)))


if __name__ == "__main__":
    main()
