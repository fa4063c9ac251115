//! IPv4 (with options) and IPv6 (with extension headers), fragments included.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bytes::{array_at, head, tail, u16_at, u32_at, u8_at};
use super::transport::{self, PROTO_TCP};
use super::{
    stop, DecodeStatus, Decoded, Decoder, Fragment, IpHeader, Layer, Malformation, Step, L4,
};

pub(crate) const PROTO_HOPOPTS: u8 = 0;
pub(crate) const PROTO_ROUTING: u8 = 43;
pub(crate) const PROTO_FRAGMENT: u8 = 44;
pub(crate) const PROTO_AH: u8 = 51;
pub(crate) const PROTO_DSTOPTS: u8 = 60;
pub(crate) const PROTO_MOBILITY: u8 = 135;
pub(crate) const PROTO_HIP: u8 = 139;
pub(crate) const PROTO_SHIM6: u8 = 140;

/// Raw IP: the version nibble decides.
pub(crate) fn by_version<'a>(b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    match b.first().map(|v| v >> 4) {
        Some(6) => Step::Ipv6(b),
        Some(4) => Step::Ipv4(b),
        Some(_) => stop(
            out,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadVersion),
        ),
        None => stop(out, DecodeStatus::Truncated(Layer::Ipv4)),
    }
}

/// The most common frame in one straight pass: untagged Ethernet, IPv4
/// without options, not a fragment, carrying TCP (which no tunnel
/// follows). Fills `out` (fresh) exactly as the general path would and
/// returns true; false leaves `out` untouched for the general path.
#[inline(always)]
pub(crate) fn ethernet_ipv4_tcp<'a>(frame: &'a [u8], out: &mut Decoded<'a>) -> bool {
    let Some(h) = array_at::<34>(frame, 0) else {
        return false;
    };
    // Ethertype IPv4; version 4 with a 20-byte header; protocol TCP; no
    // more-fragments flag and offset 0 (the DF bit may be set).
    if h[12..14] != [0x08, 0x00]
        || h[14] != 0x45
        || h[23] != PROTO_TCP
        || h[20] & 0x3f != 0
        || h[21] != 0
    {
        return false;
    }
    let b = tail(frame, 14);
    let total_len = match usize::from(u16::from_be_bytes([h[16], h[17]])) {
        0 => b.len(),
        n => n,
    };
    if total_len < 20 {
        return false;
    }
    let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5] = [
        h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11],
    ];
    out.macs = Some(([s0, s1, s2, s3, s4, s5], [d0, d1, d2, d3, d4, d5]));
    let data = head(b, total_len);
    let payload = tail(data, 20);
    out.ip = Some(IpHeader {
        version: 4,
        src: IpAddr::V4(Ipv4Addr::new(h[26], h[27], h[28], h[29])),
        dst: IpAddr::V4(Ipv4Addr::new(h[30], h[31], h[32], h[33])),
        proto: PROTO_TCP,
        ttl: h[22],
        total_len: total_len as u32,
        header_len: 20,
        frag: None,
    });
    out.ip_payload = payload;
    transport::tcp(payload, payload.len() < total_len - 20, out);
    true
}

