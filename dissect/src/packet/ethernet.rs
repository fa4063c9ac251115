//! Ethernet II / 802.3 LLC-SNAP, 802.1Q / 802.1ad / QinQ tags, PPPoE
//! session, and the ethertype dispatch every link layer ends in.

use super::bytes::{array_at, tail, u16_at, u8_at};
use super::{stop, DecodeStatus, Decoded, Layer, Malformation, Step};

pub(crate) const ETH_IPV4: u16 = 0x0800;
pub(crate) const ETH_IPV6: u16 = 0x86dd;
pub(crate) const ETH_VLAN: u16 = 0x8100;
pub(crate) const ETH_QINQ: u16 = 0x88a8;
pub(crate) const ETH_QINQ_OLD: u16 = 0x9100;
pub(crate) const ETH_QINQ_OLD2: u16 = 0x9200;
pub(crate) const ETH_MPLS: u16 = 0x8847;
pub(crate) const ETH_MPLS_MC: u16 = 0x8848;
pub(crate) const ETH_PPPOE_SESSION: u16 = 0x8864;

pub(crate) fn ethernet<'a>(b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(dst), Some(src), Some(ty)) =
        (array_at::<6>(b, 0), array_at::<6>(b, 6), u16_at(b, 12))
    else {
        return stop(out, DecodeStatus::Truncated(Layer::Link));
    };
    out.macs = Some((src, dst));
    let rest = tail(b, 14);
    if ty >= 0x0600 {
        // Dispatched here rather than through the decode loop: this is
        // the path nearly every packet takes.
        return ethertype(ty, rest, out);
    }
    // 802.3 length field: only LLC/SNAP can carry an ethertype.
    match (array_at::<3>(rest, 0), u16_at(rest, 6)) {
        (Some([0xaa, 0xaa, 0x03]), Some(snap_ty)) => Step::EtherType(snap_ty, tail(rest, 8)),
        _ => stop(out, DecodeStatus::NotIp(ty)),
    }
}

pub(crate) fn ethertype<'a>(ty: u16, b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    match ty {
        ETH_IPV4 => Step::Ipv4(b),
        ETH_IPV6 => Step::Ipv6(b),
        ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD | ETH_QINQ_OLD2 => {
            let (Some(tci), Some(next)) = (u16_at(b, 0), u16_at(b, 2)) else {
                return stop(out, DecodeStatus::Truncated(Layer::Vlan));
            };
            out.vlans.push(tci & 0x0fff);
            Step::EtherType(next, tail(b, 4))
        }
        ETH_MPLS | ETH_MPLS_MC => Step::Mpls(b),
        ETH_PPPOE_SESSION => pppoe_session(b, out),
        _ => stop(out, DecodeStatus::NotIp(ty)),
    }
}

/// RFC 2516 session stage: version/type, code, session id, length, then PPP.
fn pppoe_session<'a>(b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let Some(ver_type) = u8_at(b, 0) else {
        return stop(out, DecodeStatus::Truncated(Layer::Pppoe));
    };
    if ver_type != 0x11 {
        return stop(
            out,
            DecodeStatus::Malformed(Layer::Pppoe, Malformation::BadVersion),
        );
    }
    if b.len() < 6 {
        return stop(out, DecodeStatus::Truncated(Layer::Pppoe));
    }
    Step::Ppp(tail(b, 6))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::ETH_IPV4;

    #[test]
    fn plain_ethernet_ipv4_tcp() {
        let f = eth(
            ETH_IPV4,
            &ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, b"GET"),
        );
        let d = dec(1, &f);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.macs, Some((SRC_MAC, DST_MAC)));
        assert!(d.vlans.is_empty());
        assert_eq!(d.payload, b"GET");
    }

    #[test]
    fn qinq_and_triple_tags_are_kept_outer_first() {
        let inner = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 53, 53, b"x");
        let f = eth(
            0x88a8,
            &[
                vlan_tag(100, 0x8100),
                vlan_tag(200, 0x9100),
                vlan_tag(300, 0x0800),
                inner,
            ]
            .concat(),
        );
        let d = dec(1, &f);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.vlans.as_slice(), &[100, 200, 300]);
        assert!(matches!(d.l4, L4::Udp(_)));
    }

    #[test]
    fn vlan_priority_bits_are_masked() {
        let f = eth(
            0x8100,
            &[
                vec![0xe0, 0x05, 0x08, 0x00],
                ipv4_udp([1; 4], [2; 4], 1, 2, b""),
            ]
            .concat(),
        );
        assert_eq!(dec(1, &f).vlans.as_slice(), &[5]);
    }

    #[test]
    fn cut_vlan_tag_is_truncated() {
        let f = eth(0x8100, &[0x00]);
        assert_eq!(dec(1, &f).status, DecodeStatus::Truncated(Layer::Vlan));
    }

    #[test]
    fn short_ethernet_is_truncated() {
        assert_eq!(
            dec(1, &[0u8; 13]).status,
            DecodeStatus::Truncated(Layer::Link)
        );
    }

    #[test]
    fn arp_is_not_ip() {
        let f = eth(0x0806, &[0u8; 28]);
        let d = dec(1, &f);
        assert_eq!(d.status, DecodeStatus::NotIp(0x0806));
        assert!(d.ip.is_none());
        assert!(d.macs.is_some());
    }

    #[test]
    fn llc_snap_carries_an_ethertype() {
        let ip = ipv4_udp([1; 4], [2; 4], 1, 2, b"");
        let body = [vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00], ip.clone()].concat();
        let f = eth(body.len() as u16, &body);
        assert!(dec(1, &f).ip.is_some());
        // Spanning tree (LLC 0x42) is not IP; the length field is reported.
        let f = eth(38, &[0x42, 0x42, 0x03, 0, 0]);
        assert_eq!(dec(1, &f).status, DecodeStatus::NotIp(38));
    }

    #[test]
    fn pppoe_session_ipv4_and_ipv6() {
        let ip = ipv4_udp([1; 4], [2; 4], 1, 53, b"q");
        let f = eth(
            0x8864,
            &[vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x20, 0x00, 0x21], ip].concat(),
        );
        let d = dec(1, &f);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.payload, b"q");
        let ip6 = ipv6_udp([1; 16], [2; 16], 1, 53, b"q");
        let f = eth(
            0x8864,
            &[vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x20, 0x00, 0x57], ip6].concat(),
        );
        assert_eq!(dec(1, &f).ip.map(|ip| ip.version), Some(6));
        let f = eth(0x8864, &[0x22, 0, 0, 0, 0, 0, 0, 0x21]);
        assert_eq!(
            dec(1, &f).status,
            DecodeStatus::Malformed(Layer::Pppoe, Malformation::BadVersion)
        );
        // LCP is not IP.
        let f = eth(0x8864, &[0x11, 0, 0, 1, 0, 4, 0xc0, 0x21, 1, 2]);
        assert_eq!(dec(1, &f).status, DecodeStatus::NotIp(0xc021));
    }
}
