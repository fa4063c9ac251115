//! Whole-decoder tests: fragment continuation and the real captures.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::testutil::pcapfile;
use super::testutil::*;
use super::*;

#[test]
fn decode_ip_payload_continues_after_reassembly() {
    // First fragment of a VLAN-tagged UDP datagram, then its reassembled payload.
    let data = b"0123456789abcdef";
    let full = udp(5353, 53, data);
    let mut first = ipv4_raw([10, 0, 0, 1], [10, 0, 0, 2], 17, &full[..16]);
    first[6] = 0x20; // MF
    let f = eth(0x8100, &[vlan_tag(42, 0x0800), first].concat());
    let frag = dec(1, &f);
    assert!(frag.is_fragment());
    assert_eq!(frag.l4, L4::None);
    let mut whole = Decoded::default();
    decode_ip_payload(&frag, 17, &full, &DecodeConfig::default(), &mut whole);
    assert_eq!(whole.status, DecodeStatus::Ok);
    assert!(!whole.is_fragment());
    assert_eq!(whole.vlans.as_slice(), &[42]);
    assert_eq!(whole.macs, frag.macs);
    let ip = whole.ip.unwrap();
    assert_eq!(ip.src, IpAddr::from([10, 0, 0, 1]));
    assert_eq!(ip.total_len, 20 + full.len() as u32);
    assert!(matches!(
        whole.l4,
        L4::Udp(UdpHeader {
            src_port: 5353,
            dst_port: 53,
            ..
        })
    ));
    assert_eq!(whole.payload, data);
}

#[test]
fn decode_ip_payload_decapsulates_a_reassembled_tunnel() {
    // A fragmented GRE/ERSPAN-I packet: the mirrored frame only appears after reassembly.
    let inner = eth(
        0x0800,
        &ipv4_tcp([10, 9, 9, 1], [10, 9, 9, 2], 1, 2, b"mirrored"),
    );
    let gre = [&[0x00, 0x00, 0x88, 0xbe][..], &inner].concat();
    let mut first = ipv4_raw([192, 0, 2, 1], [192, 0, 2, 2], 47, &gre[..24]);
    first[6] = 0x20;
    let frag = dec(101, &first);
    assert!(frag.is_fragment());
    let mut whole = Decoded::default();
    decode_ip_payload(&frag, 47, &gre, &DecodeConfig::default(), &mut whole);
    assert_eq!(whole.status, DecodeStatus::Ok);
    assert_eq!(whole.payload, b"mirrored");
    let t = whole.tunnel.unwrap();
    assert_eq!(t.kind, TunnelKind::ErspanI);
    assert_eq!(t.outer_src, IpAddr::from([192, 0, 2, 1]));
    assert_eq!(whole.tunnel_depth, 1);
}

#[test]
fn decode_ip_payload_walks_ipv6_headers_after_the_fragment_header() {
    let mut body = vec![60, 0, 0x00, 0x01, 0, 0, 0, 1]; // fragment header -> dest opts
    body.extend([0u8; 8]);
    let frame = ipv6_raw([1; 16], [2; 16], ip::PROTO_FRAGMENT, &body);
    let frag = dec(229, &frame);
    assert!(frag.is_fragment());
    assert_eq!(frag.ip.unwrap().proto, 60);
    let reassembled = [&[17, 0, 0, 0, 0, 0, 0, 0][..], &udp(1, 2, b"v6")].concat();
    let mut whole = Decoded::default();
    decode_ip_payload(
        &frag,
        60,
        &reassembled,
        &DecodeConfig::default(),
        &mut whole,
    );
    assert_eq!(whole.status, DecodeStatus::Ok);
    assert_eq!(whole.ip.unwrap().proto, 17);
    assert_eq!(whole.payload, b"v6");
}

#[test]
fn decode_ip_payload_without_ip_says_not_ip() {
    let mut out = Decoded::default();
    decode_ip_payload(
        &Decoded::default(),
        6,
        &[0; 20],
        &DecodeConfig::default(),
        &mut out,
    );
    assert_eq!(out.status, DecodeStatus::NotIp(0));
}

#[test]
fn decoded_is_reused_without_leftovers() {
    let cfg = DecodeConfig::default();
    let a = eth(
        0x8100,
        &[vlan_tag(7, 0x0800), ipv4_tcp([1; 4], [2; 4], 1, 2, b"x")].concat(),
    );
    let b = eth(0x0806, &[0u8; 28]);
    let mut d = Decoded::default();
    decode(1, &a, &cfg, &mut d);
    assert!(d.ip.is_some());
    let mut d2 = d;
    decode(1, &b, &cfg, &mut d2);
    assert!(d2.ip.is_none());
    assert!(d2.vlans.is_empty());
    assert_eq!(d2.l4, L4::None);
}

