#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, cut from ../shared/corpus captures:
each target gets inputs in its own format (see fuzz_targets/*.rs), so that a
short run starts from real traffic instead of from nothing.

    fuzz/seeds.py OUT_DIR     # writes OUT_DIR/<target>/seed-N
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "shared", "corpus")

# (capture, what) per target; each capture is Ethernet pcap.
SOURCES = {
    "decode": ["http/sv-http-all-headers--input.pcap", "tunnels/sv-vxlan-decoder-03--vxlan.pcap"],
    "http": ["http/sv-http-all-headers--input.pcap"],
    "dns": ["dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap"],
    "tls": ["vlan/ndpi-ja3_lots_of_cipher_suites.pcap"],
    "reassembly": ["http/sv-http-all-headers--input.pcap"],
    "pgsql": ["postgresql/sv-pgsql.pgsql-simple-query-rollback--input.pcap"],
    "mysql": ["mysql/zeek-mysql__selects_with_new_proto.pcap"],
}
MAX_SEEDS = 64
MAX_SEED_BYTES = 4096


def frames(path):
    """Ethernet frames of a little- or big-endian pcap (micro/nano)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return []
    (link,) = struct.unpack(e + "I", data[20:24])
    out, at = [], 24
    while at + 16 <= len(data):
        caplen = struct.unpack(e + "I", data[at + 8 : at + 12])[0]
        out.append((link & 0xFFFF, data[at + 16 : at + 16 + caplen]))
        at += 16 + caplen
    return out


def l4_payload(frame):
    """(is_tcp, from_low_port_side, payload) of an Ethernet/[VLAN]/IPv4 frame."""
    off, etype = 12, None
    while off + 2 <= len(frame):
        etype = struct.unpack("!H", frame[off : off + 2])[0]
        if etype in (0x8100, 0x88A8):
            off += 4
            continue
        off += 2
        break
    if etype != 0x0800 or off + 20 > len(frame):
        return None
    ihl = (frame[off] & 0x0F) * 4
    proto = frame[off + 9]
    l4 = off + ihl
    if proto == 6 and l4 + 20 <= len(frame):
        sport, dport = struct.unpack("!HH", frame[l4 : l4 + 4])
        doff = (frame[l4 + 12] >> 4) * 4
        return True, sport > dport, frame[l4 + doff :]
    if proto == 17 and l4 + 8 <= len(frame):
        sport, dport = struct.unpack("!HH", frame[l4 : l4 + 4])
        return False, sport > dport, frame[l4 + 8 :]
    return None


def script(chunks):
    """The app driver's script: 0xf0|dir, 16-bit length, data."""
    out = bytearray()
    for to_server, data in chunks:
        data = data[:0xFFFF]
        out += bytes([0xF0 | (0 if to_server else 1)]) + struct.pack("!H", len(data)) + data
    return bytes(out)


def seeds_for(target, path):
    fr = frames(path)
    if target == "decode":
        # First byte 1: LINKS[1] = Ethernet.
        return [bytes([1]) + f[:MAX_SEED_BYTES] for link, f in fr if link == 1]
    payloads = [p for p in (l4_payload(f) for _, f in fr) if p and p[2]]
    if target == "dns":
        udp = [bytes([0]) + script([(s, d)]) for tcp, s, d in payloads if not tcp]
        tcp = [bytes([1]) + script([(s, d)]) for tcp, s, d in payloads if tcp]
        return udp + tcp
    if target == "reassembly":
        # Port selector 0 (HTTP), then raw payload bytes as segments.
        return [bytes([0]) + d[:MAX_SEED_BYTES] for tcp, _, d in payloads if tcp]
    # http, tls: one script per run of payloads, in capture order.
    chunks = [(s, d) for tcp, s, d in payloads if tcp]
    return [script(chunks[i : i + 8]) for i in range(0, len(chunks), 8)]


def main():
    out = sys.argv[1]
    for target, caps in SOURCES.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        n = 0
        for c in caps:
            for s in seeds_for(target, os.path.join(CORPUS, c)):
                if n >= MAX_SEEDS:
                    break
                with open(os.path.join(d, f"seed-{n}"), "wb") as f:
                    f.write(s[:MAX_SEED_BYTES])
                n += 1
        if n == 0:
            sys.exit(f"no seed for {target} in {caps}")
        print(f"{target}: {n} seeds")


if __name__ == "__main__":
    main()
