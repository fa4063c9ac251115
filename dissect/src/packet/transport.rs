//! TCP, UDP, ICMP, ICMPv6, SCTP, and the dispatch to IP-level tunnels.
//!
//! Every protocol first records its own header as `l4` and its data as
//! `payload`; a tunnel then may replace both with the inner packet's. If the
//! inner packet cannot be reached, the outer one stays the result.

use super::bytes::{head, tail, u16_at, u32_at, u8_at};
use super::{
    stop, tunnel, DecodeStatus, Decoded, Decoder, Layer, Malformation, Step, TcpHeader, UdpHeader,
    L4,
};

pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_IPIP: u8 = 4;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_IPV6: u8 = 41;
pub(crate) const PROTO_GRE: u8 = 47;
pub(crate) const PROTO_ICMPV6: u8 = 58;
pub(crate) const PROTO_SCTP: u8 = 132;

/// `data` is the IP payload as captured, `declared` its length per the IP header.
pub(crate) fn transport<'a>(
    d: &mut Decoder<'_>,
    proto: u8,
    data: &'a [u8],
    declared: usize,
    out: &mut Decoded<'a>,
) -> Step<'a> {
    let cut = data.len() < declared;
    match proto {
        PROTO_TCP => tcp(data, cut, out),
        PROTO_UDP => udp(d, data, declared, out),
        PROTO_ICMP | PROTO_ICMPV6 => icmp(proto, data, out),
        PROTO_SCTP => sctp(data, cut, out),
        _ => {
            out.l4 = L4::Other(proto);
            out.payload = data;
            if cut {
                out.note(DecodeStatus::Truncated(Layer::Payload));
            }
            match proto {
                PROTO_GRE => tunnel::gre(d, data, out),
                PROTO_IPIP | PROTO_IPV6 => tunnel::ip_in_ip(d, proto, data, out),
                _ => Step::Done,
            }
        }
    }
}

pub(crate) fn tcp<'a>(data: &'a [u8], cut: bool, out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(src_port), Some(dst_port)) = (u16_at(data, 0), u16_at(data, 2)) else {
        return stop(out, DecodeStatus::Truncated(Layer::Tcp));
    };
    let offset_byte = u8_at(data, 12).unwrap_or(0);
    let header_len = (offset_byte >> 4) * 4;
    let hdr = TcpHeader {
        src_port,
        dst_port,
        seq: u32_at(data, 4).unwrap_or(0),
        ack: u32_at(data, 8).unwrap_or(0),
        flags: u8_at(data, 13).unwrap_or(0),
        window: u16_at(data, 14).unwrap_or(0),
        header_len,
    };
    out.l4 = L4::Tcp(hdr);
    if data.len() < 20 {
        // Keep whatever fields were captured; the ports matter most.
        return stop(out, DecodeStatus::Truncated(Layer::Tcp));
    }
    if header_len < 20 {
        return stop(
            out,
            DecodeStatus::Malformed(Layer::Tcp, Malformation::BadHeaderLength),
        );
    }
    if data.len() < usize::from(header_len) {
        return stop(
            out,
            if cut {
                DecodeStatus::Truncated(Layer::Tcp)
            } else {
                DecodeStatus::Malformed(Layer::Tcp, Malformation::BadHeaderLength)
            },
        );
    }
    out.payload = tail(data, usize::from(header_len));
    if cut {
        out.note(DecodeStatus::Truncated(Layer::Payload));
    }
    Step::Done
}

