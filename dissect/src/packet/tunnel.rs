//! Encapsulations decoded to the inner packet: GRE (with ERSPAN I/II/III,
//! transparent Ethernet bridging, PPTP's PPP), IP-in-IP, VXLAN, GENEVE,
//! Teredo and GTP-U.
//!
//! Each checks its header before entering, so a packet that only happens to
//! use a tunnel's port stays a plain UDP packet.

use super::bytes::{tail, u16_at, u32_at, u8_at};
use super::ethernet::{ETH_IPV4, ETH_IPV6, ETH_MPLS, ETH_MPLS_MC};
use super::transport::PROTO_IPIP;
use super::{
    stop, DecodeConfig, DecodeStatus, Decoded, Decoder, Layer, Malformation, Step, TunnelKind,
};

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQ: u16 = 0x1000;
const GRE_ACK: u16 = 0x0080;

const GRE_TEB: u16 = 0x6558;
const GRE_ERSPAN_I_II: u16 = 0x88be;
const GRE_ERSPAN_III: u16 = 0x22eb;
const GRE_PPP: u16 = 0x880b;

/// 3GPP TS 29.281: GTP-U uses this port on both sides.
const GTPU_PORT: u16 = 2152;

/// GRE version 0 (RFC 2784/2890) or version 1 (PPTP, RFC 2637).
pub(crate) fn gre<'a>(d: &mut Decoder<'_>, b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(flags), Some(proto)) = (u16_at(b, 0), u16_at(b, 2)) else {
        return stop(out, DecodeStatus::Truncated(Layer::Gre));
    };
    let (key, off) = match flags & 0x0007 {
        0 => {
            if flags & GRE_ROUTING != 0 {
                // RFC 1701 source routing: deprecated, variable and not seen in mirrors.
                return stop(
                    out,
                    DecodeStatus::Malformed(Layer::Gre, Malformation::Unsupported),
                );
            }
            let mut off = 4;
            if flags & GRE_CHECKSUM != 0 {
                off += 4;
            }
            let key = (flags & GRE_KEY != 0).then(|| u32_at(b, off));
            if key.is_some() {
                off += 4;
            }
            if flags & GRE_SEQ != 0 {
                off += 4;
            }
            (key.flatten(), off)
        }
        1 => {
            // Enhanced GRE always has the key field: payload length + call id.
            if flags & GRE_KEY == 0 || proto != GRE_PPP {
                return stop(
                    out,
                    DecodeStatus::Malformed(Layer::Gre, Malformation::BadVersion),
                );
            }
            let call_id = u16_at(b, 6).map(u32::from);
            let mut off = 8;
            if flags & GRE_SEQ != 0 {
                off += 4;
            }
            if flags & GRE_ACK != 0 {
                off += 4;
            }
            (call_id, off)
        }
        _ => {
            return stop(
                out,
                DecodeStatus::Malformed(Layer::Gre, Malformation::BadVersion),
            )
        }
    };
    if b.len() < off {
        return stop(out, DecodeStatus::Truncated(Layer::Gre));
    }
    let inner = tail(b, off);
    let (kind, next) = match proto {
        ETH_IPV4 => (TunnelKind::Gre, Step::Ipv4(inner)),
        ETH_IPV6 => (TunnelKind::Gre, Step::Ipv6(inner)),
        GRE_TEB => (TunnelKind::Gre, Step::Ethernet(inner)),
        GRE_PPP => (TunnelKind::Gre, Step::Ppp(inner)),
        ETH_MPLS | ETH_MPLS_MC => (TunnelKind::Gre, Step::Mpls(inner)),
        // Type I has no ERSPAN header and no sequence number; type II has both.
        GRE_ERSPAN_I_II if flags & GRE_SEQ == 0 => (TunnelKind::ErspanI, Step::Ethernet(inner)),
        GRE_ERSPAN_I_II => return erspan(d, inner, false, out),
        GRE_ERSPAN_III => return erspan(d, inner, true, out),
        _ => return Step::Done,
    };
    if !d.enter(out, Some(kind), key, Layer::Gre) {
        return Step::Done;
    }
    next
}