pub(crate) fn ipv4<'a>(d: &mut Decoder<'_>, b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let Some(fixed) = array_at::<20>(b, 0) else {
        // Without the addresses nothing useful is left; say what was wrong first.
        return match b.first() {
            Some(v) if v >> 4 != 4 => stop(
                out,
                DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadVersion),
            ),
            _ => stop(out, DecodeStatus::Truncated(Layer::Ipv4)),
        };
    };
    let [vihl, _tos, tl0, tl1, id0, id1, fo0, fo1, ttl, proto, _, _, s0, s1, s2, s3, d0, d1, d2, d3] =
        fixed;
    if vihl >> 4 != 4 {
        return stop(
            out,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadVersion),
        );
    }
    let header_len = usize::from(vihl & 0x0f) * 4;
    if header_len < 20 {
        return stop(
            out,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadHeaderLength),
        );
    }
    if b.len() < header_len {
        return stop(out, DecodeStatus::Truncated(Layer::Ipv4));
    }
    let mut total_len = usize::from(u16::from_be_bytes([tl0, tl1]));
    if total_len == 0 {
        // Segmentation offload on the capturing host leaves 0 here; the
        // captured bytes are all there is to go by.
        total_len = b.len();
    }
    if total_len < header_len {
        return stop(
            out,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadTotalLength),
        );
    }
    if !ipv4_options_ok(b.get(20..header_len).unwrap_or(&[])) {
        out.note(DecodeStatus::Malformed(
            Layer::Ipv4,
            Malformation::BadOption,
        ));
    }
    let fo = u16::from_be_bytes([fo0, fo1]);
    let offset = u32::from(fo & 0x1fff) * 8;
    let more = fo & 0x2000 != 0;
    let frag = (more || offset != 0).then_some(Fragment {
        id: u32::from(u16::from_be_bytes([id0, id1])),
        offset,
        more,
    });
    d.reached_ip(out);
    let data = head(b, total_len);
    let payload = tail(data, header_len);
    out.ip = Some(IpHeader {
        version: 4,
        src: IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
        dst: IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
        proto,
        ttl,
        total_len: total_len as u32,
        header_len: header_len as u16,
        frag,
    });
    out.ip_payload = payload;
    out.l4 = L4::None;
    out.payload = &[];
    let declared = total_len - header_len;
    if frag.is_some() {
        if payload.len() < declared {
            out.note(DecodeStatus::Truncated(Layer::Payload));
        }
        return Step::Done;
    }
    Step::Transport(proto, payload, declared)
}

/// Option TLVs must fit the header; EOL ends the list, NOP is one byte.
fn ipv4_options_ok(mut opts: &[u8]) -> bool {
    loop {
        match opts {
            [] | [0, ..] => return true,
            [1, rest @ ..] => opts = rest,
            [_, len, ..] if usize::from(*len) >= 2 && usize::from(*len) <= opts.len() => {
                opts = tail(opts, usize::from(*len));
            }
            _ => return false,
        }
    }
}

pub(crate) fn ipv6<'a>(d: &mut Decoder<'_>, b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(first), Some(payload_len), Some(next), Some(hop_limit), Some(src), Some(dst)) = (
        u8_at(b, 0),
        u16_at(b, 4),
        u8_at(b, 6),
        u8_at(b, 7),
        array_at::<16>(b, 8),
        array_at::<16>(b, 24),
    ) else {
        return match b.first() {
            Some(v) if v >> 4 != 6 => stop(
                out,
                DecodeStatus::Malformed(Layer::Ipv6, Malformation::BadVersion),
            ),
            _ => stop(out, DecodeStatus::Truncated(Layer::Ipv6)),
        };
    };
    if first >> 4 != 6 {
        return stop(
            out,
            DecodeStatus::Malformed(Layer::Ipv6, Malformation::BadVersion),
        );
    }
    let captured = tail(b, 40);
    // A jumbogram (payload length 0 behind a hop-by-hop header) or a
    // segmentation-offloaded capture: go by what was captured.
    let declared = match usize::from(payload_len) {
        0 => captured.len(),
        n => n,
    };
    let data = head(captured, declared);
    let ext = walk_ipv6_ext(next, data, declared);
    d.reached_ip(out);
    let ext_len = ext.len.min(data.len());
    let payload = tail(data, ext_len);
    out.ip = Some(IpHeader {
        version: 6,
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        proto: ext.proto,
        ttl: hop_limit,
        total_len: 40 + declared as u32,
        header_len: (40 + ext_len) as u16,
        frag: ext.frag,
    });
    out.ip_payload = payload;
    out.l4 = L4::None;
    out.payload = &[];
    if let Some(status) = ext.stopped {
        return stop(out, status);
    }
    let declared = declared.saturating_sub(ext_len);
    if ext.frag.is_some() {
        if payload.len() < declared {
            out.note(DecodeStatus::Truncated(Layer::Payload));
        }
        return Step::Done;
    }
    Step::Transport(ext.proto, payload, declared)
}