/// Every packet of every classic pcap in the corpus, and every prefix of
/// it (snaplen cuts), decodes without panicking; and the whole packets
/// mostly decode to IP.
#[test]
fn every_corpus_pcap_decodes_without_panic() {
    let cfg = DecodeConfig::default();
    let mut files = 0;
    for (rel, pcap) in pcapfile::corpus_pcaps() {
        files += 1;
        let mut with_ip = 0;
        for rec in &pcap.records {
            let mut d = Decoded::default();
            decode(pcap.link, rec, &cfg, &mut d);
            with_ip += usize::from(d.ip.is_some());
            // Prefixes: all of them for small frames, the header region otherwise.
            for cut in (0..rec.len()).filter(|&n| n < 160 || n % 97 == 0) {
                decode(pcap.link, &rec[..cut], &cfg, &mut d);
                let _ = crate::flow::FlowKey::from_decoded(&d, &crate::flow::KeyConfig::default());
            }
        }
        assert!(
            with_ip * 2 >= pcap.records.len() || rel.starts_with("malformed/"),
            "{rel}: only {with_ip} of {} packets had IP",
            pcap.records.len()
        );
    }
    eprintln!("decoded {files} corpus captures");
}

fn statuses(rel: &str) -> Option<Vec<Decoded<'static>>> {
    let dir = pcapfile::corpus_dir()?;
    let pcap = pcapfile::read(&dir.join(rel))?;
    let leaked: &'static [Vec<u8>] = Box::leak(pcap.records.into_boxed_slice());
    Some(
        leaked
            .iter()
            .map(|rec| {
                let mut d = Decoded::default();
                decode(pcap.link, rec, &DecodeConfig::default(), &mut d);
                d
            })
            .collect(),
    )
}

fn count_by<K: Ord>(ds: &[Decoded<'_>], f: impl Fn(&Decoded<'_>) -> K) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for d in ds {
        *m.entry(f(d)).or_insert(0) += 1;
    }
    m
}