fn udp<'a>(
    d: &mut Decoder<'_>,
    data: &'a [u8],
    declared: usize,
    out: &mut Decoded<'a>,
) -> Step<'a> {
    let (Some(src_port), Some(dst_port)) = (u16_at(data, 0), u16_at(data, 2)) else {
        return stop(out, DecodeStatus::Truncated(Layer::Udp));
    };
    let length = u16_at(data, 4).unwrap_or(0);
    out.l4 = L4::Udp(UdpHeader {
        src_port,
        dst_port,
        length,
    });
    if data.len() < 8 {
        return stop(out, DecodeStatus::Truncated(Layer::Udp));
    }
    let udp_len = match usize::from(length) {
        // RFC 2675: a jumbo datagram's UDP length is 0; the IP length rules.
        0 if declared > 0xffff => declared,
        n if n < 8 || n > declared => {
            // Keep the data the IP layer vouches for; say the header lies.
            out.payload = tail(data, 8);
            return stop(
                out,
                DecodeStatus::Malformed(Layer::Udp, Malformation::BadLength),
            );
        }
        n => n,
    };
    let payload = tail(head(data, udp_len), 8);
    out.payload = payload;
    if data.len() < udp_len {
        out.note(DecodeStatus::Truncated(Layer::Payload));
    }
    tunnel::udp(d, src_port, dst_port, payload, udp_len - 8, out)
}

/// ICMP and ICMPv6 share their first bytes: type, code, checksum, 4 more.
fn icmp<'a>(proto: u8, data: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let layer = if proto == PROTO_ICMP {
        Layer::Icmp
    } else {
        Layer::Icmpv6
    };
    let (Some(ty), Some(code)) = (u8_at(data, 0), u8_at(data, 1)) else {
        return stop(out, DecodeStatus::Truncated(layer));
    };
    out.l4 = if proto == PROTO_ICMP {
        L4::Icmp { ty, code }
    } else {
        L4::Icmpv6 { ty, code }
    };
    if data.len() < 8 {
        return stop(out, DecodeStatus::Truncated(layer));
    }
    out.payload = tail(data, 8);
    Step::Done
}

