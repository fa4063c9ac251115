//! L2–L4 decoding of one captured frame into a [`Decoded`] view: zero-copy,
//! no allocation, no panic on any input.
//!
//! Decoding is a loop over [`Step`]s rather than recursion, so nested
//! encapsulations cost no stack and their number is bounded only by
//! `DecodeConfig::max_tunnel_depth` (every step consumes bytes, so the loop
//! ends on any input).
//!
//! A snaplen-cut frame decodes laxly: what parsed is kept and `status` says
//! where the capture ended.

use std::net::IpAddr;

mod bytes;
mod decoded;
mod ethernet;
mod ip;
mod link;
mod mpls;
mod transport;
mod tunnel;

#[cfg(test)]
pub(crate) mod testutil;

pub use decoded::{
    DecodeConfig, DecodeStatus, Decoded, Detached, Fragment, IpHeader, Layer, Malformation,
    TcpHeader, Tunnel, TunnelKind, UdpHeader, Vlans, L4,
};

/// Decodes one frame of pcap link type `link` (LINKTYPE_* number) into `out`,
/// which is reset first.
///
/// Link types: 0/108 BSD NULL/LOOP (either byte order), 1 Ethernet,
/// 9/50 PPP, 101/228/229 raw IP, 104 Cisco HDLC, 113 Linux SLL, 276 Linux SLL2.
pub fn decode<'a>(link: u32, frame: &'a [u8], cfg: &DecodeConfig, out: &mut Decoded<'a>) {
    out.reset();
    decode_fresh(link, frame, cfg, out);
}

/// [`decode`] into a fresh `out` (`Decoded::default()`, not reset again:
/// clearing the ~200-byte decode twice per packet showed in the profile).
#[inline]
pub fn decode_fresh<'a>(link: u32, frame: &'a [u8], cfg: &DecodeConfig, out: &mut Decoded<'a>) {
    if link == link::LINKTYPE_ETHERNET && ip::ethernet_ipv4_tcp(frame, out) {
        return;
    }
    decode_general(link, frame, cfg, out);
}

/// [`decode`] without its shortcut for untagged Ethernet/IPv4/TCP frames:
/// the reference the shortcut is tested against (`out` must be fresh).
#[doc(hidden)]
pub fn decode_general<'a>(link: u32, frame: &'a [u8], cfg: &DecodeConfig, out: &mut Decoded<'a>) {
    let step = match link::first_step(link, frame) {
        Some(step) => step,
        None => {
            out.status = DecodeStatus::UnsupportedLink(link);
            return;
        }
    };
    Decoder::new(cfg, 0).run(step, out);
}

/// [`quick_ip_pair`] of the most common frame, as big-endian words:
/// untagged Ethernet carrying IPv4 without options whose protocol is TCP
/// (a fragment or not: either way no tunnel follows). `None`: ask
/// [`quick_ip_pair`].
#[inline(always)]
pub fn quick_ipv4_tcp_pair(link: u32, frame: &[u8]) -> Option<(u32, u32)> {
    let h = frame.first_chunk::<34>()?;
    // The checks of `quick_ip_pair` for this frame: a total length of 0
    // means "the rest of the frame" (at least 20 bytes here).
    let total_len = u16::from_be_bytes([h[16], h[17]]);
    let plain = link == link::LINKTYPE_ETHERNET
        && h[12..14] == [0x08, 0x00]
        && h[14] == 0x45
        && h[23] == transport::PROTO_TCP
        && (total_len == 0 || total_len >= 20);
    plain.then(|| {
        (
            u32::from_be_bytes([h[26], h[27], h[28], h[29]]),
            u32::from_be_bytes([h[30], h[31], h[32], h[33]]),
        )
    })
}

