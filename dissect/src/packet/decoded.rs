//! What the decoder produces: plain `Copy` values and borrowed slices into
//! the frame. Nothing here allocates.

use std::net::{IpAddr, Ipv4Addr};

/// How far to look into a frame. `Default` is what a mirror port usually needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeConfig {
    /// UDP destination port of VXLAN; 0 turns VXLAN decapsulation off.
    pub vxlan_port: u16,
    /// UDP destination port of GENEVE; 0 turns GENEVE decapsulation off.
    pub geneve_port: u16,
    /// UDP port (source or destination) of Teredo; `None` turns it off.
    /// (GTP-U is always decoded on its registered port 2152, source or
    /// destination, and only for G-PDU messages carrying IP.)
    pub teredo_port: Option<u16>,
    /// Encapsulations (IP tunnels and MPLS pseudowires) decoded at most; one
    /// more is `Malformed(_, TooDeep)`. 0 turns decapsulation off altogether.
    pub max_tunnel_depth: u8,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            vxlan_port: 4789,
            geneve_port: 6081,
            teredo_port: Some(3544),
            max_tunnel_depth: 4,
        }
    }
}

/// One decoded frame. Fields describe the innermost IP packet that parsed;
/// `status` says whether and where decoding stopped early.
///
/// When a tunnel's inner frame holds no IP (ARP, CDP, a cut header), `ip`,
/// `l4` and `payload` keep describing the outer packet, `tunnel` stays `None`
/// and `macs`/`vlans` are those of the outer frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// (src, dst) of the innermost Ethernet header seen.
    pub macs: Option<([u8; 6], [u8; 6])>,
    /// VLAN ids in the order seen (outer first), all layers, the first 3 kept.
    /// An ERSPAN header's VLAN counts as a tag of the mirrored frame.
    pub vlans: Vlans,
    /// MPLS labels seen (saturating).
    pub mpls_labels: u8,
    /// Outermost encapsulation whose inner IP packet was reached.
    pub tunnel: Option<Tunnel>,
    /// Encapsulations passed to reach `ip`, including MPLS pseudowires (which
    /// have no IP outer header and so no `tunnel` record of their own).
    pub tunnel_depth: u8,
    /// Innermost IP header.
    pub ip: Option<IpHeader>,
    /// Bytes after the innermost IP header and its IPv6 extension headers,
    /// clamped to the IP length and to what was captured. For a fragment:
    /// the fragment's data, what defragmentation needs.
    pub ip_payload: &'a [u8],
    pub l4: L4,
    /// L4 payload (TCP/UDP/SCTP data, ICMP body after its 8-byte header) as
    /// captured, without Ethernet padding.
    pub payload: &'a [u8],
    pub status: DecodeStatus,
}

impl Decoded<'_> {
    /// Back to the state of a fresh `Decoded`; `decode` does this itself.
    #[inline]
    pub fn reset(&mut self) {
        *self = Decoded::default();
    }

    /// True when the innermost IP packet is a fragment (not the whole datagram).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        matches!(self.ip, Some(IpHeader { frag: Some(_), .. }))
    }

    /// A problem that does not stop decoding is recorded only if nothing
    /// else was; a later stop overwrites it.
    #[inline]
    pub(crate) fn note(&mut self, status: DecodeStatus) {
        if self.status == DecodeStatus::Ok {
            self.status = status;
        }
    }
}

/// A [`Decoded`] that names its two slices by position in the frame instead
/// of borrowing them, so that it can travel with a copy of the frame (to the
/// worker that owns the packet) and be attached to that copy without
/// decoding again: `d.detach(frame).attach(copy) == d` when `copy` holds the
/// same bytes as `frame`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Detached {
    /// Everything but the slices (which are empty here).
    head: Decoded<'static>,
    /// (start, length) of `ip_payload` and `payload` in the frame.
    ip_payload: (u32, u32),
    payload: (u32, u32),
}

impl<'a> Decoded<'a> {
    /// This decode of `frame` without the borrow. A slice that does not lie
    /// in `frame` (a reassembled payload) comes back empty.
    pub fn detach(&self, frame: &'a [u8]) -> Detached {
        Detached {
            head: Decoded {
                macs: self.macs,
                vlans: self.vlans,
                mpls_labels: self.mpls_labels,
                tunnel: self.tunnel,
                tunnel_depth: self.tunnel_depth,
                ip: self.ip,
                ip_payload: &[],
                l4: self.l4,
                payload: &[],
                status: self.status,
            },
            ip_payload: span_in(frame, self.ip_payload),
            payload: span_in(frame, self.payload),
        }
    }
}

impl Detached {
    /// The decode again, its slices taken from `frame` (a copy of the frame
    /// it was detached from; a shorter one gives empty slices).
    #[inline]
    pub fn attach<'f>(&self, frame: &'f [u8]) -> Decoded<'f> {
        Decoded {
            ip_payload: slice_at(frame, self.ip_payload),
            payload: slice_at(frame, self.payload),
            ..self.head
        }
    }
}