/// What the corpus captures of each encapsulation decode to, checked
/// against tshark's view of them.
#[test]
fn corpus_encapsulations() {
    let Some(_) = pcapfile::corpus_dir() else {
        eprintln!("corpus not found; skipping");
        return;
    };
    // Ethernet over MPLS pseudowire, nested past any sane depth.
    let ds = statuses("malformed/sv-decode-too-many-layers--input.pcap").unwrap();
    assert_eq!(
        ds[0].status,
        DecodeStatus::Malformed(Layer::Mpls, Malformation::TooDeep)
    );

    // Cisco HDLC: one MPLS-labelled, one plain BGP packet.
    let ds = statuses("tunnels/ndpi-BGP_redist.pcap").unwrap();
    assert_eq!(ds.iter().map(|d| d.mpls_labels).collect::<Vec<_>>(), [1, 0]);
    assert!(ds
        .iter()
        .all(|d| matches!(d.l4, L4::Tcp(TcpHeader { src_port: 179, .. }))));

    // ERSPAN type I: inner 802.1Q tags 1011/999, ICMP inside.
    let ds = statuses("tunnels/sv-decode-erspan-typeI-02--input.pcap").unwrap();
    assert!(ds
        .iter()
        .all(|d| d.tunnel.map(|t| t.kind) == Some(TunnelKind::ErspanI)));
    let vlans = count_by(&ds, |d| d.vlans.as_slice().to_vec());
    assert_eq!(
        vlans.keys().cloned().collect::<Vec<_>>(),
        [vec![999], vec![1011]]
    );

    // ERSPAN type II: VLAN 23 and session 100 from the ERSPAN header; two CDP
    // frames stay outer GRE packets.
    let ds = statuses("tunnels/sv-decode-erspan-typeII-01--input.pcap").unwrap();
    let kinds = count_by(&ds, |d| {
        (
            d.tunnel.map(|t| (t.kind, t.id)),
            d.vlans.as_slice().to_vec(),
        )
    });
    assert_eq!(
        kinds.get(&(Some((TunnelKind::ErspanII, Some(100))), vec![23])),
        Some(&4)
    );
    assert_eq!(kinds.get(&(None, vec![])), Some(&2));

    // VXLAN behind VLAN 5, VNI 1111.
    let ds = statuses("tunnels/ndpi-vxlan.pcap").unwrap();
    let t = ds.iter().find_map(|d| d.tunnel).unwrap();
    assert_eq!(
        (t.kind, t.id, t.outer_ports.1),
        (TunnelKind::Vxlan, Some(1111), 4789)
    );

    // 6in4.
    let ds = statuses("tunnels/sv-bug-4571-04--ipv6_over_ipv4.pcap").unwrap();
    assert_eq!(
        ds[0].tunnel.map(|t| (t.kind, t.outer_proto)),
        Some((TunnelKind::IpInIp, 41))
    );
    assert_eq!(ds[0].ip.map(|i| i.version), Some(6));

    // Teredo: only the packets that really carry IPv6 are entered.
    let ds = statuses("tunnels/sv-decode-teredo-01--input.pcap").unwrap();
    let teredo = ds
        .iter()
        .filter(|d| d.tunnel.map(|t| t.kind) == Some(TunnelKind::Teredo));
    assert!(teredo.clone().count() >= 1);
    assert!(teredo.clone().all(|d| d.ip.map(|i| i.version) == Some(6)));

    // QinQ + GTP-U: the user's TCP flow inside, TEID as tunnel id.
    let ds = statuses("vlan/ndpi-http_origin_different_than_host.pcap").unwrap();
    assert!(ds
        .iter()
        .all(|d| d.tunnel.map(|t| t.kind) == Some(TunnelKind::GtpU)));
    assert!(ds.iter().all(|d| d.vlans.as_slice() == [3394, 113]));
    assert!(ds.iter().all(|d| matches!(d.l4, L4::Tcp(_))));

    // QinQ + PPPoE.
    let ds = statuses("vlan/ndpi-dns.pcap");
    assert!(
        ds.is_none(),
        "pcapng in disguise: left to the capture crate"
    );

    // MPLS inside VLAN, including a priority tag (VLAN 0).
    let ds = statuses("tunnels/zeek-mpls-in-vlan.pcap").unwrap();
    assert_eq!(
        ds.iter().map(|d| d.mpls_labels).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(ds
        .iter()
        .all(|d| d.status.is_ok() && matches!(d.l4, L4::Tcp(_))));

    // Triple tags.
    let ds = statuses("vlan/sv-eve-flow-vlan-02--input.pcap").unwrap();
    let v: Vec<_> = ds.iter().map(|d| d.vlans.as_slice().to_vec()).collect();
    assert!(v.contains(&vec![1, 10, 100]));
}

/// Every corpus packet's decode, detached from its frame and attached to a
/// copy (as offline replay hands it from the reader to the owner worker), is
/// the decode of the copy.
#[test]
fn detached_decodes_of_the_corpus_attach_to_copies() {
    let cfg = DecodeConfig::default();
    let mut packets = 0;
    for (rel, pcap) in pcapfile::corpus_pcaps() {
        for rec in &pcap.records {
            let mut d = Decoded::default();
            decode(pcap.link, rec, &cfg, &mut d);
            let moved = d.detach(rec);
            let copy = rec.clone();
            let mut fresh = Decoded::default();
            decode(pcap.link, &copy, &cfg, &mut fresh);
            let back = moved.attach(&copy);
            assert_eq!(back, fresh, "{rel}");
            // Slices of the frame (empty ones too) keep their place in it.
            let frame = copy.as_ptr_range();
            for (b, f) in [
                (back.payload, fresh.payload),
                (back.ip_payload, fresh.ip_payload),
            ] {
                let p = f.as_ptr();
                if frame.contains(&p) || p == frame.end {
                    assert_eq!(b.as_ptr_range(), f.as_ptr_range(), "{rel}");
                }
            }
            packets += 1;
        }
    }
    eprintln!("attached {packets} detached corpus decodes");
}

/// The Ethernet/IPv4/TCP shortcut against the general path on frames at
/// its edges: DF set, fragments, options, truncated headers and payloads,
/// a zero total length, a total length shorter than the header, padding.
#[test]
fn shortcut_decodes_as_the_general_path() {
    let tcp = |payload: &[u8]| {
        let mut seg = vec![0u8; 20];
        seg[0..2].copy_from_slice(&1234u16.to_be_bytes());
        seg[2..4].copy_from_slice(&80u16.to_be_bytes());
        seg[12] = 5 << 4;
        seg[13] = 0x18;
        seg.extend_from_slice(payload);
        seg
    };
    let frame = |ip_hdr_edit: &dyn Fn(&mut Vec<u8>), l4: Vec<u8>| {
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        ip.extend_from_slice(&l4);
        ip_hdr_edit(&mut ip);
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&ip);
        f
    };
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("plain", Box::new(|_| {})),
        ("df", Box::new(|ip| ip[6] = 0x40)),
        ("reserved bit", Box::new(|ip| ip[6] = 0x80)),
        ("more fragments", Box::new(|ip| ip[6] = 0x20)),
        ("offset", Box::new(|ip| ip[7] = 1)),
        ("high offset", Box::new(|ip| ip[6] = 0x01)),
        ("total 0", Box::new(|ip| ip[2..4].copy_from_slice(&[0, 0]))),
        (
            "total 10",
            Box::new(|ip| ip[2..4].copy_from_slice(&10u16.to_be_bytes())),
        ),
        (
            "total 20",
            Box::new(|ip| ip[2..4].copy_from_slice(&20u16.to_be_bytes())),
        ),
        (
            "total longer",
            Box::new(|ip| ip[2..4].copy_from_slice(&900u16.to_be_bytes())),
        ),
        ("padding", Box::new(|ip| ip.extend_from_slice(&[0; 6]))),
        ("udp", Box::new(|ip| ip[9] = 17)),
        ("ihl 6", Box::new(|ip| ip[0] = 0x46)),
        ("version 6", Box::new(|ip| ip[0] = 0x65)),
        ("cut tcp header", Box::new(|ip| ip.truncate(30))),
        ("tcp offset 4", Box::new(|ip| ip[32] = 4 << 4)),
    ];
    let cfg = DecodeConfig::default();
    let mut shortcut_answers = 0;
    for payload in [&b""[..], b"GET / HTTP/1.1\r\n\r\n"] {
        for (name, edit) in &edits {
            let f = frame(edit.as_ref(), tcp(payload));
            for cut in [f.len(), 34, 33, 20, 14, 0] {
                let f = &f[..cut.min(f.len())];
                let mut short = Decoded::default();
                decode(1, f, &cfg, &mut short);
                let mut general = Decoded::default();
                decode_general(1, f, &cfg, &mut general);
                assert_eq!(short, general, "{name}, {cut} bytes");
                // The owner's shortcut for the same frames answers as
                // `quick_ip_pair` does, where it answers.
                if let Some((src, dst)) = quick_ipv4_tcp_pair(1, f) {
                    let words = (
                        IpAddr::from(src.to_be_bytes()),
                        IpAddr::from(dst.to_be_bytes()),
                    );
                    assert_eq!(
                        quick_ip_pair(1, f, &cfg),
                        Some(words),
                        "{name}, {cut} bytes"
                    );
                    shortcut_answers += 1;
                }
            }
        }
    }
    // The plain frame, with DF, fragments, total 0/20/longer, padding, cut
    // TCP headers: each with both payloads, whole and cut to 34 bytes.
    assert!(shortcut_answers >= 40, "{shortcut_answers}");
}

