//! Packet builders for the unit tests. Checksums are left at 0: the decoder
//! does not verify them (mirrored traffic often has offloaded checksums).

use super::{decode, DecodeConfig, Decoded};

pub(crate) const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub(crate) const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

pub(crate) fn dec(link: u32, frame: &[u8]) -> Decoded<'_> {
    let mut d = Decoded::default();
    decode(link, frame, &DecodeConfig::default(), &mut d);
    d
}

pub(crate) fn eth_with_macs(src: [u8; 6], dst: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    [&dst[..], &src, &ty.to_be_bytes(), payload].concat()
}

pub(crate) fn eth(ty: u16, payload: &[u8]) -> Vec<u8> {
    eth_with_macs(SRC_MAC, DST_MAC, ty, payload)
}

/// A VLAN tag's 4 bytes after its TPID: TCI, then the next ethertype.
pub(crate) fn vlan_tag(id: u16, next: u16) -> Vec<u8> {
    [id.to_be_bytes(), next.to_be_bytes()].concat()
}

pub(crate) fn ipv4_with_options(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let hl = 20 + options.len();
    let total = (hl + payload.len()) as u16;
    let mut p = vec![0x40 | (hl / 4) as u8, 0];
    p.extend(total.to_be_bytes());
    p.extend([0, 1, 0, 0, 64, proto, 0, 0]);
    p.extend(src);
    p.extend(dst);
    p.extend(options);
    p.extend(payload);
    p
}

pub(crate) fn ipv4_raw(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_with_options(src, dst, proto, &[], payload)
}

pub(crate) fn ipv6_raw(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((payload.len() as u16).to_be_bytes());
    p.extend([next, 64]);
    p.extend(src);
    p.extend(dst);
    p.extend(payload);
    p
}

pub(crate) fn tcp_segment(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend(payload);
    t
}

pub(crate) fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(((8 + payload.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    u
}

pub(crate) fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv4_raw(src, dst, 6, &tcp_segment(sport, dport, data))
}

pub(crate) fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv4_raw(src, dst, 17, &udp(sport, dport, data))
}

pub(crate) fn ipv6_udp(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    data: &[u8],
) -> Vec<u8> {
    ipv6_raw(src, dst, 17, &udp(sport, dport, data))
}

pub(crate) fn ipv6_tcp(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    data: &[u8],
) -> Vec<u8> {
    ipv6_raw(src, dst, 6, &tcp_segment(sport, dport, data))
}

/// Minimal classic-pcap reader for corpus tests (pcapng files are skipped
/// by the callers: the capture crate owns that format).
pub(crate) mod pcapfile {
    use std::path::{Path, PathBuf};

    pub(crate) struct Pcap {
        pub(crate) link: u32,
        pub(crate) records: Vec<Vec<u8>>,
    }

    /// `None` for pcapng or anything that is not classic pcap.
    pub(crate) fn read(path: &Path) -> Option<Pcap> {
        let bytes = std::fs::read(path).ok()?;
        let magic: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        let le = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
            _ => return None,
        };
        let rd = |off: usize| -> Option<u32> {
            let b: [u8; 4] = bytes.get(off..off + 4)?.try_into().ok()?;
            Some(if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        };
        let link = rd(20)? & 0x0fff_ffff;
        let mut records = Vec::new();
        let mut off = 24;
        while let Some(incl) = rd(off + 8) {
            let start = off + 16;
            let Some(data) = bytes.get(start..start + incl as usize) else {
                break; // file cut mid-record
            };
            records.push(data.to_vec());
            off = start + incl as usize;
        }
        Some(Pcap { link, records })
    }

    /// The shared corpus folder, or `None` (tests then skip with a message).
    pub(crate) fn corpus_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("FLOWTAP_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
        dir.is_dir().then_some(dir)
    }

    pub(crate) fn reference_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("FLOWTAP_REFERENCE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../shared/reference/suricata-8.0.6/corpus")
            });
        dir.is_dir().then_some(dir)
    }

    /// Every classic .pcap under the corpus, sorted, as (path relative to it, file).
    pub(crate) fn corpus_pcaps() -> Vec<(String, Pcap)> {
        let Some(dir) = corpus_dir() else {
            eprintln!("corpus not found (set FLOWTAP_CORPUS); skipping");
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut topics: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        topics.sort();
        for topic in topics {
            let mut files: Vec<_> = std::fs::read_dir(&topic)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
                .collect();
            files.sort();
            for f in files {
                if let Some(p) = read(&f) {
                    let rel = f
                        .strip_prefix(&dir)
                        .unwrap_or(&f)
                        .to_string_lossy()
                        .into_owned();
                    out.push((rel, p));
                }
            }
        }
        out
    }
}
