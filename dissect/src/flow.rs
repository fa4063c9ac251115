//! Flow keys: the canonical (direction-independent) identity of a flow,
//! its Community ID, and the cheap hashes used for tables and worker choice.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arrayvec::ArrayString;
use sha1::{Digest, Sha1};

use crate::packet::{Decoded, Tunnel, L4};

/// What besides the 5-tuple tells flows apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyConfig {
    /// Innermost VLAN id is part of the key (as in Suricata).
    pub vlan: bool,
    /// Tunnel id (VNI, ERSPAN session, GRE key, TEID) is part of the key.
    pub tunnel_id: bool,
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            vlan: true,
            tunnel_id: true,
        }
    }
}

/// A flow's identity, the same for both directions: the endpoint that sorts
/// first (address bytes, then port) is stored first.
///
/// ICMP/ICMPv6 type and code stand in for ports as the Community ID spec
/// maps them: request and reply types pair up (echo 8 <-> 0 is one flow).
/// ICMP messages without a counterpart (unreachable, time exceeded, ...)
/// are one-way: their key keeps the packet's direction, as the spec says.
/// `Default` is an all-zero IPv4 key, for pre-sized tables.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FlowKey {
    /// Addresses as big-endian numbers (IPv4 in the low 32 bits).
    a: u128,
    b: u128,
    a_port: u16,
    b_port: u16,
    /// Innermost VLAN id, 0 for none.
    vlan: u16,
    proto: u8,
    v6: bool,
    /// 0 for none.
    tunnel_id: u32,
}

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const PROTO_SCTP: u8 = 132;

impl FlowKey {
    /// `None` when the packet has no IP layer. The `bool` is true when this
    /// packet travels from the key's first endpoint to its second.
    ///
    /// A fragment (no L4 header) gets ports 0; key the reassembled datagram
    /// (`packet::decode_ip_payload`) instead.
    #[inline]
    pub fn from_decoded(d: &Decoded<'_>, cfg: &KeyConfig) -> Option<(FlowKey, bool)> {
        let ip = d.ip.as_ref()?;
        let (src_port, dst_port, one_way) = match d.l4 {
            L4::Tcp(t) => (t.src_port, t.dst_port, false),
            L4::Udp(u) => (u.src_port, u.dst_port, false),
            L4::Sctp { src_port, dst_port } => (src_port, dst_port, false),
            L4::Icmp { ty, code } => icmp_ports(ty, code, icmp_counterpart(ty)),
            L4::Icmpv6 { ty, code } => icmp_ports(ty, code, icmpv6_counterpart(ty)),
            L4::None | L4::Other(_) => (0, 0, false),
        };
        let vlan = if cfg.vlan {
            d.vlans.innermost().unwrap_or(0)
        } else {
            0
        };
        let tunnel_id = match (cfg.tunnel_id, d.tunnel) {
            (true, Some(t)) => t.id.unwrap_or(0),
            _ => 0,
        };
        Some(FlowKey::new(
            (ip.src, src_port),
            (ip.dst, dst_port),
            ip.proto,
            vlan,
            tunnel_id,
            one_way,
        ))
    }

    /// Key of the outer packet of a tunnel (e.g. the VXLAN UDP flow between
    /// two VTEPs), for keeping outer flows as Suricata does. Ports are the
    /// outer UDP ports, or 0.
    pub fn from_tunnel(t: &Tunnel, vlan: u16) -> (FlowKey, bool) {
        let (sp, dp) = t.outer_ports;
        FlowKey::new(
            (t.outer_src, sp),
            (t.outer_dst, dp),
            t.outer_proto,
            vlan,
            0,
            false,
        )
    }

    /// Builds a key from one packet's source and destination. `one_way`
    /// keeps the given order (one-way ICMP).
    pub fn new(
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        proto: u8,
        vlan: u16,
        tunnel_id: u32,
        one_way: bool,
    ) -> (FlowKey, bool) {
        let (sa, v6) = addr_bits(src.0);
        let (da, _) = addr_bits(dst.0);
        let forward = one_way || (sa, src.1) <= (da, dst.1);
        let ((a, a_port), (b, b_port)) = if forward {
            ((sa, src.1), (da, dst.1))
        } else {
            ((da, dst.1), (sa, src.1))
        };
        let key = FlowKey {
            a,
            b,
            a_port,
            b_port,
            vlan,
            proto,
            v6,
            tunnel_id,
        };
        (key, forward)
    }