/// The shortcut to a frame's innermost addresses follows the configured
/// UDP tunnel ports: with VXLAN decapsulation on (the default) it leaves
/// the VXLAN packets to the decoder; with it off (port 0) it gives their
/// outer addresses, as the decoder then does; and wherever it answers, the
/// answer is the decoder's.
#[test]
fn quick_ip_pair_follows_the_configured_tunnel_ports() {
    let dir = pcapfile::corpus_dir().expect("corpus");
    let pcap = pcapfile::read(&dir.join("tunnels/ndpi-vxlan.pcap")).expect("capture");
    let off = DecodeConfig {
        vxlan_port: 0,
        ..DecodeConfig::default()
    };
    let (mut vxlan, mut quick_off) = (0, 0);
    for rec in &pcap.records {
        for cfg in [DecodeConfig::default(), off] {
            let mut d = Decoded::default();
            decode(pcap.link, rec, &cfg, &mut d);
            let quick = quick_ip_pair(pcap.link, rec, &cfg);
            if let Some(pair) = quick {
                assert_eq!(Some(pair), d.ip.map(|ip| (ip.src, ip.dst)));
            }
            let carried = d.tunnel.map(|t| t.kind) == Some(TunnelKind::Vxlan);
            if cfg.vxlan_port != 0 && carried {
                vxlan += 1;
                assert_eq!(quick, None);
            }
            if cfg.vxlan_port == 0 && quick.is_some() {
                quick_off += 1;
            }
        }
    }
    assert!(vxlan > 0, "no VXLAN packet decoded");
    assert!(
        quick_off >= vxlan,
        "{quick_off} shortcuts with VXLAN off, {vxlan} VXLAN packets"
    );
}
