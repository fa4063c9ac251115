#!/usr/bin/env python3
"""A flood of one-packet UDP/IPv4 flows (the memory budget's worst case):
every packet a new flow (distinct source address and port), 1 us apart, so
no flow times out during the replay. Usage: flood_pcap.py OUT.pcap N"""
import struct
import sys


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    payload = b"flood"
    udp_len = 8 + len(payload)
    ip_len = 20 + udp_len
    frame_len = 14 + ip_len
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        rec = struct.Struct("<IIII")
        for i in range(n):
            ts = 1_700_000_000_000_000 + i  # microseconds
            src = 0x0A000000 | (i >> 8)  # 10.x.y.z
            sport = 1024 + (i & 0xFF)
            ip = struct.pack(
                "!BBHHHBBHII", 0x45, 0, ip_len, i & 0xFFFF, 0, 64, 17, 0, src, 0xC0000201
            )
            udp = struct.pack("!HHHH", sport, 53535, udp_len, 0)
            f.write(rec.pack(ts // 1_000_000, ts % 1_000_000, frame_len, frame_len))
            f.write(eth + ip + udp + payload)


if __name__ == "__main__":
    main()
