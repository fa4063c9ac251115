//! MPLS label stacks. MPLS does not say what it carries, so after the
//! bottom of the stack the reserved labels and then the first nibble decide:
//! 4 IPv4, 6 IPv6, 0 an Ethernet pseudowire behind a control word (RFC 4385).

use super::bytes::{tail, u32_at};
use super::ethernet::ETH_MPLS;
use super::{stop, DecodeStatus, Decoded, Decoder, Layer, Step};

const LABEL_IPV4_EXPLICIT_NULL: u32 = 0;
const LABEL_IPV6_EXPLICIT_NULL: u32 = 2;

pub(crate) fn mpls<'a>(d: &mut Decoder<'_>, mut b: &'a [u8], out: &mut Decoded<'a>) -> Step<'a> {
    let label = loop {
        let Some(entry) = u32_at(b, 0) else {
            return stop(out, DecodeStatus::Truncated(Layer::Mpls));
        };
        out.mpls_labels = out.mpls_labels.saturating_add(1);
        b = tail(b, 4);
        if entry & 0x100 != 0 {
            break entry >> 12;
        }
    };
    match label {
        LABEL_IPV4_EXPLICIT_NULL => return Step::Ipv4(b),
        LABEL_IPV6_EXPLICIT_NULL => return Step::Ipv6(b),
        _ => {}
    }
    match b.first().map(|v| v >> 4) {
        Some(4) => Step::Ipv4(b),
        Some(6) => Step::Ipv6(b),
        Some(0) => {
            if b.len() < 4 {
                return stop(out, DecodeStatus::Truncated(Layer::Mpls));
            }
            if !d.enter(out, None, None, Layer::Mpls) {
                return Step::Done;
            }
            Step::Ethernet(tail(b, 4))
        }
        Some(_) => stop(out, DecodeStatus::NotIp(ETH_MPLS)),
        None => stop(out, DecodeStatus::Truncated(Layer::Mpls)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;

    fn label(l: u32, bottom: bool) -> [u8; 4] {
        ((l << 12) | (u32::from(bottom) << 8) | 64).to_be_bytes()
    }

    #[test]
    fn label_stack_then_ipv4_or_ipv6() {
        let ip = ipv4_tcp([1; 4], [2; 4], 1, 80, b"x");
        let f = eth(
            0x8847,
            &[
                &label(100, false)[..],
                &label(200, false),
                &label(300, true),
                &ip,
            ]
            .concat(),
        );
        let d = dec(1, &f);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.mpls_labels, 3);
        assert_eq!(d.payload, b"x");
        let ip6 = ipv6_udp([1; 16], [2; 16], 1, 2, b"y");
        let f = eth(0x8847, &[&label(16, true)[..], &ip6].concat());
        assert_eq!(dec(1, &f).ip.map(|i| i.version), Some(6));
    }

    #[test]
    fn explicit_null_labels_decide_the_version() {
        let ip6 = ipv6_udp([1; 16], [2; 16], 1, 2, b"y");
        let f = eth(0x8847, &[&label(2, true)[..], &ip6].concat());
        assert_eq!(dec(1, &f).ip.map(|i| i.version), Some(6));
    }

    #[test]
    fn ethernet_pseudowire_with_control_word() {
        let inner = eth(0x0800, &ipv4_udp([10, 1, 1, 1], [10, 1, 1, 2], 7, 8, b"pw"));
        let f = eth(
            0x8847,
            &[&label(1000, true)[..], &[0, 0, 0, 0], &inner].concat(),
        );
        let d = dec(1, &f);
        assert_eq!(d.status, DecodeStatus::Ok);
        assert_eq!(d.payload, b"pw");
        assert_eq!(d.tunnel_depth, 1);
        assert_eq!(d.tunnel, None);
        assert_eq!(d.macs, Some((SRC_MAC, DST_MAC)));
    }

    #[test]
    fn nested_pseudowires_stop_at_the_depth_limit() {
        let mut f = eth(0x0800, &ipv4_udp([1; 4], [2; 4], 1, 2, b""));
        for _ in 0..6 {
            f = eth(
                0x8847,
                &[&label(1000, true)[..], &[0, 0, 0, 0], &f].concat(),
            );
        }
        let d = dec(1, &f);
        assert_eq!(
            d.status,
            DecodeStatus::Malformed(Layer::Mpls, Malformation::TooDeep)
        );
        assert!(d.ip.is_none());
    }

    #[test]
    fn cut_or_unknown_payload() {
        let f = eth(0x8847, &label(5, false));
        assert_eq!(dec(1, &f).status, DecodeStatus::Truncated(Layer::Mpls));
        let f = eth(0x8847, &[&label(5, true)[..], &[0x90, 0, 0]].concat());
        assert_eq!(dec(1, &f).status, DecodeStatus::NotIp(0x8847));
        let f = eth(0x8847, &label(5, true));
        assert_eq!(dec(1, &f).status, DecodeStatus::Truncated(Layer::Mpls));
    }
}
