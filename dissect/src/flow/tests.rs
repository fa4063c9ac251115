use std::collections::BTreeSet;
use std::net::IpAddr;

use super::*;
use crate::packet::testutil::pcapfile;
use crate::packet::testutil::*;
use crate::packet::{decode_ip_payload, DecodeConfig, Decoded, IpHeader, L4};
use sha1::{Digest, Sha1};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(src: (&str, u16), dst: (&str, u16), proto: u8) -> (FlowKey, bool) {
    FlowKey::new((ip(src.0), src.1), (ip(dst.0), dst.1), proto, 0, 0, false)
}

/// Values from the Community ID spec's baseline (corelight/community-id-spec).
#[test]
fn community_id_spec_examples() {
    let (k, _) = key(("128.232.110.120", 34855), ("66.35.250.204", 80), 6);
    assert_eq!(k.community_id(0), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    assert_eq!(k.community_id(1), "1:3V71V58M3Ksw/yuFALMcW0LAHvc=");
    let (k, _) = key(("66.35.250.204", 80), ("128.232.110.120", 34855), 6);
    assert_eq!(k.community_id(0), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    assert_eq!(k.community_id_buf(0).as_str(), k.community_id(0));
}

#[test]
fn key_is_direction_independent() {
    let (k1, f1) = key(("10.0.0.2", 40000), ("10.0.0.1", 443), 6);
    let (k2, f2) = key(("10.0.0.1", 443), ("10.0.0.2", 40000), 6);
    assert_eq!(k1, k2);
    assert_ne!(f1, f2);
    assert_eq!(k1.hash64(), k2.hash64());
    assert_eq!(
        k1.endpoints(),
        ((ip("10.0.0.1"), 443), (ip("10.0.0.2"), 40000))
    );
    assert_eq!(k1.proto(), 6);
    assert!(!k1.is_ipv6());
    // Same address both sides: the port decides the order.
    let (k3, f3) = key(("10.0.0.1", 3306), ("10.0.0.1", 50000), 6);
    let (k4, f4) = key(("10.0.0.1", 50000), ("10.0.0.1", 3306), 6);
    assert_eq!(k3, k4);
    assert!(f3 && !f4);
}

#[test]
fn different_keys_hash_differently() {
    let (a, _) = key(("10.0.0.1", 1), ("10.0.0.2", 2), 17);
    let (b, _) = key(("10.0.0.1", 1), ("10.0.0.2", 3), 17);
    let (c, _) = key(("10.0.0.1", 1), ("10.0.0.2", 2), 6);
    let (d6, _) = key(("::a00:1", 1), ("::a00:2", 2), 17);
    let hashes: BTreeSet<u64> = [a, b, c, d6].iter().map(FlowKey::hash64).collect();
    assert_eq!(hashes.len(), 4);
    assert_ne!(
        a, d6,
        "IPv4 and the IPv4-compatible IPv6 address are different keys"
    );
    assert_ne!(a.hash_with(1), a.hash_with(2));
}

fn decoded_with(l4: L4, src: &str, dst: &str, proto: u8) -> Decoded<'static> {
    Decoded {
        ip: Some(IpHeader {
            version: if src.contains(':') { 6 } else { 4 },
            src: ip(src),
            dst: ip(dst),
            proto,
            ..IpHeader::default()
        }),
        l4,
        ..Decoded::default()
    }
}

#[test]
fn icmp_echo_request_and_reply_are_one_flow() {
    let cfg = KeyConfig::default();
    let req = decoded_with(L4::Icmp { ty: 8, code: 0 }, "192.168.0.1", "192.168.0.2", 1);
    let rep = decoded_with(L4::Icmp { ty: 0, code: 0 }, "192.168.0.2", "192.168.0.1", 1);
    let (k1, f1) = FlowKey::from_decoded(&req, &cfg).unwrap();
    let (k2, f2) = FlowKey::from_decoded(&rep, &cfg).unwrap();
    assert_eq!(k1, k2);
    assert!(f1 && !f2);
    let req6 = decoded_with(
        L4::Icmpv6 { ty: 128, code: 0 },
        "2001:db8::1",
        "2001:db8::2",
        58,
    );
    let rep6 = decoded_with(
        L4::Icmpv6 { ty: 129, code: 0 },
        "2001:db8::2",
        "2001:db8::1",
        58,
    );
    assert_eq!(
        FlowKey::from_decoded(&req6, &cfg).unwrap().0,
        FlowKey::from_decoded(&rep6, &cfg).unwrap().0
    );
}

#[test]
fn icmp_one_way_messages_keep_their_direction() {
    let cfg = KeyConfig::default();
    // Destination unreachable from the higher address: not reordered.
    let d = decoded_with(L4::Icmp { ty: 3, code: 1 }, "192.168.0.2", "192.168.0.1", 1);
    let (k, fwd) = FlowKey::from_decoded(&d, &cfg).unwrap();
    assert!(fwd);
    assert_eq!(
        k.endpoints(),
        ((ip("192.168.0.2"), 3), (ip("192.168.0.1"), 1))
    );
}

#[test]
fn vlan_and_tunnel_id_follow_the_config() {
    let mut d = decoded_with(
        L4::Udp(crate::packet::UdpHeader {
            src_port: 1,
            dst_port: 2,
            length: 8,
        }),
        "10.0.0.1",
        "10.0.0.2",
        17,
    );
    d.vlans.push(100);
    d.vlans.push(200);
    d.tunnel = Some(crate::packet::Tunnel {
        kind: crate::packet::TunnelKind::Vxlan,
        outer_src: ip("192.0.2.1"),
        outer_dst: ip("192.0.2.2"),
        id: Some(7),
        outer_proto: 17,
        outer_ports: (5000, 4789),
    });
    let (k, _) = FlowKey::from_decoded(&d, &KeyConfig::default()).unwrap();
    assert_eq!((k.vlan(), k.tunnel_id()), (200, 7));
    let (k, _) = FlowKey::from_decoded(
        &d,
        &KeyConfig {
            vlan: false,
            tunnel_id: false,
        },
    )
    .unwrap();
    assert_eq!((k.vlan(), k.tunnel_id()), (0, 0));
    let (outer, fwd) = FlowKey::from_tunnel(&d.tunnel.unwrap(), 0);
    assert!(fwd);
    assert_eq!(
        outer.endpoints(),
        ((ip("192.0.2.1"), 5000), (ip("192.0.2.2"), 4789))
    );
    assert_eq!(outer.proto(), 17);
}

#[test]
fn no_ip_no_key() {
    assert!(FlowKey::from_decoded(&Decoded::default(), &KeyConfig::default()).is_none());
    assert_eq!(shard_hash(&Decoded::default()), 0);
}

#[test]
fn shard_hash_is_symmetric_and_ignores_ports() {
    let whole = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, b"0123456789");
    let reply = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], 53, 1000, b"x");
    let mut frag = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, b"0123456789");
    frag[6] = 0x00;
    frag[7] = 0x02; // offset 16, no L4 header
    let (a, b, c) = (dec(101, &whole), dec(101, &reply), dec(101, &frag));
    assert!(c.is_fragment());
    assert_eq!(shard_hash(&a), shard_hash(&b));
    assert_eq!(shard_hash(&a), shard_hash(&c));
    let other = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 3], 1000, 53, b"");
    assert_ne!(shard_hash(&a), shard_hash(&dec(101, &other)));
}