/// The innermost IP addresses of a frame, as [`decode`] with `cfg` would
/// find them, when they can be read without decoding it: Ethernet (VLAN
/// tags allowed) carrying IPv4 or IPv6 whose next protocol is TCP or ICMP,
/// which no encapsulation [`decode`] reads can follow, or UDP on ports
/// that carry none under `cfg` (and any IPv4 fragment: [`decode`] stops
/// at it). `None`: decode the frame. (A replay worker finds the owner of
/// the packets it sorts this way.)
pub fn quick_ip_pair(link: u32, frame: &[u8], cfg: &DecodeConfig) -> Option<(IpAddr, IpAddr)> {
    if link != link::LINKTYPE_ETHERNET {
        return None;
    }
    let mut ty = bytes::u16_at(frame, 12)?;
    let mut at = 14;
    while matches!(
        ty,
        ethernet::ETH_VLAN | ethernet::ETH_QINQ | ethernet::ETH_QINQ_OLD | ethernet::ETH_QINQ_OLD2
    ) {
        ty = bytes::u16_at(frame, at + 2)?;
        at += 4;
    }
    let b = tail(frame, at);
    match ty {
        ethernet::ETH_IPV4 => {
            // The checks after which `ip::ipv4` sets the IP header.
            let h = bytes::array_at::<20>(b, 0)?;
            let header_len = usize::from(h[0] & 0x0f) * 4;
            let total_len = match usize::from(u16::from_be_bytes([h[2], h[3]])) {
                0 => b.len(),
                n => n,
            };
            // A fragment ends the decode whatever it carries.
            let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
            let ok = h[0] >> 4 == 4
                && header_len >= 20
                && b.len() >= header_len
                && total_len >= header_len
                && (fragment || plain_l4(cfg, h[9], transport::PROTO_ICMP, tail(b, header_len)));
            ok.then(|| {
                (
                    IpAddr::from([h[12], h[13], h[14], h[15]]),
                    IpAddr::from([h[16], h[17], h[18], h[19]]),
                )
            })
        }
        ethernet::ETH_IPV6 => {
            let h = bytes::array_at::<40>(b, 0)?;
            let src = bytes::array_at::<16>(&h, 8)?;
            let dst = bytes::array_at::<16>(&h, 24)?;
            let ok = h[0] >> 4 == 6 && plain_l4(cfg, h[6], transport::PROTO_ICMPV6, tail(b, 40));
            ok.then(|| (IpAddr::from(src), IpAddr::from(dst)))
        }
        _ => None,
    }
}

/// Whether what follows an IP header (`l4`, protocol `proto`) holds no
/// tunnel [`decode`] with `cfg` follows: TCP, the IP version's ICMP
/// (`icmp`), or UDP whose ports carry none (ports cut short: decode, it
/// stops there).
#[inline(always)]
fn plain_l4(cfg: &DecodeConfig, proto: u8, icmp: u8, l4: &[u8]) -> bool {
    if proto == transport::PROTO_TCP || proto == icmp {
        return true;
    }
    proto == transport::PROTO_UDP
        && bytes::array_at::<4>(l4, 0).is_some_and(|p| {
            let src = u16::from_be_bytes([p[0], p[1]]);
            let dst = u16::from_be_bytes([p[2], p[3]]);
            !tunnel::udp_may_carry(cfg, src, dst)
        })
}

/// Whether [`decode`] reads frames of pcap link type `link`; the others
/// are counted as undecodable (`UnsupportedLink`).
pub fn link_supported(link: u32) -> bool {
    link::first_step(link, &[]).is_some()
}

/// The link types [`decode`] reads, as a list for messages.
pub const SUPPORTED_LINKS: &str = "0/108 BSD loopback, 1 Ethernet, 9/50 PPP, 101/228/229 raw IP, 104 Cisco HDLC, 113/276 Linux cooked (SLL/SLL2)";

/// Continues decoding after a reassembled IP fragment set: `payload` is the
/// reassembled IP payload of protocol `proto`. Outer metadata (macs, vlans,
/// tunnel, IP addresses/version/ttl) is copied from `outer`; `ip.frag`
/// becomes `None`. For IPv6, `proto` may be an extension header that
/// followed the fragment header; it is walked like any other.
pub fn decode_ip_payload<'a>(
    outer: &Decoded<'_>,
    proto: u8,
    payload: &'a [u8],
    cfg: &DecodeConfig,
    out: &mut Decoded<'a>,
) {
    out.reset();
    out.macs = outer.macs;
    out.vlans = outer.vlans;
    out.mpls_labels = outer.mpls_labels;
    out.tunnel = outer.tunnel;
    out.tunnel_depth = outer.tunnel_depth;
    let Some(mut header) = outer.ip else {
        out.status = DecodeStatus::NotIp(0);
        return;
    };
    header.frag = None;
    let (proto, data) = if header.version == 6 {
        let ext = ip::walk_ipv6_ext(proto, payload, payload.len());
        if let Some(status) = ext.stopped {
            out.note(status);
        }
        (ext.proto, tail(payload, ext.len))
    } else {
        (proto, payload)
    };
    let ext_len = payload.len() - data.len();
    header.proto = proto;
    header.header_len = header
        .header_len
        .saturating_add(u16::try_from(ext_len).unwrap_or(u16::MAX));
    header.total_len =
        u32::from(header.header_len).saturating_add(u32::try_from(data.len()).unwrap_or(u32::MAX));
    out.ip = Some(header);
    out.ip_payload = data;
    if !out.status.is_ok() {
        return;
    }
    Decoder::new(cfg, outer.tunnel_depth).run(Step::Transport(proto, data, data.len()), out);
}

