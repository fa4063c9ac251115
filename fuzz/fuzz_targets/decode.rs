//! Arbitrary bytes through the L2–L4 decoder under every supported link
//! type, then through the flow key, Community ID and the continuation
//! after reassembly. Any panic is a bug.
#![no_main]

use dissect::flow::{shard_hash, FlowKey, KeyConfig};
use dissect::packet::{decode, decode_ip_payload, DecodeConfig, Decoded};
use libfuzzer_sys::fuzz_target;

const LINKS: [u32; 11] = [0, 1, 9, 50, 101, 104, 108, 113, 228, 229, 276];

fuzz_target!(|data: &[u8]| {
    // The first byte picks the link type and a config variant, so the
    // fuzzer can steer both; the rest is the frame.
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    let cfg = DecodeConfig {
        max_tunnel_depth: if sel & 0x80 != 0 { 1 } else { 4 },
        teredo_port: (sel & 0x40 == 0).then_some(3544),
        ..DecodeConfig::default()
    };
    let kcfg = KeyConfig {
        vlan: sel & 0x20 == 0,
        tunnel_id: sel & 0x10 == 0,
    };
    let mut d = Decoded::default();
    decode(link, frame, &cfg, &mut d);
    check(&d, &kcfg);
    let _ = shard_hash(&d);
    // The decode offline replay hands from its reader to the owner worker.
    let copy = frame.to_vec();
    let mut fresh = Decoded::default();
    decode(link, &copy, &cfg, &mut fresh);
    assert_eq!(d.detach(frame).attach(&copy), fresh);
    if let Some(t) = d.tunnel {
        let (k, _) = FlowKey::from_tunnel(&t, 0);
        let _ = k.community_id(0);
    }
    // Pretend the fragment's own data is the reassembled payload.
    if let Some(ip) = d.ip {
        let mut whole = Decoded::default();
        decode_ip_payload(&d, ip.proto, d.ip_payload, &cfg, &mut whole);
        check(&whole, &kcfg);
    }
});

fn check(d: &Decoded<'_>, kcfg: &KeyConfig) {
    assert!(d.vlans.len() <= 3);
    let Some((k, _)) = FlowKey::from_decoded(d, kcfg) else {
        return;
    };
    assert_eq!(k.community_id(1).len(), 30);
    // Both directions map to the stored key (ICMP keys may be one-way).
    if !matches!(k.proto(), 1 | 58) {
        let ((a, ap), (b, bp)) = k.endpoints();
        let there = FlowKey::new((a, ap), (b, bp), k.proto(), k.vlan(), k.tunnel_id(), false);
        let back = FlowKey::new((b, bp), (a, ap), k.proto(), k.vlan(), k.tunnel_id(), false);
        assert_eq!(there.0, k);
        assert_eq!(back.0, k);
        assert_eq!(there.0.hash64(), back.0.hash64());
    }
}