#[test]
fn base64_matches_known_values() {
    let mut out = [0u8; 28];
    base64_20(&[0u8; 20], &mut out);
    assert_eq!(&out, b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    base64_20(&[0xff; 20], &mut out);
    assert_eq!(&out, b"//////////////////////////8=");
    let mut bytes = [0u8; 20];
    bytes[..6].copy_from_slice(b"foobar");
    base64_20(&bytes, &mut out);
    assert!(out.starts_with(b"Zm9vYmFy"));
}

/// Suricata 8 differs from the Community ID spec (and from tshark and
/// Zeek) in two corners, checked on the corpus with tshark:
/// - protocols without ports (IP-in-IP, GRE, ESP, ...): it hashes two zero
///   ports; the spec hashes none.
/// - one-way ICMP messages (no request/reply counterpart): it orders the
///   endpoints like any flow; the spec keeps the packet's direction.
///
/// This computes Suricata's variant, so that those flows are still checked.
fn suricata_style_id(k: &FlowKey) -> String {
    let mut s = *k;
    let ordered = (s.a, s.a_port) <= (s.b, s.b_port);
    if !ordered {
        std::mem::swap(&mut s.a, &mut s.b);
        std::mem::swap(&mut s.a_port, &mut s.b_port);
    }
    let mut h = Sha1::new();
    h.update(0u16.to_be_bytes());
    if s.v6 {
        h.update(s.a.to_be_bytes());
        h.update(s.b.to_be_bytes());
    } else {
        h.update((s.a as u32).to_be_bytes());
        h.update((s.b as u32).to_be_bytes());
    }
    h.update([s.proto, 0]);
    h.update(s.a_port.to_be_bytes());
    h.update(s.b_port.to_be_bytes());
    let digest: [u8; 20] = h.finalize().into();
    let mut out = [0u8; 28];
    base64_20(&digest, &mut out);
    format!("1:{}", std::str::from_utf8(&out).unwrap())
}

#[derive(Default)]
struct Ids {
    spec: BTreeSet<String>,
    /// Suricata's variant, for keys where it differs from the spec.
    suricata_only: BTreeSet<String>,
}

impl Ids {
    fn add(&mut self, k: FlowKey) {
        let id = k.community_id(0);
        let sid = suricata_style_id(&k);
        if sid != id {
            self.suricata_only.insert(sid);
        }
        self.spec.insert(id);
    }
}

/// Community IDs of every packet of a capture: the innermost flow, the
/// outer flow of any tunnel (Suricata logs both), and for the first
/// fragment of a datagram, the flow its L4 header names (Suricata keys the
/// reassembled datagram).
fn community_ids(link: u32, records: &[Vec<u8>]) -> Ids {
    let cfg = DecodeConfig::default();
    let kcfg = KeyConfig::default();
    let mut ids = Ids::default();
    for rec in records {
        let mut d = Decoded::default();
        crate::packet::decode(link, rec, &cfg, &mut d);
        if let Some((k, _)) = FlowKey::from_decoded(&d, &kcfg) {
            ids.add(k);
        }
        if let Some(t) = d.tunnel {
            ids.add(FlowKey::from_tunnel(&t, 0).0);
        }
        if let Some(IpHeader {
            frag: Some(f),
            proto,
            ..
        }) = d.ip
        {
            if f.offset == 0 {
                let mut first = Decoded::default();
                decode_ip_payload(&d, proto, d.ip_payload, &cfg, &mut first);
                if let Some((k, _)) = FlowKey::from_decoded(&first, &kcfg) {
                    ids.add(k);
                }
            }
        }
    }
    ids
}

fn suricata_flow_ids(eve: &str) -> BTreeSet<String> {
    eve.lines()
        .filter(|l| l.contains("\"event_type\":\"flow\""))
        .filter_map(|l| {
            let start = l.find("\"community_id\":\"")? + "\"community_id\":\"".len();
            let len = l[start..].find('"')?;
            Some(l[start..start + len].to_owned())
        })
        .collect()
}

/// Every flow Suricata 8.0.6 logged for the corpus captures has its
/// Community ID among ours (or, for the two corners above, among Suricata's
/// variant of ours): plain, VLAN/QinQ, IPv6, ICMP, fragments, raw/NULL/SLL/
/// SLL2/Cisco-HDLC links, MPLS, and every tunnel kind in the corpus.
#[test]
fn community_ids_match_suricata_reference() {
    let must_check = [
        "dns/sv-dns.dns-udp-eve-log-srv--input.pcap",
        "http/ndpi-quickplay.pcap",
        "http/sv-decode-sll2-02--input.pcap",
        "http/sv-http-post-file--input.pcap",
        "icmp/sv-bug-4663-02--icmp.pcap",
        "ip-fragments/sv-defrag.bug-6887-defrag-eth-vlan-ipv4-tcp-syn--frag-eth-vlan-ip-tcp-syn.pcap",
        "ipv6/sv-community-id-ipv6--input.pcap",
        "malformed/ndpi-malformed_icmp.pcap",
        "mysql/sv-community-id-sameip--input.pcap",
        "tls/sv-community-id-ipv4--input.pcap",
        "tunnels/ndpi-BGP_redist.pcap",
        "tunnels/ndpi-vxlan.pcap",
        "tunnels/sv-bug-4571-04--ipv6_over_ipv4.pcap",
        "tunnels/sv-bug-5437-02--input.pcap",
        "tunnels/sv-bug-5633-gre-02--gre-sample.pcap",
        "tunnels/sv-decode-erspan-typeI-02--input.pcap",
        "tunnels/sv-decode-erspan-typeII-01--input.pcap",
        "tunnels/sv-decode-teredo-01--input.pcap",
        "tunnels/sv-vxlan-decoder-03--vxlan.pcap",
        "tunnels/zeek-mpls-in-vlan.pcap",
        "vlan/ndpi-http_origin_different_than_host.pcap",
        "vlan/ndpi-ja3_lots_of_cipher_suites.pcap",
        "vlan/sv-eve-flow-vlan-02--input.pcap",
    ];
    let (Some(_), Some(reference)) = (pcapfile::corpus_dir(), pcapfile::reference_dir()) else {
        eprintln!("corpus or Suricata reference not found; skipping");
        return;
    };
    let mut checked = Vec::new();
    let mut flows = 0;
    let mut suricata_variant = Vec::new();
    let mut failures = Vec::new();
    for (rel, pcap) in pcapfile::corpus_pcaps() {
        let Ok(eve) = std::fs::read_to_string(reference.join(format!("{rel}.eve.json"))) else {
            continue;
        };
        let expected = suricata_flow_ids(&eve);
        if expected.is_empty() {
            continue;
        }
        let ours = community_ids(pcap.link, &pcap.records);
        let mut missing = Vec::new();
        for id in &expected {
            if ours.spec.contains(id) {
                continue;
            }
            if ours.suricata_only.contains(id) {
                suricata_variant.push(format!("{rel}: {id}"));
            } else {
                missing.push(id.clone());
            }
        }
        if !missing.is_empty() {
            failures.push(format!(
                "{rel}: {} of {} missing: {missing:?}",
                missing.len(),
                expected.len()
            ));
        }
        flows += expected.len();
        checked.push(rel);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for rel in must_check {
        assert!(checked.iter().any(|c| c == rel), "{rel} was not checked");
    }
    // Exactly the two known corners: the 6in4 outer flow (protocol 41, no
    // ports) and a type-165 ICMP packet (one-way).
    assert_eq!(suricata_variant.len(), 2, "{suricata_variant:?}");
    eprintln!("{} captures, {flows} Suricata flows matched", checked.len());
}

/// The IPv4 pair hash of the owner's shortcut is the general one's (the
/// owner of a packet must not depend on which path found it), both ways.
#[test]
fn ipv4_pair_hash_is_the_general_pair_hash() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut spread = BTreeSet::new();
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (a, b) = (x as u32, (x >> 32) as u32);
        let (ia, ib) = (IpAddr::from(a.to_be_bytes()), IpAddr::from(b.to_be_bytes()));
        // The 128-bit form every address family goes through.
        let general = folded_pair_hash(fold128(addr_bits(ia).0), fold128(addr_bits(ib).0));
        assert_eq!(ip_pair_hash(ia, ib), general, "{a:#x} {b:#x}");
        assert_eq!(ipv4_pair_hash(a, b), general, "{a:#x} {b:#x}");
        assert_eq!(ipv4_pair_hash(b, a), general, "{b:#x} {a:#x}");
        spread.insert(general % 4);
    }
    assert_eq!(spread.len(), 4);
}
