//! Block encoders for pcapng and classic pcap (little-endian, nanosecond
//! timestamps). Hand-written: the formats need four block layouts, and
//! encoding straight into the file's reused buffer keeps the writer free of
//! per-packet allocation. Checked against tshark/capinfos and pcap-parser.

/// pcapng Section Header Block type (also its byte-order-independent magic).
const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_ENDOFOPT: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_TSRESOL: u16 = 9;
/// Classic pcap magic for nanosecond timestamps.
pub const PCAP_NS_MAGIC: u32 = 0xA1B2_3C4D;
/// The snap length a classic pcap header states for "whole frame".
const PCAP_WHOLE_FRAME: u32 = 262_144;

fn u16le(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn u32le(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn pad4(buf: &mut Vec<u8>, len: usize) {
    let pad = (4 - len % 4) % 4;
    buf.extend_from_slice(&[0u8; 3][..pad]);
}

/// One option: code, length, value padded to 32 bits. Values longer than
/// 65535 bytes are cut (the length field is 16 bits).
fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX))];
    u16le(buf, code);
    u16le(buf, value.len() as u16);
    buf.extend_from_slice(value);
    pad4(buf, value.len());
}

/// Writes the block's total length at `start + 4` and at the end.
fn close_block(buf: &mut Vec<u8>, start: usize) {
    let total = (buf.len() - start + 4) as u32;
    buf[start + 4..start + 8].copy_from_slice(&total.to_le_bytes());
    u32le(buf, total);
}

/// Section Header Block with one comment and the writing application.
pub fn pcapng_shb(buf: &mut Vec<u8>, comment: &str, user_appl: &str) {
    let start = buf.len();
    u32le(buf, SHB);
    u32le(buf, 0); // total length, patched
    u32le(buf, BYTE_ORDER_MAGIC);
    u16le(buf, 1); // major
    u16le(buf, 0); // minor
    buf.extend_from_slice(&(-1i64).to_le_bytes()); // section length: unknown
    if !comment.is_empty() {
        option(buf, OPT_COMMENT, comment.as_bytes());
    }
    option(buf, SHB_USERAPPL, user_appl.as_bytes());
    option(buf, OPT_ENDOFOPT, &[]);
    close_block(buf, start);
}

/// Interface Description Block: link type, snap length (0 = none) and
/// `if_tsresol` = 9 (timestamps in nanoseconds).
pub fn pcapng_idb(buf: &mut Vec<u8>, linktype: u32, snaplen: u32) {
    let start = buf.len();
    u32le(buf, IDB);
    u32le(buf, 0);
    u16le(buf, linktype as u16);
    u16le(buf, 0); // reserved
    u32le(buf, snaplen);
    option(buf, IF_TSRESOL, &[9]);
    option(buf, OPT_ENDOFOPT, &[]);
    close_block(buf, start);
}

/// Enhanced Packet Block on interface 0.
pub fn pcapng_epb(buf: &mut Vec<u8>, ts_ns: u64, orig_len: u32, data: &[u8]) {
    let start = buf.len();
    u32le(buf, EPB);
    u32le(buf, 0);
    u32le(buf, 0); // interface id
    u32le(buf, (ts_ns >> 32) as u32);
    u32le(buf, ts_ns as u32);
    u32le(buf, data.len() as u32);
    u32le(buf, orig_len.max(data.len() as u32));
    buf.extend_from_slice(data);
    pad4(buf, data.len());
    close_block(buf, start);
}

/// Size of the EPB for `caplen` captured bytes.
pub fn pcapng_epb_len(caplen: usize) -> usize {
    32 + caplen.div_ceil(4) * 4
}

/// Classic pcap file header, nanosecond magic.
pub fn pcap_header(buf: &mut Vec<u8>, linktype: u32, snaplen: u32) {
    u32le(buf, PCAP_NS_MAGIC);
    u16le(buf, 2);
    u16le(buf, 4);
    u32le(buf, 0); // thiszone
    u32le(buf, 0); // sigfigs
    u32le(
        buf,
        if snaplen == 0 {
            PCAP_WHOLE_FRAME
        } else {
            snaplen
        },
    );
    u32le(buf, linktype);
}