use bytes::tail;

/// The next thing to decode.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step<'a> {
    /// An Ethernet header starts here.
    Ethernet(&'a [u8]),
    /// An ethertype was read; the bytes after it.
    EtherType(u16, &'a [u8]),
    /// An IP header whose version decides (raw IP, MPLS, GTP-U).
    Ip(&'a [u8]),
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
    Mpls(&'a [u8]),
    /// PPP, at the optional address/control bytes or the protocol field.
    Ppp(&'a [u8]),
    /// After an IP header: protocol, payload as captured, payload length the
    /// IP header declares (larger than the slice when the capture was cut).
    Transport(u8, &'a [u8], usize),
    /// Decoding ends with this status (a link header that was cut, ...).
    Stop(DecodeStatus),
    Done,
}

/// Per-frame decoding state that is not part of the result.
pub(crate) struct Decoder<'c> {
    pub(crate) cfg: &'c DecodeConfig,
    /// Encapsulations entered so far.
    depth: u8,
    /// The outermost tunnel, recorded when entered and committed to
    /// `Decoded::tunnel` only once its inner IP header parses.
    pending: Option<Tunnel>,
    /// Link metadata from before the first encapsulation not yet resolved to
    /// an IP header; restored if none is reached.
    saved_link: Option<(Vlans, Option<MacPair>)>,
}

/// (src, dst) MAC addresses.
type MacPair = ([u8; 6], [u8; 6]);

/// Sets a status that ends decoding.
#[inline]
pub(crate) fn stop<'a>(out: &mut Decoded<'_>, status: DecodeStatus) -> Step<'a> {
    out.status = status;
    Step::Done
}

impl<'c> Decoder<'c> {
    pub(crate) fn new(cfg: &'c DecodeConfig, depth: u8) -> Self {
        Decoder {
            cfg,
            depth,
            pending: None,
            saved_link: None,
        }
    }

    pub(crate) fn run<'a>(&mut self, mut step: Step<'a>, out: &mut Decoded<'a>) {
        loop {
            step = match step {
                Step::Ethernet(b) => ethernet::ethernet(b, out),
                Step::EtherType(ty, b) => ethernet::ethertype(ty, b, out),
                Step::Ip(b) => ip::by_version(b, out),
                Step::Ipv4(b) => ip::ipv4(self, b, out),
                Step::Ipv6(b) => ip::ipv6(self, b, out),
                Step::Mpls(b) => mpls::mpls(self, b, out),
                Step::Ppp(b) => link::ppp(b, out),
                Step::Transport(proto, b, declared) => {
                    transport::transport(self, proto, b, declared, out)
                }
                Step::Stop(status) => stop(out, status),
                Step::Done => break,
            };
        }
        if let Some((vlans, macs)) = self.saved_link.take() {
            // The last encapsulation led to no IP packet: the outer packet
            // stays the result, described by its own link metadata.
            out.vlans = vlans;
            out.macs = macs;
            if out.ip.is_some() && matches!(out.status, DecodeStatus::NotIp(_)) {
                out.status = DecodeStatus::Ok;
            }
        }
    }

    /// Called before entering an encapsulation whose header was valid.
    /// Returns false (and maybe sets `TooDeep`) when it must not be entered.
    pub(crate) fn enter(
        &mut self,
        out: &mut Decoded<'_>,
        kind: Option<TunnelKind>,
        id: Option<u32>,
        layer: Layer,
    ) -> bool {
        let max = self.cfg.max_tunnel_depth;
        if max == 0 {
            return false;
        }
        if self.depth >= max {
            out.status = DecodeStatus::Malformed(layer, Malformation::TooDeep);
            return false;
        }
        self.depth += 1;
        if self.saved_link.is_none() {
            self.saved_link = Some((out.vlans, out.macs));
        }
        if let (Some(kind), Some(ip), None, None) = (kind, out.ip, out.tunnel, self.pending) {
            let outer_ports = match out.l4 {
                L4::Udp(u) => (u.src_port, u.dst_port),
                _ => (0, 0),
            };
            self.pending = Some(Tunnel {
                kind,
                outer_src: ip.src,
                outer_dst: ip.dst,
                id,
                outer_proto: ip.proto,
                outer_ports,
            });
        }
        true
    }

    /// Called when an IP header parsed: everything entered so far is resolved.
    #[inline]
    pub(crate) fn reached_ip(&mut self, out: &mut Decoded<'_>) {
        out.tunnel_depth = self.depth;
        if let Some(t) = self.pending.take() {
            out.tunnel.get_or_insert(t);
        }
        self.saved_link = None;
    }
}

#[cfg(test)]
mod tests;