/// ERSPAN type II (8-byte header, version 1) or type III (12 bytes,
/// version 2, plus an 8-byte platform sub-header when its O bit is set).
fn erspan<'a>(d: &mut Decoder<'_>, b: &'a [u8], type3: bool, out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(ver_vlan), Some(cos_session)) = (u16_at(b, 0), u16_at(b, 2)) else {
        return stop(out, DecodeStatus::Truncated(Layer::Erspan));
    };
    let version = ver_vlan >> 12;
    if version != if type3 { 2 } else { 1 } {
        return stop(
            out,
            DecodeStatus::Malformed(Layer::Erspan, Malformation::BadVersion),
        );
    }
    let vlan = ver_vlan & 0x0fff;
    let session = u32::from(cos_session & 0x03ff);
    let (kind, off, vlan_in_frame, is_ethernet) = if type3 {
        let Some(ft_hw) = u16_at(b, 10) else {
            return stop(out, DecodeStatus::Truncated(Layer::Erspan));
        };
        let frame_type = (ft_hw >> 10) & 0x1f;
        let off = if ft_hw & 1 != 0 { 20 } else { 12 };
        (TunnelKind::ErspanIII, off, false, frame_type == 0)
    } else {
        // Encapsulation type 3: the original VLAN tag is still in the frame.
        let en = (cos_session >> 11) & 0x3;
        (TunnelKind::ErspanII, 8, en == 3, true)
    };
    if b.len() < off {
        return stop(out, DecodeStatus::Truncated(Layer::Erspan));
    }
    if !is_ethernet || !d.enter(out, Some(kind), Some(session), Layer::Erspan) {
        return Step::Done;
    }
    // The mirrored frame's VLAN travels in the ERSPAN header once the switch
    // strips the tag; it still tells the mirrored networks apart.
    if vlan != 0 && !vlan_in_frame {
        out.vlans.push(vlan);
    }
    Step::Ethernet(tail(b, off))
}

/// Protocol 4 (IPv4) or 41 (IPv6) inside IPv4 or IPv6.
pub(crate) fn ip_in_ip<'a>(
    d: &mut Decoder<'_>,
    proto: u8,
    b: &'a [u8],
    out: &mut Decoded<'a>,
) -> Step<'a> {
    if !d.enter(out, Some(TunnelKind::IpInIp), None, Layer::Ipv4) {
        return Step::Done;
    }
    if proto == PROTO_IPIP {
        Step::Ipv4(b)
    } else {
        Step::Ipv6(b)
    }
}

/// UDP-borne tunnels, chosen by port and confirmed by their header.
/// `declared` is the UDP payload length the UDP header gives.
/// Whether [`udp`] may decapsulate a datagram from port `src` to `dst`
/// under `cfg` (the ports it follows, in the same order).
pub(crate) fn udp_may_carry(cfg: &DecodeConfig, src: u16, dst: u16) -> bool {
    (cfg.vxlan_port != 0 && dst == cfg.vxlan_port)
        || (cfg.geneve_port != 0 && dst == cfg.geneve_port)
        || src == GTPU_PORT
        || dst == GTPU_PORT
        || cfg.teredo_port.is_some_and(|p| src == p || dst == p)
}

pub(crate) fn udp<'a>(
    d: &mut Decoder<'_>,
    src_port: u16,
    dst_port: u16,
    b: &'a [u8],
    declared: usize,
    out: &mut Decoded<'a>,
) -> Step<'a> {
    let cfg = d.cfg;
    if cfg.vxlan_port != 0 && dst_port == cfg.vxlan_port {
        return vxlan(d, b, out);
    }
    if cfg.geneve_port != 0 && dst_port == cfg.geneve_port {
        return geneve(d, b, out);
    }
    if src_port == GTPU_PORT || dst_port == GTPU_PORT {
        return gtpu(d, b, out);
    }
    if let Some(port) = cfg.teredo_port {
        if src_port == port || dst_port == port {
            return teredo(d, b, declared, out);
        }
    }
    Step::Done
}