/// Result of walking IPv6 extension headers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Ipv6Ext {
    /// First protocol that is not an extension header (or the one where the walk stopped).
    pub(crate) proto: u8,
    /// Bytes of extension headers walked.
    pub(crate) len: usize,
    pub(crate) frag: Option<Fragment>,
    /// Why the walk stopped early, if it did.
    pub(crate) stopped: Option<DecodeStatus>,
}

/// Walks extension headers starting with `next` over `data` (the IPv6
/// payload as captured; `declared` is its length per the IP header). ESP and
/// "no next header" end the walk like any upper-layer protocol; a real
/// fragment header ends it too (what follows is the fragment's data).
pub(crate) fn walk_ipv6_ext(mut next: u8, data: &[u8], declared: usize) -> Ipv6Ext {
    let mut off = 0usize;
    let mut frag = None;
    let stopped = loop {
        let len = match next {
            PROTO_HOPOPTS | PROTO_ROUTING | PROTO_DSTOPTS | PROTO_MOBILITY | PROTO_HIP
            | PROTO_SHIM6 => u8_at(data, off + 1).map(|l| (usize::from(l) + 1) * 8),
            PROTO_AH => u8_at(data, off + 1).map(|l| (usize::from(l) + 2) * 4),
            PROTO_FRAGMENT => Some(8),
            _ => break None,
        };
        let (Some(len), Some(hdr_next)) = (len, u8_at(data, off)) else {
            break Some(cut_or_bad(data.len(), declared));
        };
        if off + len > data.len() {
            break Some(cut_or_bad(data.len(), declared));
        }
        if next == PROTO_FRAGMENT {
            let fo = u16_at(data, off + 2).unwrap_or(0);
            let id = u32_at(data, off + 4).unwrap_or(0);
            let offset = u32::from(fo & 0xfff8);
            let more = fo & 1 != 0;
            if offset != 0 || more {
                frag = Some(Fragment { id, offset, more });
                off += len;
                next = hdr_next;
                break None;
            }
            // An atomic fragment (RFC 6946) is a whole packet: keep walking.
        }
        off += len;
        next = hdr_next;
    };
    Ipv6Ext {
        proto: next,
        len: off,
        frag,
        stopped,
    }
}