fn sctp<'a>(data: &'a [u8], cut: bool, out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(src_port), Some(dst_port)) = (u16_at(data, 0), u16_at(data, 2)) else {
        return stop(out, DecodeStatus::Truncated(Layer::Sctp));
    };
    out.l4 = L4::Sctp { src_port, dst_port };
    if data.len() < 12 {
        return stop(out, DecodeStatus::Truncated(Layer::Sctp));
    }
    out.payload = tail(data, 12);
    if cut {
        out.note(DecodeStatus::Truncated(Layer::Payload));
    }
    Step::Done
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;

    #[test]
    fn tcp_header_fields() {
        let mut seg = tcp_segment(40000, 443, b"data");
        seg[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        seg[8..12].copy_from_slice(&0x0a0b_0c0du32.to_be_bytes());
        seg[13] = TcpHeader::SYN | TcpHeader::ACK;
        seg[14..16].copy_from_slice(&512u16.to_be_bytes());
        let frame = ipv4_raw([1; 4], [2; 4], 6, &seg);
        let d = dec(101, &frame);
        assert_eq!(
            d.l4,
            L4::Tcp(TcpHeader {
                src_port: 40000,
                dst_port: 443,
                seq: 0x0102_0304,
                ack: 0x0a0b_0c0d,
                flags: 0x12,
                window: 512,
                header_len: 20
            })
        );
        assert_eq!(d.payload, b"data");
    }

    #[test]
    fn tcp_options_are_skipped() {
        let mut seg = tcp_segment(1, 2, b"");
        seg[12] = 8 << 4;
        seg.extend([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        seg.extend(b"after");
        let frame = ipv4_raw([1; 4], [2; 4], 6, &seg);
        let d = dec(101, &frame);
        assert_eq!(d.payload, b"after");
    }

    #[test]
    fn tcp_cut_by_snaplen_keeps_ports() {
        let p = ipv4_tcp([1; 4], [2; 4], 1111, 80, b"payload");
        let d = dec(101, &p[..20 + 6]);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Tcp));
        match d.l4 {
            L4::Tcp(t) => assert_eq!((t.src_port, t.dst_port, t.flags), (1111, 80, 0)),
            other => panic!("{other:?}"),
        }
        // Header whole, payload cut.
        let d = dec(101, &p[..20 + 20 + 3]);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Payload));
        assert_eq!(d.payload, b"pay");
        // Fewer than 4 bytes: no ports.
        let d = dec(101, &p[..22]);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Tcp));
        assert_eq!(d.l4, L4::None);
    }

    #[test]
    fn tcp_bad_data_offset() {
        let mut seg = tcp_segment(1, 2, b"xx");
        seg[12] = 4 << 4;
        let frame = ipv4_raw([1; 4], [2; 4], 6, &seg);
        let d = dec(101, &frame);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Tcp, Malformation::BadHeaderLength)
        );
        seg[12] = 15 << 4;
        let frame = ipv4_raw([1; 4], [2; 4], 6, &seg);
        let d = dec(101, &frame);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Tcp, Malformation::BadHeaderLength)
        );
        assert!(matches!(d.l4, L4::Tcp(_)));
    }

    #[test]
    fn udp_length_rules() {
        let p = ipv4_udp([1; 4], [2; 4], 53, 1053, b"answer");
        let d = dec(101, &p);
        assert_eq!(
            d.l4,
            L4::Udp(UdpHeader {
                src_port: 53,
                dst_port: 1053,
                length: 14
            })
        );
        assert_eq!(d.payload, b"answer");
        // Length below 8.
        let mut bad = p.clone();
        bad[24..26].copy_from_slice(&5u16.to_be_bytes());
        let d = dec(101, &bad);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Udp, Malformation::BadLength)
        );
        assert!(matches!(d.l4, L4::Udp(_)));
        // Length beyond the IP payload.
        let mut bad = p.clone();
        bad[24..26].copy_from_slice(&65008u16.to_be_bytes());
        assert_eq!(
            dec(101, &bad).status,
            DecodeStatus::Malformed(Layer::Udp, Malformation::BadLength)
        );
        // Length shorter than the IP payload: trailing bytes are not payload.
        let mut short = p.clone();
        short[24..26].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(dec(101, &short).payload, b"an");
        // Cut by snaplen.
        let d = dec(101, &p[..30]);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Payload));
        assert_eq!(d.payload, b"an");
        let d = dec(101, &p[..25]);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Udp));
        assert!(matches!(
            d.l4,
            L4::Udp(UdpHeader {
                src_port: 53,
                dst_port: 1053,
                ..
            })
        ));
    }

    #[test]
    fn icmp_and_icmpv6() {
        let frame = ipv4_raw([1; 4], [2; 4], 1, &[8, 0, 0, 0, 0, 1, 0, 1, b'p']);
        let d = dec(101, &frame);
        assert_eq!(d.l4, L4::Icmp { ty: 8, code: 0 });
        assert_eq!(d.payload, b"p");
        let frame = ipv6_raw([1; 16], [2; 16], 58, &[129, 0, 0, 0, 0, 1, 0, 1]);
        let d = dec(101, &frame);
        assert_eq!(d.l4, L4::Icmpv6 { ty: 129, code: 0 });
        let frame = ipv4_raw([1; 4], [2; 4], 1, &[3, 1, 0]);
        let d = dec(101, &frame);
        assert_eq!(d.l4, L4::Icmp { ty: 3, code: 1 });
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Icmp));
        let frame = ipv6_raw([1; 16], [2; 16], 58, &[1]);
        let d = dec(101, &frame);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Icmpv6));
    }

    #[test]
    fn sctp_ports() {
        let mut s = vec![0x0b, 0x59, 0x0b, 0x59, 0, 0, 0, 1, 0, 0, 0, 0];
        s.extend(b"chunk");
        let frame = ipv4_raw([1; 4], [2; 4], 132, &s);
        let d = dec(101, &frame);
        assert_eq!(
            d.l4,
            L4::Sctp {
                src_port: 2905,
                dst_port: 2905
            }
        );
        assert_eq!(d.payload, b"chunk");
        let frame = ipv4_raw([1; 4], [2; 4], 132, &s[..6]);
        let d = dec(101, &frame);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Sctp));
        assert_eq!(
            d.l4,
            L4::Sctp {
                src_port: 2905,
                dst_port: 2905
            }
        );
    }

    #[test]
    fn other_protocols() {
        let frame = ipv4_raw([1; 4], [2; 4], 89, b"ospf");
        let d = dec(101, &frame);
        assert_eq!(d.l4, L4::Other(89));
        assert_eq!(d.payload, b"ospf");
        assert_eq!(d.status, DecodeStatus::Ok);
    }
}