/// RFC 7348: flags (I bit must be set), 24-bit VNI, then Ethernet.
fn vxlan<'a>(d: &mut Decoder<'_>, b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(flags), Some(vni_word)) = (u8_at(b, 0), u32_at(b, 4)) else {
        return stop(out, DecodeStatus::Truncated(Layer::Vxlan));
    };
    if flags & 0x08 == 0
        || !d.enter(
            out,
            Some(TunnelKind::Vxlan),
            Some(vni_word >> 8),
            Layer::Vxlan,
        )
    {
        return Step::Done;
    }
    Step::Ethernet(tail(b, 8))
}

/// RFC 8926: version 0, options of 4-byte units, protocol type, 24-bit VNI.
fn geneve<'a>(d: &mut Decoder<'_>, b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(ver_opt), Some(proto), Some(vni_word)) = (u8_at(b, 0), u16_at(b, 2), u32_at(b, 4))
    else {
        return stop(out, DecodeStatus::Truncated(Layer::Geneve));
    };
    if ver_opt >> 6 != 0 {
        return Step::Done;
    }
    let off = 8 + usize::from(ver_opt & 0x3f) * 4;
    let next = match proto {
        GRE_TEB => Step::Ethernet as fn(&'a [u8]) -> Step<'a>,
        ETH_IPV4 => Step::Ipv4,
        ETH_IPV6 => Step::Ipv6,
        _ => return Step::Done,
    };
    if b.len() < off {
        return stop(out, DecodeStatus::Truncated(Layer::Geneve));
    }
    if !d.enter(
        out,
        Some(TunnelKind::Geneve),
        Some(vni_word >> 8),
        Layer::Geneve,
    ) {
        return Step::Done;
    }
    next(tail(b, off))
}

/// 3GPP TS 29.281 G-PDU: version 1, protocol type GTP, message type 255,
/// optional sequence/N-PDU/extension headers, then IPv4 or IPv6.
fn gtpu<'a>(d: &mut Decoder<'_>, b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let (Some(flags), Some(msg_type), Some(teid)) = (u8_at(b, 0), u8_at(b, 1), u32_at(b, 4)) else {
        return Step::Done;
    };
    // Echo and other signalling messages are plain UDP.
    if flags >> 5 != 1 || flags & 0x10 == 0 || msg_type != 0xff {
        return Step::Done;
    }
    let mut off = 8;
    if flags & 0x07 != 0 {
        let Some(mut next_ext) = u8_at(b, 11) else {
            return stop(out, DecodeStatus::Truncated(Layer::GtpU));
        };
        off = 12;
        if flags & 0x04 != 0 {
            while next_ext != 0 {
                let Some(units) = u8_at(b, off) else {
                    return stop(out, DecodeStatus::Truncated(Layer::GtpU));
                };
                if units == 0 {
                    return stop(
                        out,
                        DecodeStatus::Malformed(Layer::GtpU, Malformation::BadHeaderLength),
                    );
                }
                off += usize::from(units) * 4;
                let Some(n) = u8_at(b, off - 1) else {
                    return stop(out, DecodeStatus::Truncated(Layer::GtpU));
                };
                next_ext = n;
            }
        }
    }
    let inner = tail(b, off);
    let next = match inner.first().map(|v| v >> 4) {
        Some(4) => Step::Ipv4(inner),
        Some(6) => Step::Ipv6(inner),
        Some(_) => return Step::Done,
        None => return stop(out, DecodeStatus::Truncated(Layer::GtpU)),
    };
    if !d.enter(out, Some(TunnelKind::GtpU), Some(teid), Layer::GtpU) {
        return Step::Done;
    }
    next
}

