//! pcap link types other than Ethernet: BSD NULL/LOOP, raw IP, Linux
//! cooked (SLL, SLL2), Cisco HDLC and PPP. Each strips its header and hands
//! on an ethertype (or IP directly).

use super::bytes::{tail, u16_at, u32_at, u8_at};
use super::ethernet::{ETH_MPLS, ETH_MPLS_MC};
use super::{stop, DecodeStatus, Decoded, Layer, Step};

pub(crate) const LINKTYPE_NULL: u32 = 0;
pub(crate) const LINKTYPE_ETHERNET: u32 = 1;
pub(crate) const LINKTYPE_PPP: u32 = 9;
pub(crate) const LINKTYPE_PPP_HDLC: u32 = 50;
pub(crate) const LINKTYPE_RAW: u32 = 101;
pub(crate) const LINKTYPE_C_HDLC: u32 = 104;
pub(crate) const LINKTYPE_LOOP: u32 = 108;
pub(crate) const LINKTYPE_LINUX_SLL: u32 = 113;
pub(crate) const LINKTYPE_IPV4: u32 = 228;
pub(crate) const LINKTYPE_IPV6: u32 = 229;
pub(crate) const LINKTYPE_LINUX_SLL2: u32 = 276;

/// The step a frame of link type `link` starts with; `None` when unsupported.
pub(crate) fn first_step(link: u32, frame: &[u8]) -> Option<Step<'_>> {
    Some(match link {
        LINKTYPE_ETHERNET => Step::Ethernet(frame),
        LINKTYPE_RAW => Step::Ip(frame),
        LINKTYPE_IPV4 => Step::Ipv4(frame),
        LINKTYPE_IPV6 => Step::Ipv6(frame),
        LINKTYPE_NULL | LINKTYPE_LOOP => null_loop(frame),
        LINKTYPE_LINUX_SLL => sll(frame),
        LINKTYPE_LINUX_SLL2 => sll2(frame),
        LINKTYPE_C_HDLC => cisco_hdlc(frame),
        LINKTYPE_PPP | LINKTYPE_PPP_HDLC => match frame.first() {
            // Some PPP captures carry Cisco HDLC framing instead.
            Some(0x0f | 0x8f) => cisco_hdlc(frame),
            _ => Step::Ppp(frame),
        },
        _ => return None,
    })
}

/// Address family in the byte order of the capturing host (NULL) or in
/// network order (LOOP); writers disagree, so either order is accepted.
/// The IPv6 value differs per OS (10 Linux, 24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS).
fn null_loop(frame: &[u8]) -> Step<'_> {
    let Some(raw) = u32_at(frame, 0) else {
        return Step::Stop(DecodeStatus::Truncated(Layer::Link));
    };
    let family = if raw > 0xffff { raw.swap_bytes() } else { raw };
    let rest = tail(frame, 4);
    match family {
        2 => Step::Ipv4(rest),
        10 | 24 | 28 | 30 => Step::Ipv6(rest),
        other => Step::Stop(DecodeStatus::NotIp(
            u16::try_from(other).unwrap_or(u16::MAX),
        )),
    }
}

/// Linux cooked v1: packet type, ARPHRD, address length, 8 address bytes, protocol.
fn sll(frame: &[u8]) -> Step<'_> {
    match u16_at(frame, 14) {
        Some(proto) => Step::EtherType(proto, tail(frame, 16)),
        None => Step::Stop(DecodeStatus::Truncated(Layer::Link)),
    }
}

/// Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length, 8 address bytes.
fn sll2(frame: &[u8]) -> Step<'_> {
    match (u16_at(frame, 0), frame.len() >= 20) {
        (Some(proto), true) => Step::EtherType(proto, tail(frame, 20)),
        _ => Step::Stop(DecodeStatus::Truncated(Layer::Link)),
    }
}

/// Cisco HDLC: address, control, then an ethertype.
fn cisco_hdlc(frame: &[u8]) -> Step<'_> {
    match u16_at(frame, 2) {
        Some(proto) => Step::EtherType(proto, tail(frame, 4)),
        None => Step::Stop(DecodeStatus::Truncated(Layer::Link)),
    }
}