    /// (first, second) endpoints; for ICMP the "ports" are the mapped type/code.
    pub fn endpoints(&self) -> ((IpAddr, u16), (IpAddr, u16)) {
        (
            (bits_addr(self.a, self.v6), self.a_port),
            (bits_addr(self.b, self.v6), self.b_port),
        )
    }

    pub fn proto(&self) -> u8 {
        self.proto
    }

    pub fn vlan(&self) -> u16 {
        self.vlan
    }

    pub fn tunnel_id(&self) -> u32 {
        self.tunnel_id
    }

    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// Community ID v1 (https://github.com/corelight/community-id-spec):
    /// "1:" + base64(sha1(seed, addresses, proto, 0, ports)).
    pub fn community_id(&self, seed: u16) -> String {
        self.community_id_buf(seed).as_str().to_owned()
    }

    /// The same, without allocating.
    pub fn community_id_buf(&self, seed: u16) -> CommunityId {
        let mut h = Sha1::new();
        h.update(seed.to_be_bytes());
        if self.v6 {
            h.update(self.a.to_be_bytes());
            h.update(self.b.to_be_bytes());
        } else {
            h.update((self.a as u32).to_be_bytes());
            h.update((self.b as u32).to_be_bytes());
        }
        h.update([self.proto, 0]);
        if matches!(
            self.proto,
            PROTO_TCP | PROTO_UDP | PROTO_SCTP | PROTO_ICMP | PROTO_ICMPV6
        ) {
            h.update(self.a_port.to_be_bytes());
            h.update(self.b_port.to_be_bytes());
        }
        let digest: [u8; 20] = h.finalize().into();
        let mut out = [0u8; 30];
        out[0] = b'1';
        out[1] = b':';
        base64_20(&digest, &mut out[2..]);
        CommunityId(ArrayString::from_byte_string(&out).unwrap_or_default())
    }

    /// Symmetric 64-bit hash for table lookups (the key is canonical, so both
    /// directions hash alike). A few folded multiplies, not SipHash: not
    /// meant to resist chosen collisions; use `hash_with` and a random seed
    /// where that matters.
    #[inline]
    pub fn hash64(&self) -> u64 {
        self.hash_with(0)
    }

    #[inline]
    pub fn hash_with(&self, seed: u64) -> u64 {
        let ports = u64::from(self.a_port)
            | u64::from(self.b_port) << 16
            | u64::from(self.vlan) << 32
            | u64::from(self.proto) << 48
            | u64::from(self.v6) << 56;
        let h = fold_mul(self.a as u64 ^ K0 ^ seed, (self.a >> 64) as u64 ^ K1);
        let h = fold_mul(h ^ self.b as u64, (self.b >> 64) as u64 ^ K2);
        fold_mul(h ^ ports, u64::from(self.tunnel_id) ^ K3)
    }
}

/// Symmetric hash used to pick a worker: the same for both directions.
/// Only the innermost IP pair counts (not ports), so every fragment of a
/// datagram lands on the worker of its flow's unfragmented packets. 0 when
/// there is no IP layer.
#[inline]
pub fn shard_hash(d: &Decoded<'_>) -> u32 {
    let Some(ip) = d.ip.as_ref() else {
        return 0;
    };
    ip_pair_hash(ip.src, ip.dst)
}

#[inline(always)]
fn ip_pair_hash(src: IpAddr, dst: IpAddr) -> u32 {
    match (src, dst) {
        // An IPv4 address folds to itself: no 128-bit forms to build.
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_pair_hash(u32::from(s), u32::from(d)),
        _ => folded_pair_hash(fold128(addr_bits(src).0), fold128(addr_bits(dst).0)),
    }
}

/// [`ip_pair_hash`] of two IPv4 addresses (as big-endian words), without
/// building the 128-bit forms: an IPv4 address folds to itself (the test
/// `ipv4_pair_hash_is_the_general_pair_hash` checks it against them).
#[inline(always)]
fn ipv4_pair_hash(src: u32, dst: u32) -> u32 {
    folded_pair_hash(u64::from(src), u64::from(dst))
}

#[inline(always)]
fn folded_pair_hash(x: u64, y: u64) -> u32 {
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let h = fold_mul(lo ^ K0, hi ^ K1);
    (h ^ (h >> 32)) as u32
}