/// RFC 4380. Nothing in Teredo marks a data packet, so it is entered only
/// when the payload really is an IPv6 packet of exactly the UDP length (the
/// checks Suricata makes). An authentication header means qualification
/// traffic with the Teredo server, kept as plain UDP.
fn teredo<'a>(
    d: &mut Decoder<'_>,
    b: &'a [u8],
    declared: usize,
    out: &mut Decoded<'a>,
) -> Step<'a> {
    let (inner, declared) = match b {
        [0x00, 0x01, ..] => return Step::Done,
        // Origin indication: 8 bytes before the IPv6 header.
        [0x00, 0x00, ..] => (tail(b, 8), declared.saturating_sub(8)),
        _ => (b, declared),
    };
    let (Some(first), Some(payload_len), Some(next), Some(hop_limit)) = (
        u8_at(inner, 0),
        u16_at(inner, 4),
        u8_at(inner, 6),
        u8_at(inner, 7),
    ) else {
        return Step::Done;
    };
    let looks_like_ipv6 = first >> 4 == 6
        && hop_limit != 0
        && !(next == 0 && payload_len < 8)
        && 40 + usize::from(payload_len) == declared;
    if !looks_like_ipv6 || !d.enter(out, Some(TunnelKind::Teredo), None, Layer::Teredo) {
        return Step::Done;
    }
    Step::Ipv6(inner)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use std::net::IpAddr;

    fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
        eth(
            0x0800,
            &ipv4_raw([192, 0, 2, 1], [192, 0, 2, 2], proto, payload),
        )
    }

    fn inner_tcp() -> Vec<u8> {
        ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 5555, 80, b"inner")
    }

    fn assert_inner(d: &Decoded<'_>, kind: TunnelKind, id: Option<u32>) {
        assert_eq!(d.status, DecodeStatus::Ok, "{d:?}");
        let ip = d.ip.unwrap();
        assert_eq!(ip.src, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(d.payload, b"inner");
        let t = d.tunnel.unwrap();
        assert_eq!(t.kind, kind);
        assert_eq!(t.id, id);
        assert_eq!(t.outer_src, IpAddr::from([192, 0, 2, 1]));
        assert_eq!(t.outer_dst, IpAddr::from([192, 0, 2, 2]));
        assert_eq!(d.tunnel_depth, 1);
    }

    #[test]
    fn gre_ipv4_with_checksum_key_and_sequence() {
        let gre = [
            &[0xb0, 0x00, 0x08, 0x00][..],
            &[0, 0, 0, 0],
            &42u32.to_be_bytes(),
            &[0, 0, 0, 7],
            &inner_tcp(),
        ]
        .concat();
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_inner(&d, TunnelKind::Gre, Some(42));
        assert_eq!(d.tunnel.unwrap().outer_proto, 47);
    }

    #[test]
    fn gre_transparent_ethernet_bridging() {
        let inner = eth_with_macs([1; 6], [2; 6], 0x0800, &inner_tcp());
        let gre = [&[0x00, 0x00, 0x65, 0x58][..], &inner].concat();
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_inner(&d, TunnelKind::Gre, None);
        assert_eq!(d.macs, Some(([1; 6], [2; 6])));
    }

    #[test]
    fn gre_v1_pptp_ppp() {
        let gre = [
            &[0x30, 0x81, 0x88, 0x0b][..],
            &[0x00, 0x20, 0x12, 0x34],
            &[0, 0, 0, 1],
            &[0, 0, 0, 2],
            &[0xff, 0x03, 0x00, 0x21],
            &inner_tcp(),
        ]
        .concat();
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_inner(&d, TunnelKind::Gre, Some(0x1234));
    }

    #[test]
    fn gre_unknown_payload_stays_outer() {
        let gre = [0x00, 0x00, 0x12, 0x34, 1, 2, 3];
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.l4, L4::Other(47));
        assert_eq!(d.tunnel, None);
        assert_eq!(d.ip.unwrap().src, IpAddr::from([192, 0, 2, 1]));
        let frame = outer_ip(47, &[0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0]);
        let d = dec(1, &frame);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Gre, Malformation::Unsupported)
        );
        let frame = outer_ip(47, &[0x00, 0x03, 0x08, 0x00]);
        let d = dec(1, &frame);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Gre, Malformation::BadVersion)
        );
        let frame = outer_ip(47, &[0x20, 0x00, 0x08, 0x00, 0, 0]);
        let d = dec(1, &frame);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Gre));
    }

    #[test]
    fn erspan_type_i() {
        let inner = eth(
            0x8100,
            &[&vlan_tag(1011, 0x0800)[..], &inner_tcp()].concat(),
        );
        let gre = [&[0x00, 0x00, 0x88, 0xbe][..], &inner].concat();
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_inner(&d, TunnelKind::ErspanI, None);
        assert_eq!(d.vlans.as_slice(), &[1011]);
    }

    #[test]
    fn erspan_type_ii_vlan_and_session() {
        let inner = eth(0x0800, &inner_tcp());
        // version 1, vlan 23; cos 0, en 0, t 0, session 100.
        let hdr = [0x10, 23, 0x00, 100, 0, 0, 0, 0];
        let gre = [&[0x10, 0x00, 0x88, 0xbe][..], &[0, 0, 0, 1], &hdr, &inner].concat();
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_inner(&d, TunnelKind::ErspanII, Some(100));
        assert_eq!(d.vlans.as_slice(), &[23]);
        // Encapsulation type 3: the tag is in the frame, not pushed twice.
        let inner = eth(0x8100, &[&vlan_tag(23, 0x0800)[..], &inner_tcp()].concat());
        let hdr = [0x10, 23, 0x18, 100, 0, 0, 0, 0];
        let gre = [&[0x10, 0x00, 0x88, 0xbe][..], &[0, 0, 0, 1], &hdr, &inner].concat();
        assert_eq!(dec(1, &outer_ip(47, &gre)).vlans.as_slice(), &[23]);
        // Wrong version.
        let hdr = [0x20, 23, 0x00, 100, 0, 0, 0, 0];
        let gre = [&[0x10, 0x00, 0x88, 0xbe][..], &[0, 0, 0, 1], &hdr, &inner].concat();
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Erspan, Malformation::BadVersion)
        );
        assert_eq!(d.l4, L4::Other(47));
    }

    #[test]
    fn erspan_type_iii_with_and_without_subheader() {
        let inner = eth(0x0800, &inner_tcp());
        let hdr = [0x20, 0x00, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0x00, 0x00];
        let gre = [&[0x10, 0x00, 0x22, 0xeb][..], &[0, 0, 0, 1], &hdr, &inner].concat();
        assert_inner(&dec(1, &outer_ip(47, &gre)), TunnelKind::ErspanIII, Some(7));
        let hdr = [0x20, 0x00, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0x00, 0x01];
        let gre = [
            &[0x10, 0x00, 0x22, 0xeb][..],
            &[0, 0, 0, 1],
            &hdr,
            &[0u8; 8],
            &inner,
        ]
        .concat();
        assert_inner(&dec(1, &outer_ip(47, &gre)), TunnelKind::ErspanIII, Some(7));
    }

    #[test]
    fn erspan_inner_non_ip_keeps_the_outer_packet() {
        // CDP over LLC inside ERSPAN II: the GRE packet stays the result.
        let inner = eth(40, &[0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x20, 0x00]);
        let hdr = [0x10, 23, 0x00, 100, 0, 0, 0, 0];
        let gre = [&[0x10, 0x00, 0x88, 0xbe][..], &[0, 0, 0, 1], &hdr, &inner].concat();
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.tunnel, None);
        assert_eq!(d.l4, L4::Other(47));
        assert!(d.vlans.is_empty());
        assert_eq!(d.macs, Some((SRC_MAC, DST_MAC)));
    }

    #[test]
    fn ip_in_ip_all_four() {
        let v4 = inner_tcp();
        let v6 = ipv6_tcp([0x20; 16], [0x21; 16], 5555, 80, b"inner");
        for (outer_v6, inner_v6) in [(false, false), (false, true), (true, false), (true, true)] {
            let (proto, inner) = if inner_v6 { (41, &v6) } else { (4, &v4) };
            let f = if outer_v6 {
                eth(0x86dd, &ipv6_raw([1; 16], [2; 16], proto, inner))
            } else {
                outer_ip(proto, inner)
            };
            let d = dec(1, &f);
            assert_eq!(d.status, DecodeStatus::Ok);
            assert_eq!(d.tunnel.unwrap().kind, TunnelKind::IpInIp);
            assert_eq!(d.tunnel.unwrap().outer_proto, proto);
            assert_eq!(d.ip.unwrap().version, if inner_v6 { 6 } else { 4 });
            assert_eq!(d.payload, b"inner");
        }
    }

    #[test]
    fn vxlan_keeps_outer_ports_and_vni() {
        let inner = eth_with_macs([3; 6], [4; 6], 0x0800, &inner_tcp());
        let vx = [&[0x08, 0, 0, 0, 0x00, 0x04, 0x57, 0x00][..], &inner].concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 50000, 4789, &vx),
        );
        let d = dec(1, &f);
        assert_inner(&d, TunnelKind::Vxlan, Some(1111));
        assert_eq!(d.tunnel.unwrap().outer_ports, (50000, 4789));
        assert_eq!(d.tunnel.unwrap().outer_proto, 17);
        assert_eq!(d.macs, Some(([3; 6], [4; 6])));
        // I flag missing: plain UDP.
        let vx = [&[0x00, 0, 0, 0, 0x00, 0x04, 0x57, 0x00][..], &inner].concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 50000, 4789, &vx),
        );
        let d = dec(1, &f);
        assert_eq!(d.tunnel, None);
        assert!(matches!(d.l4, L4::Udp(_)));
    }

    #[test]
    fn vxlan_inner_arp_keeps_outer_udp() {
        let inner = eth(0x0806, &[0u8; 28]);
        let vx = [&[0x08, 0, 0, 0, 0, 0, 1, 0][..], &inner].concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 1, 4789, &vx),
        );
        let d = dec(1, &f);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.tunnel, None);
        assert_eq!(d.macs, Some((SRC_MAC, DST_MAC)));
        assert!(matches!(d.l4, L4::Udp(UdpHeader { dst_port: 4789, .. })));
    }

    #[test]
    fn vxlan_inner_cut_is_reported_with_outer_kept() {
        let inner = eth(0x0800, &inner_tcp());
        let vx = [&[0x08, 0, 0, 0, 0, 0, 1, 0][..], &inner].concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 1, 4789, &vx),
        );
        let d = dec(1, &f[..14 + 20 + 8 + 8 + 14 + 10]);
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Ipv4));
        assert!(matches!(d.l4, L4::Udp(_)));
        assert_eq!(d.ip.unwrap().src, IpAddr::from([192, 0, 2, 1]));
    }

    #[test]
    fn geneve_with_options() {
        let inner = eth(0x0800, &inner_tcp());
        let gen = [
            &[0x02, 0x00, 0x65, 0x58, 0x00, 0x00, 0x2a, 0x00][..],
            &[0u8; 8],
            &inner,
        ]
        .concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 1, 6081, &gen),
        );
        assert_inner(&dec(1, &f), TunnelKind::Geneve, Some(42));
        let gen = [
            &[0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x2a, 0x00][..],
            &inner_tcp(),
        ]
        .concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 1, 6081, &gen),
        );
        assert_inner(&dec(1, &f), TunnelKind::Geneve, Some(42));
    }

    #[test]
    fn gtpu_gpdu_with_extension_header() {
        let gtp = [
            &[0x34, 0xff, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef][..],
            &[0x00, 0x00, 0x00, 0x85],
            &[0x01, 0x00, 0x05, 0x00],
            &inner_tcp(),
        ]
        .concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 2152, 2152, &gtp),
        );
        assert_inner(&dec(1, &f), TunnelKind::GtpU, Some(0xdead_beef));
        // Echo request: plain UDP.
        let echo = [0x32, 0x01, 0x00, 0x04, 0, 0, 0, 0, 0, 1, 0, 0];
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 2152, 2152, &echo),
        );
        assert_eq!(dec(1, &f).tunnel, None);
    }

    #[test]
    fn teredo_only_when_it_is_ipv6() {
        let v6 = ipv6_udp([0x20; 16], [0x21; 16], 1, 53, b"inner");
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 3544, 40000, &v6),
        );
        let d = dec(1, &f);
        assert_eq!(d.tunnel.unwrap().kind, TunnelKind::Teredo);
        assert_eq!(d.ip.unwrap().version, 6);
        assert_eq!(d.payload, b"inner");
        // With origin indication.
        let with_origin = [&[0, 0, 0x12, 0x34, 1, 2, 3, 4][..], &v6].concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 3544, 40000, &with_origin),
        );
        assert_eq!(dec(1, &f).tunnel.unwrap().kind, TunnelKind::Teredo);
        // Authentication (qualification with the server): plain UDP.
        let with_auth = [&[0, 1, 0, 0][..], &[0u8; 9], &v6].concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 3544, 40000, &with_auth),
        );
        assert_eq!(dec(1, &f).tunnel, None);
        // Something else on port 3544, or an IPv6 length that does not match.
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 3544, 40000, &[0x60; 60]),
        );
        let d = dec(1, &f);
        assert_eq!(d.tunnel, None);
        assert_eq!(d.status, DecodeStatus::Ok);
    }

    #[test]
    fn tunnel_config_switches() {
        let inner = eth(0x0800, &inner_tcp());
        let vx = [&[0x08, 0, 0, 0, 0, 0, 1, 0][..], &inner].concat();
        let f = eth(
            0x0800,
            &ipv4_udp([192, 0, 2, 1], [192, 0, 2, 2], 1, 4789, &vx),
        );
        let cfg = DecodeConfig {
            vxlan_port: 0,
            ..DecodeConfig::default()
        };
        let mut d = Decoded::default();
        decode(1, &f, &cfg, &mut d);
        assert_eq!(d.tunnel, None);
        let cfg = DecodeConfig {
            max_tunnel_depth: 0,
            ..DecodeConfig::default()
        };
        decode(1, &f, &cfg, &mut d);
        assert_eq!(d.tunnel, None);
        assert_eq!(d.status, DecodeStatus::Ok);
    }

    #[test]
    fn nested_tunnels_record_the_outermost() {
        // IPv4 / GRE(key 9) / IPv4 / UDP / VXLAN(5) / Ethernet / IPv4 / TCP
        let vx_inner = eth(0x0800, &inner_tcp());
        let vx = [&[0x08, 0, 0, 0, 0, 0, 5, 0][..], &vx_inner].concat();
        let mid = ipv4_udp([172, 16, 0, 1], [172, 16, 0, 2], 1, 4789, &vx);
        let gre = [&[0x20, 0x00, 0x08, 0x00][..], &9u32.to_be_bytes(), &mid].concat();
        let frame = outer_ip(47, &gre);
        let d = dec(1, &frame);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.tunnel_depth, 2);
        let t = d.tunnel.unwrap();
        assert_eq!((t.kind, t.id), (TunnelKind::Gre, Some(9)));
        assert_eq!(d.payload, b"inner");
    }

    #[test]
    fn too_many_tunnels() {
        let mut pkt = inner_tcp();
        for _ in 0..5 {
            pkt = ipv4_raw([192, 0, 2, 1], [192, 0, 2, 2], 4, &pkt);
        }
        let d = dec(101, &pkt);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Ipv4, Malformation::TooDeep)
        );
        assert_eq!(d.tunnel_depth, 4);
        assert_eq!(d.l4, L4::Other(4));
    }
}