/// PPP (RFC 1661), with or without the HDLC-like 0xff 0x03 prefix and with
/// or without protocol field compression.
pub(crate) fn ppp<'a>(b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let b = match b {
        [0xff, 0x03, rest @ ..] => rest,
        _ => b,
    };
    let Some(first) = u8_at(b, 0) else {
        return stop(out, DecodeStatus::Truncated(Layer::Ppp));
    };
    // A compressed (1-byte) protocol is odd; a full one has an even first byte.
    let (proto, rest) = if first & 1 == 1 {
        (u16::from(first), tail(b, 1))
    } else {
        match u16_at(b, 0) {
            Some(p) => (p, tail(b, 2)),
            None => return stop(out, DecodeStatus::Truncated(Layer::Ppp)),
        }
    };
    match proto {
        0x0021 => Step::Ipv4(rest),
        0x0057 => Step::Ipv6(rest),
        0x0281 => Step::EtherType(ETH_MPLS, rest),
        0x0283 => Step::EtherType(ETH_MPLS_MC, rest),
        _ => stop(out, DecodeStatus::NotIp(proto)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::*;

    fn ip4() -> Vec<u8> {
        ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"abc")
    }

    fn ip6() -> Vec<u8> {
        ipv6_udp([1; 16], [2; 16], 1, 2, b"abc")
    }

    #[test]
    fn null_and_loop_in_both_byte_orders() {
        for link in [LINKTYPE_NULL, LINKTYPE_LOOP] {
            for fam in [[2, 0, 0, 0], [0, 0, 0, 2]] {
                let frame = [fam.to_vec(), ip4()].concat();
                let d = dec(link, &frame);
                assert_eq!(d.status, DecodeStatus::Ok, "{link} {fam:?}");
                assert_eq!(d.payload, b"abc");
            }
            for fam in [[30, 0, 0, 0], [0, 0, 0, 24], [28, 0, 0, 0], [0, 0, 0, 10]] {
                let frame = [fam.to_vec(), ip6()].concat();
                let d = dec(link, &frame);
                assert_eq!(d.ip.map(|i| i.version), Some(6), "{fam:?}");
            }
        }
        let frame = [7, 0, 0, 0, 1, 2];
        let d = dec(LINKTYPE_NULL, &frame);
        assert_eq!(d.status, DecodeStatus::NotIp(7));
        assert_eq!(
            dec(LINKTYPE_NULL, &[2, 0]).status,
            DecodeStatus::Truncated(Layer::Link)
        );
    }

    #[test]
    fn raw_ip_link_types() {
        assert_eq!(dec(LINKTYPE_RAW, &ip4()).ip.map(|i| i.version), Some(4));
        assert_eq!(dec(LINKTYPE_RAW, &ip6()).ip.map(|i| i.version), Some(6));
        assert_eq!(dec(LINKTYPE_IPV4, &ip4()).status, DecodeStatus::Ok);
        assert_eq!(dec(LINKTYPE_IPV6, &ip6()).status, DecodeStatus::Ok);
        assert_eq!(
            dec(LINKTYPE_IPV6, &ip4()).status,
            DecodeStatus::Malformed(Layer::Ipv6, Malformation::BadVersion)
        );
        assert_eq!(
            dec(LINKTYPE_RAW, &[0x50, 0, 0]).status,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::BadVersion)
        );
        assert_eq!(
            dec(LINKTYPE_RAW, &[]).status,
            DecodeStatus::Truncated(Layer::Ipv4)
        );
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend(ip4());
        assert_eq!(dec(LINKTYPE_LINUX_SLL, &sll).payload, b"abc");
        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend(ip6());
        assert_eq!(dec(LINKTYPE_LINUX_SLL2, &sll2).payload, b"abc");
        assert_eq!(
            dec(LINKTYPE_LINUX_SLL2, &sll2[..10]).status,
            DecodeStatus::Truncated(Layer::Link)
        );
    }

    #[test]
    fn cisco_hdlc_with_mpls() {
        let mut f = vec![0x0f, 0x00, 0x88, 0x47, 0x00, 0x01, 0x01, 0x40];
        f.extend(ip4());
        let d = dec(LINKTYPE_C_HDLC, &f);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.mpls_labels, 1);
        assert_eq!(d.payload, b"abc");
        assert_eq!(
            dec(LINKTYPE_C_HDLC, &[0x0f]).status,
            DecodeStatus::Truncated(Layer::Link)
        );
    }

    #[test]
    fn ppp_framings() {
        for prefix in [vec![0xff, 0x03, 0x00, 0x21], vec![0x00, 0x21], vec![0x21]] {
            let frame = [prefix.clone(), ip4()].concat();
            let d = dec(LINKTYPE_PPP, &frame);
            assert_eq!(d.status, DecodeStatus::Ok, "{prefix:?}");
        }
        let frame = [vec![0xff, 0x03, 0x00, 0x57], ip6()].concat();
        let d = dec(LINKTYPE_PPP, &frame);
        assert_eq!(d.ip.map(|i| i.version), Some(6));
        assert_eq!(
            dec(LINKTYPE_PPP, &[0xc0, 0x21, 1]).status,
            DecodeStatus::NotIp(0xc021)
        );
        assert_eq!(
            dec(LINKTYPE_PPP, &[0xff, 0x03]).status,
            DecodeStatus::Truncated(Layer::Ppp)
        );
        let frame = [vec![0x0f, 0x00, 0x08, 0x00], ip4()].concat();
        let d = dec(LINKTYPE_PPP_HDLC, &frame);
        assert_eq!(d.status, DecodeStatus::Ok);
    }

    #[test]
    fn unknown_link_type() {
        assert_eq!(
            dec(147, &[1, 2, 3]).status,
            DecodeStatus::UnsupportedLink(147)
        );
    }
}