/// Where `part` lies in `frame` (an empty one too): (0, 0) when outside it.
#[inline]
fn span_in(frame: &[u8], part: &[u8]) -> (u32, u32) {
    let start = (part.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    match (u32::try_from(start), u32::try_from(part.len())) {
        (Ok(s), Ok(n)) if frame.len().checked_sub(start) >= Some(part.len()) => (s, n),
        _ => (0, 0),
    }
}

#[inline]
fn slice_at(frame: &[u8], (start, len): (u32, u32)) -> &[u8] {
    let start = start as usize;
    frame.get(start..start + len as usize).unwrap_or(&[])
}

/// Up to three VLAN ids, outer first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Vlans {
    ids: [u16; 3],
    len: u8,
}

impl Vlans {
    pub const MAX: usize = 3;

    #[inline]
    pub fn as_slice(&self) -> &[u16] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Adds an id; ids past the third are dropped (the outer ones are kept).
    #[inline]
    pub fn push(&mut self, id: u16) {
        if let Some(slot) = self.ids.get_mut(usize::from(self.len)) {
            *slot = id;
            self.len += 1;
        }
    }

    /// The last id kept, the one a flow key uses.
    #[inline]
    pub fn innermost(&self) -> Option<u16> {
        self.as_slice().last().copied()
    }

    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The outer side of an encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
    /// VNI (VXLAN, GENEVE), ERSPAN session id, GRE key (PPTP call id), GTP TEID.
    pub id: Option<u32>,
    /// IP protocol of the outer packet (47 GRE, 17 UDP, 4/41 IP-in-IP).
    pub outer_proto: u8,
    /// Outer UDP (src, dst) ports; (0, 0) when the outer is not UDP.
    pub outer_ports: (u16, u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelKind {
    Gre,
    ErspanI,
    ErspanII,
    ErspanIII,
    Vxlan,
    Geneve,
    /// 4in4, 6in4, 4in6, 6in6.
    IpInIp,
    Teredo,
    GtpU,
}

impl TunnelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::ErspanI => "erspan1",
            TunnelKind::ErspanII => "erspan2",
            TunnelKind::ErspanIII => "erspan3",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::IpInIp => "ipip",
            TunnelKind::Teredo => "teredo",
            TunnelKind::GtpU => "gtpu",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
    /// 4 or 6.
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Final L4 protocol, after IPv6 extension headers.
    pub proto: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Bytes of the whole IP packet as its header says (not as captured).
    pub total_len: u32,
    /// IPv4 header with options, or IPv6 header plus the extension headers
    /// before `ip_payload`.
    pub header_len: u16,
    /// `Some` only for a real fragment (more fragments follow, or offset > 0);
    /// an IPv6 atomic fragment header is skipped.
    pub frag: Option<Fragment>,
}

impl Default for IpHeader {
    fn default() -> Self {
        IpHeader {
            version: 4,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            proto: 0,
            ttl: 0,
            total_len: 0,
            header_len: 0,
            frag: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification.
    pub id: u32,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u32,
    pub more: bool,
}

/// The innermost transport header. `None` for fragments and when the IP
/// payload was cut before the ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L4 {
    #[default]
    None,
    Tcp(TcpHeader),
    Udp(UdpHeader),
    Icmp {
        ty: u8,
        code: u8,
    },
    Icmpv6 {
        ty: u8,
        code: u8,
    },
    Sctp {
        src_port: u16,
        dst_port: u16,
    },
    /// Any other IP protocol (GRE not decapsulated, ESP, OSPF, ...).
    Other(u8),
}

/// With `status == Truncated(Layer::Tcp)` only the fields whose bytes were
/// captured are set (ports always); the others are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// CWR ECE URG ACK PSH RST SYN FIN, high to low bit.
    pub flags: u8,
    pub window: u16,
    /// Data offset in bytes (20..=60).
    pub header_len: u8,
}

impl TcpHeader {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    /// The length field (header + data) as sent.
    pub length: u16,
}

/// Where and why decoding stopped. Whatever parsed before stays in `Decoded`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DecodeStatus {
    #[default]
    Ok,
    /// The capture ended inside this layer (snaplen). `Layer::Payload`: all
    /// headers are whole, only the L4 payload is short of the IP length.
    Truncated(Layer),
    /// A header is inconsistent; fields read before the problem are kept.
    Malformed(Layer, Malformation),
    /// No IP layer: the link-level protocol found instead (ethertype, the
    /// 802.3 length of an LLC frame, a PPP protocol, or a BSD address family).
    NotIp(u16),
    /// The pcap LINKTYPE number given to `decode`.
    UnsupportedLink(u32),
}