/// [`owner`] of a frame of pcap link type `link` without decoding it, when
/// [`crate::packet::quick_ip_pair`] can read its innermost addresses as
/// the decode with `cfg` would find them; `None`: decode it and ask
/// [`owner`].
#[inline]
pub fn quick_owner(
    link: u32,
    frame: &[u8],
    cfg: &crate::packet::DecodeConfig,
    workers: usize,
) -> Option<usize> {
    // Most frames: read in one bounds check, hashed without `IpAddr`s
    // (half the instructions of the general reading below).
    let hash = match crate::packet::quick_ipv4_tcp_pair(link, frame) {
        Some((src, dst)) => ipv4_pair_hash(src, dst),
        None => {
            let (src, dst) = crate::packet::quick_ip_pair(link, frame, cfg)?;
            ip_pair_hash(src, dst)
        }
    };
    Some(hash as usize % workers.max(1))
}

/// The worker (of `workers`) that owns a decoded packet: [`shard_hash`]
/// modulo the worker count. This is the one definition of ownership; every
/// packet source (offline replay, AF_XDP software shard) calls it on a
/// packet decoded with the run's `DecodeConfig`.
#[inline]
pub fn owner(d: &Decoded<'_>, workers: usize) -> usize {
    shard_hash(d) as usize % workers.max(1)
}

/// A Community ID string kept inline ("1:" and 28 base64 characters),
/// checked as text once when made: every record and event of the flow
/// reads it. `Default` is empty, a placeholder for pre-sized tables.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommunityId(ArrayString<30>);

impl CommunityId {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;
const K3: u64 = 0x082e_fa98_ec4e_6c89;

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn fold128(x: u128) -> u64 {
    (x as u64) ^ ((x >> 64) as u64).rotate_left(23)
}

#[inline(always)]
fn addr_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), false),
        IpAddr::V6(v6) => (u128::from(v6), true),
    }
}

fn bits_addr(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(bits))
    } else {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    }
}

/// (src "port", dst "port", one_way) for an ICMP message per the Community
/// ID spec: type and counterpart type when the type has one, else type and code.
#[inline]
fn icmp_ports(ty: u8, code: u8, counterpart: Option<u8>) -> (u16, u16, bool) {
    match counterpart {
        Some(c) => (u16::from(ty), u16::from(c), false),
        None => (u16::from(ty), u16::from(code), true),
    }
}

fn icmp_counterpart(ty: u8) -> Option<u8> {
    Some(match ty {
        0 => 8,   // echo reply -> echo
        8 => 0,   // echo -> echo reply
        9 => 10,  // router advertisement -> solicitation
        10 => 9,  // router solicitation -> advertisement
        13 => 14, // timestamp -> reply
        14 => 13,
        15 => 16, // information request -> reply
        16 => 15,
        17 => 18, // address mask request -> reply
        18 => 17,
        _ => return None,
    })
}

fn icmpv6_counterpart(ty: u8) -> Option<u8> {
    Some(match ty {
        128 => 129, // echo request -> reply
        129 => 128,
        130 => 131, // multicast listener query -> report
        131 => 130,
        133 => 134, // router solicitation -> advertisement
        134 => 133,
        135 => 136, // neighbor solicitation -> advertisement
        136 => 135,
        139 => 140, // node information query -> response
        140 => 139,
        144 => 145, // home agent address discovery request -> reply
        145 => 144,
        _ => return None,
    })
}

/// Standard base64 (with padding) of a SHA-1 digest: 20 bytes -> 28 characters.
fn base64_20(input: &[u8; 20], out: &mut [u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| ALPHABET[(v & 0x3f) as usize];
    let mut o = 0;
    for chunk in input.chunks(3) {
        let byte = |i: usize| chunk.get(i).map_or(0, |&b| u32::from(b));
        let (b0, b1, b2) = (byte(0), byte(1), byte(2));
        let n = b0 << 16 | b1 << 8 | b2;
        let quad = [
            sym(n >> 18),
            sym(n >> 12),
            if chunk.len() > 1 { sym(n >> 6) } else { b'=' },
            if chunk.len() > 2 { sym(n) } else { b'=' },
        ];
        if let Some(dst) = out.get_mut(o..o + 4) {
            dst.copy_from_slice(&quad);
        }
        o += 4;
    }
}

#[cfg(test)]
mod tests;