fn cut_or_bad(captured: usize, declared: usize) -> DecodeStatus {
    if captured < declared {
        DecodeStatus::Truncated(Layer::Ipv6Ext)
    } else {
        DecodeStatus::Malformed(Layer::Ipv6Ext, Malformation::BadHeaderLength)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::*;

    #[test]
    fn ipv4_fields() {
        let mut p = ipv4_tcp([192, 168, 0, 1], [10, 0, 0, 9], 1000, 443, b"hello");
        p[8] = 63;
        let d = dec(101, &p);
        let ip = d.ip.unwrap();
        assert_eq!(ip.version, 4);
        assert_eq!(ip.src, "192.168.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(ip.dst, "10.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(ip.proto, 6);
        assert_eq!(ip.ttl, 63);
        assert_eq!(ip.total_len, 45);
        assert_eq!(ip.header_len, 20);
        assert_eq!(ip.frag, None);
        assert_eq!(d.ip_payload.len(), 25);
        assert_eq!(d.payload, b"hello");
    }

    #[test]
    fn ethernet_padding_is_stripped() {
        let mut f = eth(0x0800, &ipv4_udp([1; 4], [2; 4], 5, 6, b"a"));
        f.extend_from_slice(&[0u8; 17]);
        let d = dec(1, &f);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.payload, b"a");
        assert_eq!(d.ip_payload.len(), 9);
    }

    #[test]
    fn ipv4_options_are_skipped_and_checked() {
        // Record route (7), length 7, pointer 4, one address; then EOL.
        let opts = [7, 7, 4, 0, 0, 0, 0, 0];
        let p = ipv4_with_options([1; 4], [2; 4], 17, &opts, &udp(1, 2, b"x"));
        let d = dec(101, &p);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.ip.unwrap().header_len, 28);
        assert_eq!(d.payload, b"x");
        // Option length running past the header: decoding goes on, status says so.
        let bad = [0x82, 0x0b, 0, 0];
        let p = ipv4_with_options([1; 4], [2; 4], 17, &bad, &udp(1, 2, b"x"));
        let d = dec(101, &p);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadOption)
        );
        assert_eq!(d.payload, b"x");
        assert!(matches!(d.l4, L4::Udp(_)));
    }

    #[test]
    fn ipv4_bad_lengths() {
        let mut p = ipv4_udp([1; 4], [2; 4], 1, 2, b"");
        p[0] = 0x44;
        assert_eq!(
            dec(101, &p).status,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadHeaderLength)
        );
        let mut p = ipv4_udp([1; 4], [2; 4], 1, 2, b"");
        p[3] = 19;
        assert_eq!(
            dec(101, &p).status,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadTotalLength)
        );
        let mut p = ipv4_udp([1; 4], [2; 4], 1, 2, b"");
        p[0] = 0x4f; // 60-byte header, 28 captured
        assert_eq!(dec(101, &p).status, DecodeStatus::Truncated(Layer::Ipv4));
        assert_eq!(
            dec(101, &p[..19]).status,
            DecodeStatus::Truncated(Layer::Ipv4)
        );
    }

    #[test]
    fn ipv4_total_length_zero_uses_captured_bytes() {
        let mut p = ipv4_tcp([1; 4], [2; 4], 1, 2, b"tso");
        p[2] = 0;
        p[3] = 0;
        let d = dec(101, &p);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.payload, b"tso");
    }

    #[test]
    fn ipv4_fragments_have_no_l4() {
        let mut p = ipv4_udp([1; 4], [2; 4], 1, 2, b"0123456789");
        p[6] = 0x20; // MF, offset 0
        p[4] = 0xab;
        p[5] = 0xcd;
        let d = dec(101, &p);
        assert!(d.is_fragment());
        assert_eq!(
            d.ip.unwrap().frag,
            Some(Fragment {
                id: 0xabcd,
                offset: 0,
                more: true
            })
        );
        assert_eq!(d.l4, L4::None);
        assert_eq!(d.ip_payload.len(), 18);
        assert!(d.payload.is_empty());
        p[6] = 0x00;
        p[7] = 0x03; // last fragment at 24 bytes
        let d = dec(101, &p);
        assert_eq!(
            d.ip.unwrap().frag,
            Some(Fragment {
                id: 0xabcd,
                offset: 24,
                more: false
            })
        );
        assert_eq!(d.l4, L4::None);
        // DF alone is not a fragment.
        p[6] = 0x40;
        p[7] = 0;
        let d = dec(101, &p);
        assert!(!d.is_fragment());
        assert!(matches!(d.l4, L4::Udp(_)));
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        let udp_bytes = udp(53, 5353, b"dns");
        // hop-by-hop (8) -> routing (8) -> dest opts (16) -> AH (12+4=16) -> UDP
        let mut ext = vec![PROTO_ROUTING, 0, 1, 4, 0, 0, 0, 0];
        ext.extend([PROTO_DSTOPTS, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend([PROTO_AH, 1, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend([17, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
        ext.extend(&udp_bytes);
        let p = ipv6_raw([1; 16], [2; 16], PROTO_HOPOPTS, &ext);
        let d = dec(101, &p);
        assert_eq!(d.status, DecodeStatus::Ok);
        let ip = d.ip.unwrap();
        assert_eq!(ip.proto, 17);
        assert_eq!(ip.header_len, 40 + 48);
        assert_eq!(d.payload, b"dns");
    }

    #[test]
    fn ipv6_esp_and_no_next_header_end_the_walk() {
        let frame = ipv6_raw([1; 16], [2; 16], 50, &[0u8; 24]);
        let d = dec(101, &frame);
        assert_eq!(d.l4, L4::Other(50));
        assert_eq!(d.ip.unwrap().proto, 50);
        let frame = ipv6_raw([1; 16], [2; 16], 59, &[]);
        let d = dec(101, &frame);
        assert_eq!(d.l4, L4::Other(59));
        assert_eq!(d.status, DecodeStatus::Ok);
    }

    #[test]
    fn ipv6_fragments() {
        let data = [7u8; 16];
        let mut body = vec![17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]; // offset 0, M
        body.extend(data);
        let frame = ipv6_raw([1; 16], [2; 16], PROTO_FRAGMENT, &body);
        let d = dec(101, &frame);
        let ip = d.ip.unwrap();
        assert_eq!(ip.proto, 17);
        assert_eq!(
            ip.frag,
            Some(Fragment {
                id: 0xdead_beef,
                offset: 0,
                more: true
            })
        );
        assert_eq!(d.ip_payload, &data);
        assert_eq!(d.l4, L4::None);
        // offset 1448, last
        body[2] = 0x05;
        body[3] = 0xa8;
        let frame = ipv6_raw([1; 16], [2; 16], PROTO_FRAGMENT, &body);
        let d = dec(101, &frame);
        assert_eq!(
            d.ip.unwrap().frag,
            Some(Fragment {
                id: 0xdead_beef,
                offset: 1448,
                more: false
            })
        );
        // Atomic fragment: a whole packet behind a fragment header.
        let mut body = vec![17, 0, 0, 0, 0, 0, 0, 9];
        body.extend(udp(1, 2, b"whole"));
        let frame = ipv6_raw([1; 16], [2; 16], PROTO_FRAGMENT, &body);
        let d = dec(101, &frame);
        assert!(!d.is_fragment());
        assert_eq!(d.payload, b"whole");
    }

    #[test]
    fn ipv6_ext_header_cut_or_too_long() {
        // Hop-by-hop claims 16 bytes, only 8 present, and the IP length agrees with 8.
        let frame = ipv6_raw([1; 16], [2; 16], PROTO_HOPOPTS, &[17, 1, 0, 0, 0, 0, 0, 0]);
        let d = dec(101, &frame);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Ipv6Ext, Malformation::BadHeaderLength)
        );
        assert!(d.ip.is_some());
        // Same, but the IP length says more was sent: a snaplen cut.
        let mut p = ipv6_raw([1; 16], [2; 16], PROTO_HOPOPTS, &[17, 1, 0, 0, 0, 0, 0, 0]);
        p[5] = 40;
        assert_eq!(dec(101, &p).status, DecodeStatus::Truncated(Layer::Ipv6Ext));
    }

    #[test]
    fn ipv6_short_or_wrong_version() {
        let p = ipv6_udp([1; 16], [2; 16], 1, 2, b"");
        assert_eq!(
            dec(229, &p[..39]).status,
            DecodeStatus::Truncated(Layer::Ipv6)
        );
        let mut p = p;
        p[0] = 0x45;
        assert_eq!(
            dec(229, &p).status,
            DecodeStatus::Malformed(Layer::Ipv6, Malformation::BadVersion)
        );
    }

    #[test]
    fn ipv6_payload_length_zero_uses_captured_bytes() {
        let mut p = ipv6_udp([1; 16], [2; 16], 1, 2, b"jumbo");
        p[4] = 0;
        p[5] = 0;
        let d = dec(229, &p);
        assert_eq!(d.payload, b"jumbo");
    }

    #[test]
    fn options_walker() {
        assert!(ipv4_options_ok(&[]));
        assert!(ipv4_options_ok(&[1, 1, 0, 99]));
        assert!(ipv4_options_ok(&[0x44, 4, 5, 0]));
        assert!(!ipv4_options_ok(&[0x44, 1]));
        assert!(!ipv4_options_ok(&[0x44]));
        assert!(!ipv4_options_ok(&[0x44, 9, 0, 0]));
    }
}