impl DecodeStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, DecodeStatus::Ok)
    }

    /// Short stable name, for counters: "ok", "truncated", "malformed", "not_ip", "unsupported_link".
    pub fn as_str(&self) -> &'static str {
        match self {
            DecodeStatus::Ok => "ok",
            DecodeStatus::Truncated(_) => "truncated",
            DecodeStatus::Malformed(..) => "malformed",
            DecodeStatus::NotIp(_) => "not_ip",
            DecodeStatus::UnsupportedLink(_) => "unsupported_link",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    Link,
    Vlan,
    Mpls,
    Pppoe,
    Ppp,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Sctp,
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    Teredo,
    GtpU,
    /// L4 data after complete headers.
    Payload,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Vlan => "vlan",
            Layer::Mpls => "mpls",
            Layer::Pppoe => "pppoe",
            Layer::Ppp => "ppp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6_ext",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
            Layer::Icmpv6 => "icmpv6",
            Layer::Sctp => "sctp",
            Layer::Gre => "gre",
            Layer::Erspan => "erspan",
            Layer::Vxlan => "vxlan",
            Layer::Geneve => "geneve",
            Layer::Teredo => "teredo",
            Layer::GtpU => "gtpu",
            Layer::Payload => "payload",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformation {
    /// IP version nibble does not match the ethertype/protocol that led here,
    /// or a tunnel/PPPoE header has an unknown version.
    BadVersion,
    /// Header length field below the minimum, or past the data the IP length allows.
    BadHeaderLength,
    /// IP total length smaller than the header.
    BadTotalLength,
    /// IPv4 option with a bad length (decoding went on).
    BadOption,
    /// More encapsulations than `DecodeConfig::max_tunnel_depth`.
    TooDeep,
    /// UDP length field below 8 or beyond the IP payload.
    BadLength,
    /// A header feature this decoder does not follow (GRE source routing).
    Unsupported,
}

impl Malformation {
    pub fn as_str(self) -> &'static str {
        match self {
            Malformation::BadVersion => "bad_version",
            Malformation::BadHeaderLength => "bad_header_length",
            Malformation::BadTotalLength => "bad_total_length",
            Malformation::BadOption => "bad_option",
            Malformation::TooDeep => "too_deep",
            Malformation::BadLength => "bad_length",
            Malformation::Unsupported => "unsupported",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlans_keep_the_first_three() {
        let mut v = Vlans::default();
        assert!(v.is_empty());
        assert_eq!(v.innermost(), None);
        for id in [10, 20, 30, 40] {
            v.push(id);
        }
        assert_eq!(v.as_slice(), &[10, 20, 30]);
        assert_eq!(v.len(), 3);
        assert_eq!(v.innermost(), Some(30));
    }

    #[test]
    fn reset_clears_everything() {
        let mut d = Decoded {
            mpls_labels: 2,
            status: DecodeStatus::NotIp(0x0806),
            ..Decoded::default()
        };
        d.vlans.push(5);
        d.reset();
        assert_eq!(d, Decoded::default());
    }

    #[test]
    fn detached_decode_attaches_to_a_copy() {
        let frame: Vec<u8> = (0u8..64).collect();
        let d = Decoded {
            mpls_labels: 1,
            ip_payload: &frame[20..64],
            payload: &frame[40..60],
            status: DecodeStatus::Truncated(Layer::Payload),
            ..Decoded::default()
        };
        let detached = d.detach(&frame);
        let copy = frame.clone();
        let back = detached.attach(&copy);
        assert_eq!(back, d);
        assert_eq!(back.payload.as_ptr(), copy[40..].as_ptr());
        // a slice from elsewhere (reassembled data) and a short copy: empty
        let other = [1u8, 2, 3];
        let e = Decoded {
            payload: &other,
            ..Decoded::default()
        };
        assert!(e.detach(&frame).attach(&copy).payload.is_empty());
        assert!(detached.attach(&copy[..30]).payload.is_empty());
        assert_eq!(
            Decoded::default().detach(&frame).attach(&copy),
            Decoded::default()
        );
    }

    #[test]
    fn note_keeps_the_first_problem() {
        let mut d = Decoded::default();
        d.note(DecodeStatus::Truncated(Layer::Payload));
        d.note(DecodeStatus::Malformed(
            Layer::Ipv4,
            Malformation::BadOption,
        ));
        assert_eq!(d.status, DecodeStatus::Truncated(Layer::Payload));
    }

    #[test]
    fn names_are_stable() {
        assert_eq!(TunnelKind::ErspanII.as_str(), "erspan2");
        assert_eq!(TunnelKind::IpInIp.as_str(), "ipip");
        assert_eq!(Layer::Ipv6Ext.as_str(), "ipv6_ext");
        assert_eq!(Malformation::TooDeep.as_str(), "too_deep");
        assert_eq!(DecodeStatus::NotIp(0x806).as_str(), "not_ip");
    }
}