/// Classic pcap record header and data.
pub fn pcap_record(buf: &mut Vec<u8>, ts_ns: u64, orig_len: u32, data: &[u8]) {
    u32le(buf, (ts_ns / 1_000_000_000) as u32);
    u32le(buf, (ts_ns % 1_000_000_000) as u32);
    u32le(buf, data.len() as u32);
    u32le(buf, orig_len.max(data.len() as u32));
    buf.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_parser::pcapng::Block;
    use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
    use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapNGReader};

    /// An option's value without its padding.
    fn opt<'a>(o: &'a pcap_parser::pcapng::PcapNGOption<'_>) -> &'a [u8] {
        &o.value()[..usize::from(o.len)]
    }

    #[test]
    fn pcapng_blocks_parse_back() {
        let mut buf = Vec::new();
        pcapng_shb(&mut buf, "rule=web", "flowtap 0.1.0");
        pcapng_idb(&mut buf, 1, 128);
        let frame: Vec<u8> = (0..61u8).collect();
        pcapng_epb(&mut buf, 1_700_000_000_123_456_789, 1514, &frame);
        assert_eq!(buf.len() % 4, 0);
        let mut r = PcapNGReader::new(65536, &buf[..]).expect("reader");
        let mut seen = 0;
        let mut stalls = 0;
        loop {
            match r.next() {
                Ok((n, PcapBlockOwned::NG(b))) => {
                    match &b {
                        Block::SectionHeader(s) => {
                            assert_eq!(s.major_version, 1);
                            assert_eq!(opt(&s.options[0]), b"rule=web");
                            assert_eq!(opt(&s.options[1]), b"flowtap 0.1.0");
                        }
                        Block::InterfaceDescription(i) => {
                            assert_eq!(i.linktype.0, 1);
                            assert_eq!(i.snaplen, 128);
                            assert_eq!(i.if_tsresol, 9);
                        }
                        Block::EnhancedPacket(e) => {
                            let ts = (u64::from(e.ts_high) << 32) | u64::from(e.ts_low);
                            assert_eq!(ts, 1_700_000_000_123_456_789);
                            assert_eq!(e.caplen, 61);
                            assert_eq!(e.origlen, 1514);
                            assert_eq!(e.packet_data(), &frame[..]);
                            assert_eq!(e.block_len1 as usize, pcapng_epb_len(61));
                        }
                        other => panic!("unexpected block {other:?}"),
                    }
                    seen += 1;
                    r.consume(n);
                }
                Ok(_) => panic!("not pcapng"),
                Err(pcap_parser::PcapError::Eof) => break,
                Err(pcap_parser::PcapError::Incomplete(_)) => {
                    r.refill().expect("refill");
                    stalls += 1;
                    assert!(stalls < 4, "truncated input");
                }
                Err(e) => panic!("parse: {e:?}"),
            }
        }
        assert_eq!(seen, 3);
    }

    #[test]
    fn classic_pcap_parses_back() {
        let mut buf = Vec::new();
        pcap_header(&mut buf, 101, 0);
        pcap_record(&mut buf, 1_700_000_000_000_000_007, 40, &[0x45; 40]);
        let mut r = LegacyPcapReader::new(65536, &buf[..]).expect("reader");
        let mut seen = 0;
        let mut stalls = 0;
        loop {
            match r.next() {
                Ok((n, PcapBlockOwned::LegacyHeader(h))) => {
                    assert_eq!(h.magic_number, PCAP_NS_MAGIC);
                    assert!(h.is_nanosecond_precision());
                    assert_eq!(h.network.0, 101);
                    assert_eq!(h.snaplen, PCAP_WHOLE_FRAME);
                    seen += 1;
                    r.consume(n);
                }
                Ok((n, PcapBlockOwned::Legacy(p))) => {
                    assert_eq!(p.ts_sec, 1_700_000_000);
                    assert_eq!(p.ts_usec, 7); // nanoseconds, despite the name
                    assert_eq!(p.origlen, 40);
                    assert_eq!(p.data, &[0x45; 40][..]);
                    seen += 1;
                    r.consume(n);
                }
                Ok(_) => panic!("not pcap"),
                Err(pcap_parser::PcapError::Eof) => break,
                Err(pcap_parser::PcapError::Incomplete(_)) => {
                    r.refill().expect("refill");
                    stalls += 1;
                    assert!(stalls < 4, "truncated input");
                }
                Err(e) => panic!("parse: {e:?}"),
            }
        }
        assert_eq!(seen, 2);
    }
}
