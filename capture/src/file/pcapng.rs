//! pcapng files: a sequence of blocks `type u32, total_len u32, body,
//! total_len u32`, grouped in sections that each start with a Section Header
//! Block (which also fixes the section's byte order) and declare their
//! interfaces with Interface Description Blocks. Packets come in Enhanced,
//! Simple or (obsolete) Packet Blocks. Every other block is skipped.
//! Format: <https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcapng/>.

use std::num::NonZeroU64;

use super::input::{u32_in, Endian, Input};
use super::{over_snaplen, FileError, RawPacket, MAX_CAPLEN};
use crate::source::LinkType;

/// Block type of the SHB; a palindrome, so it reads the same in both orders.
pub(super) const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

const BT_IDB: u32 = 0x0000_0001;
const BT_PB: u32 = 0x0000_0002;
const BT_SPB: u32 = 0x0000_0003;
const BT_EPB: u32 = 0x0000_0006;

const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Blocks we parse are loaded whole; larger ones are only legal for block
/// types we skip (those are streamed past without buffering).
const MAX_PARSED_BLOCK: usize = 4 << 20;
/// More interfaces than this in one section is not a real capture.
const MAX_INTERFACES: usize = 1 << 16;

/// How raw timestamp units become nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Units of 10^-k s with k <= 9: multiply by 10^(9-k).
    Mul(u64),
    /// Units of 10^-k s with 9 < k <= 19: divide by 10^(k-9).
    Div(NonZeroU64),
    /// Units of 2^-k s.
    Pow2(u32),
}

impl TsScale {
    const MICROS: TsScale = TsScale::Mul(1000);

    /// From the if_tsresol option byte.
    fn from_tsresol(v: u8) -> Option<TsScale> {
        let k = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            return (k <= 63).then_some(TsScale::Pow2(k));
        }
        match k {
            0..=9 => Some(TsScale::Mul(10u64.pow(9 - k))),
            10..=19 => NonZeroU64::new(10u64.pow(k - 9)).map(TsScale::Div),
            _ => None,
        }
    }

    #[inline(always)]
    fn to_ns(self, raw: u64) -> u64 {
        match self {
            TsScale::Mul(m) => raw.saturating_mul(m),
            TsScale::Div(d) => raw / d,
            TsScale::Pow2(k) => {
                let ns = (u128::from(raw) * 1_000_000_000) >> k;
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    scale: TsScale,
    /// if_tsoffset, in nanoseconds.
    offset_ns: i64,
}

impl Interface {
    #[inline(always)]
    fn ts_ns(&self, hi: u32, lo: u32) -> u64 {
        let ts = self.scale.to_ns((u64::from(hi) << 32) | u64::from(lo));
        if self.offset_ns == 0 {
            ts
        } else {
            ts.saturating_add_signed(self.offset_ns)
        }
    }
}

pub(super) struct PcapngReader {
    endian: Endian,
    /// Interfaces of the current section, by interface id.
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, given to Simple Packet Blocks (which
    /// carry none) so that time never runs backwards for the engine.
    last_ts: u64,
}

fn corrupt(offset: u64, reason: String) -> FileError {
    FileError::Corrupt { offset, reason }
}

impl PcapngReader {
    /// Parse the first Section Header Block (the magic was checked).
    pub(super) fn open(input: &mut Input) -> Result<PcapngReader, FileError> {
        let mut r = PcapngReader {
            endian: Endian::Little,
            interfaces: Vec::new(),
            last_ts: 0,
        };
        r.read_shb(input)?;
        Ok(r)
    }

    /// Link type of the first interface seen in the current section.
    pub(super) fn link(&self) -> Option<LinkType> {
        self.interfaces.first().map(|i| i.link)
    }

    fn read_shb(&mut self, input: &mut Input) -> Result<(), FileError> {
        let offset = input.offset();
        let Some(h) = input.need::<12>()? else {
            return Err(FileError::Truncated {
                offset,
                needed: 12,
                available: input.avail() as u64,
            });
        };
        let magic = [h[8], h[9], h[10], h[11]];
        let endian = if u32::from_le_bytes(magic) == BYTE_ORDER_MAGIC {
            Endian::Little
        } else if u32::from_be_bytes(magic) == BYTE_ORDER_MAGIC {
            Endian::Big
        } else {
            return Err(corrupt(
                offset,
                format!(
                    "section header has byte-order magic {:#010x}, not 0x1a2b3c4d",
                    u32::from_be_bytes(magic)
                ),
            ));
        };
        let total = endian.u32([h[4], h[5], h[6], h[7]]);
        let n = load_block(input, offset, endian, total, 28)?;
        let block = input.window(n);
        let major = endian.u16_at(block, 12).unwrap_or(0);
        let minor = endian.u16_at(block, 14).unwrap_or(0);
        if major != 1 {
            return Err(FileError::Unsupported {
                offset,
                reason: format!("pcapng version {major}.{minor}"),
            });
        }
        input.consume(n);
        self.endian = endian;
        self.interfaces.clear();
        Ok(())
    }

    /// The next packet if its record is whole in the window and well
    /// formed, with the record's length (the caller consumes it); `None`
    /// leaves it to [`Self::next`]. Nearly every record takes this path,
    /// with the byte order fixed at compile time (the general path
    /// re-dispatches on it for every field).
    #[inline(always)]
    pub(super) fn in_window(&mut self, input: &Input) -> Option<(RawPacket, usize)> {
        match self.endian {
            Endian::Little => self.epb_in_window::<false>(input),
            Endian::Big => self.epb_in_window::<true>(input),
        }
    }

    /// The next block if it is a well-formed Enhanced Packet Block held
    /// whole in the window, with its length; `None` sends the block through
    /// the general path, which makes the same checks and names what failed.
    #[inline(always)]
    fn epb_in_window<const BIG: bool>(&mut self, input: &Input) -> Option<(RawPacket, usize)> {
        let w = input.window(input.avail());
        let h: &[u8] = w.first_chunk::<28>()?;
        let word = |at: usize| u32_in::<BIG>(h, at).unwrap_or_default();
        if word(0) != BT_EPB {
            return None;
        }
        let total = word(4);
        let n = total as usize;
        if total < 32 || total & 3 != 0 || n > MAX_PARSED_BLOCK || n > w.len() {
            return None;
        }
        let caplen = word(20);
        if u32_in::<BIG>(w, n - 4)? != total || caplen > MAX_CAPLEN || 28 + caplen as usize + 4 > n
        {
            return None;
        }
        let iface = *self.interfaces.get(word(8) as usize)?;
        let ts_ns = iface.ts_ns(word(12), word(16));
        self.last_ts = ts_ns;
        let packet = RawPacket {
            record_offset: input.offset(),
            ts_ns,
            start: input.pos() + 28,
            caplen,
            orig_len: word(24),
            link: iface.link,
            over_snaplen: over_snaplen(caplen, iface.snaplen),
        };
        Some((packet, n))
    }

    /// Any block, read one field at a time: section headers, interface
    /// descriptions, the other packet blocks, blocks to skip, and errors.
    #[inline(never)]
    pub(super) fn next(&mut self, input: &mut Input) -> Result<Option<RawPacket>, FileError> {
        loop {
            let offset = input.offset();
            let Some(h) = input.need::<8>()? else {
                return match input.avail() {
                    0 => Ok(None),
                    n => Err(FileError::Truncated {
                        offset,
                        needed: 8,
                        available: n as u64,
                    }),
                };
            };
            if [h[0], h[1], h[2], h[3]] == SHB_MAGIC {
                self.read_shb(input)?;
                continue;
            }
            let e = self.endian;
            let btype = e.u32([h[0], h[1], h[2], h[3]]);
            let total = e.u32([h[4], h[5], h[6], h[7]]);
            let is_parsed = matches!(btype, BT_IDB | BT_PB | BT_SPB | BT_EPB);
            if !is_parsed && total as usize > MAX_PARSED_BLOCK && total & 3 == 0 {
                let skipped = input.skip(u64::from(total))?;
                if skipped < u64::from(total) {
                    return Err(FileError::Truncated {
                        offset,
                        needed: u64::from(total),
                        available: skipped,
                    });
                }
                continue;
            }
            let min = match btype {
                BT_IDB => 20,
                BT_SPB => 16,
                BT_PB | BT_EPB => 32,
                _ => 12,
            };
            let n = load_block(input, offset, e, total, min)?;
            let block = input.window(n);
            let pos = input.pos();
            let packet = match btype {
                BT_EPB | BT_PB => self.epb(block, btype, offset, pos)?,
                BT_SPB => self.spb(block, offset, pos)?,
                BT_IDB => {
                    self.idb(block, offset)?;
                    None
                }
                _ => None,
            };
            input.consume(n);
            if packet.is_some() {
                return Ok(packet);
            }
        }
    }

    fn interface(&self, id: u32, offset: u64) -> Result<Interface, FileError> {
        self.interfaces.get(id as usize).copied().ok_or_else(|| {
            corrupt(
                offset,
                format!(
                    "packet for interface {id}, but the section declares {}",
                    self.interfaces.len()
                ),
            )
        })
    }

    /// Enhanced Packet Block, or the obsolete Packet Block (16-bit interface
    /// id followed by a 16-bit drops count; otherwise the same layout).
    #[inline(always)]
    fn epb(
        &mut self,
        block: &[u8],
        btype: u32,
        offset: u64,
        pos: usize,
    ) -> Result<Option<RawPacket>, FileError> {
        let e = self.endian;
        // `load_block` checked block.len() >= 32.
        let id = if btype == BT_EPB {
            e.u32_at(block, 8)
        } else {
            e.u16_at(block, 8).map(u32::from)
        };
        let iface = self.interface(id.unwrap_or(u32::MAX), offset)?;
        let hi = e.u32_at(block, 12).unwrap_or(0);
        let lo = e.u32_at(block, 16).unwrap_or(0);
        let caplen = e.u32_at(block, 20).unwrap_or(u32::MAX);
        let orig_len = e.u32_at(block, 24).unwrap_or(0);
        check_caplen(caplen, 28, block.len(), offset)?;
        let ts_ns = iface.ts_ns(hi, lo);
        self.last_ts = ts_ns;
        Ok(Some(RawPacket {
            record_offset: offset,
            ts_ns,
            start: pos + 28,
            caplen,
            orig_len,
            link: iface.link,
            over_snaplen: over_snaplen(caplen, iface.snaplen),
        }))
    }

    /// Simple Packet Block: interface 0, no timestamp, captured length =
    /// min(original length, snaplen).
    fn spb(
        &mut self,
        block: &[u8],
        offset: u64,
        pos: usize,
    ) -> Result<Option<RawPacket>, FileError> {
        let iface = self.interface(0, offset)?;
        let orig_len = self.endian.u32_at(block, 8).unwrap_or(u32::MAX);
        let caplen = match iface.snaplen {
            0 => orig_len,
            s => orig_len.min(s),
        };
        check_caplen(caplen, 12, block.len(), offset)?;
        Ok(Some(RawPacket {
            record_offset: offset,
            ts_ns: self.last_ts,
            start: pos + 12,
            caplen,
            orig_len,
            link: iface.link,
            over_snaplen: false,
        }))
    }

    fn idb(&mut self, block: &[u8], offset: u64) -> Result<(), FileError> {
        let e = self.endian;
        let link = e.u16_at(block, 8).unwrap_or(0);
        let snaplen = e.u32_at(block, 12).unwrap_or(0);
        let mut iface = Interface {
            link: LinkType(u32::from(link)),
            snaplen,
            scale: TsScale::MICROS,
            offset_ns: 0,
        };
        let end = block.len().saturating_sub(4);
        let mut opts = block.get(16..end).unwrap_or(&[]);
        // Options are lax: a malformed list ends the list, as it only loses
        // information we have defaults for. A bad resolution is an error,
        // since every timestamp would be wrong.
        while let (Some(code), Some(len)) = (e.u16_at(opts, 0), e.u16_at(opts, 2)) {
            let len = usize::from(len);
            let Some(value) = opts.get(4..4 + len) else {
                break;
            };
            match code {
                OPT_ENDOFOPT => break,
                OPT_IF_TSRESOL if len >= 1 => {
                    let v = value.first().copied().unwrap_or(6);
                    iface.scale =
                        TsScale::from_tsresol(v).ok_or_else(|| FileError::Unsupported {
                            offset,
                            reason: format!("interface timestamp resolution if_tsresol={v:#04x}"),
                        })?;
                }
                OPT_IF_TSOFFSET if len == 8 => {
                    let secs = e.u64_at(value, 0).unwrap_or(0) as i64;
                    iface.offset_ns = secs.saturating_mul(1_000_000_000);
                }
                _ => {}
            }
            let padded = (4 + len + 3) & !3;
            opts = opts.get(padded..).unwrap_or(&[]);
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(corrupt(
                offset,
                format!("more than {MAX_INTERFACES} interfaces in one section"),
            ));
        }
        self.interfaces.push(iface);
        Ok(())
    }
}

/// Check a block's lengths and load all of it into the window; returns its
/// length.
#[inline(always)]
fn load_block(
    input: &mut Input,
    offset: u64,
    e: Endian,
    total: u32,
    min: u32,
) -> Result<usize, FileError> {
    if total < min || total & 3 != 0 {
        return Err(corrupt(
            offset,
            format!("block length {total} (must be a multiple of 4, at least {min})"),
        ));
    }
    let n = total as usize;
    if n > MAX_PARSED_BLOCK {
        return Err(corrupt(
            offset,
            format!("block of {total} bytes is larger than the {MAX_PARSED_BLOCK} allowed"),
        ));
    }
    if !input.fill(n)? {
        return Err(FileError::Truncated {
            offset,
            needed: u64::from(total),
            available: input.avail() as u64,
        });
    }
    let block = input.window(n);
    let trailer = e.u32_at(block, n - 4);
    if trailer != Some(total) {
        return Err(corrupt(
            offset,
            format!(
                "block length {total} at its start but {} at its end",
                trailer.unwrap_or(0)
            ),
        ));
    }
    Ok(n)
}

/// `data_at`: where packet data starts in the block.
#[inline(always)]
fn check_caplen(
    caplen: u32,
    data_at: usize,
    block_len: usize,
    offset: u64,
) -> Result<(), FileError> {
    if caplen > MAX_CAPLEN {
        return Err(corrupt(
            offset,
            format!(
                "packet caplen {caplen} is larger than the {MAX_CAPLEN} bytes a packet may have"
            ),
        ));
    }
    // Data plus the trailing length must fit in the block.
    if data_at + caplen as usize + 4 > block_len {
        return Err(corrupt(
            offset,
            format!("packet caplen {caplen} does not fit in a block of {block_len} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::NgBuilder;
    use super::super::{CaptureFile, FileError};
    use super::TsScale;
    use crate::source::LinkType;

    type Pkt = (u64, Vec<u8>, u32, LinkType);

    fn all(bytes: Vec<u8>) -> (Vec<Pkt>, Option<FileError>) {
        let mut f = CaptureFile::from_bytes(bytes).unwrap();
        let mut out = Vec::new();
        loop {
            match f.next_packet() {
                Ok(Some(p)) => out.push((p.ts_ns, p.data.to_vec(), p.orig_len, p.link)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    const TS: u64 = 1_700_000_000;

    #[test]
    fn tsresol_variants() {
        // (option byte, raw units for TS + 0.5 s, expected ns)
        let cases: [(Option<u8>, u64); 6] = [
            (None, TS * 1_000_000 + 500_000),
            (Some(6), TS * 1_000_000 + 500_000),
            (Some(9), TS * 1_000_000_000 + 500_000_000),
            (Some(3), TS * 1_000 + 500),
            (Some(10), TS * 10_000_000_000 + 5_000_000_000),
            (Some(0x80 | 10), TS * 1024 + 512),
        ];
        for big in [false, true] {
            for (resol, raw) in cases {
                let mut b = NgBuilder::new(big);
                let opts: Vec<(u16, Vec<u8>)> = resol.map(|v| (9, vec![v])).into_iter().collect();
                b.idb(1, 0, &opts);
                b.epb(0, raw, &[1, 2, 3, 4, 5], 5);
                let (pkts, err) = all(b.finish());
                assert!(err.is_none(), "{resol:?}: {err:?}");
                assert_eq!(pkts.len(), 1);
                assert_eq!(pkts[0].0, TS * 1_000_000_000 + 500_000_000, "{resol:?}");
                assert_eq!(pkts[0].1, vec![1, 2, 3, 4, 5]);
            }
        }
        assert_eq!(TsScale::from_tsresol(20), None);
        assert_eq!(TsScale::from_tsresol(0x80 | 64), None);
        assert!(TsScale::from_tsresol(19).is_some());
    }

    #[test]
    fn tsoffset_is_added() {
        let mut b = NgBuilder::new(false);
        b.idb(1, 0, &[(14, 100i64.to_le_bytes().to_vec()), (9, vec![9])]);
        b.epb(0, 1_000_000_007, &[0; 4], 4);
        let (pkts, _) = all(b.finish());
        assert_eq!(pkts[0].0, 101_000_000_007);
    }

    #[test]
    fn bad_tsresol_is_unsupported() {
        let mut b = NgBuilder::new(false);
        b.idb(1, 0, &[(9, vec![25])]);
        b.epb(0, 1, &[0; 4], 4);
        let (_, err) = all(b.finish());
        assert!(
            matches!(err, Some(FileError::Unsupported { offset: 28, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn sections_interfaces_and_block_kinds() {
        let mut b = NgBuilder::new(false);
        b.idb(1, 0, &[]); // if 0: ethernet, micro
        b.idb(101, 0, &[(9, vec![9])]); // if 1: raw, nano
        b.block(0x0000_0004, &[0; 12]); // name resolution block: skipped
        b.epb(0, TS * 1_000_000, &[1; 3], 3);
        b.epb(1, TS * 1_000_000_000 + 1, &[2; 5], 9);
        b.spb(&[3; 7], 7); // no timestamp: the previous one is reused
        b.pb(1, TS * 1_000_000_000 + 2, &[4; 2], 2);
        b.block(0x4000_0bad, &[9; 40]); // custom block: skipped
                                        // A second section in the other byte order; interfaces restart.
        b.shb(true);
        b.idb(113, 64, &[(9, vec![3])]);
        b.epb(0, TS * 1000 + 1, &[5; 64], 1500);
        b.spb(&[6; 64], 100); // captured length = min(100, snaplen 64)
        let (pkts, err) = all(b.finish());
        assert!(err.is_none(), "{err:?}");
        let got: Vec<(u64, usize, u32, u32)> = pkts
            .iter()
            .map(|p| (p.0 - TS * 1_000_000_000, p.1.len(), p.2, p.3 .0))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 3, 3, 1),
                (1, 5, 9, 101),
                (1, 7, 7, 1),
                (2, 2, 2, 101),
                (1_000_000, 64, 1500, 113),
                (1_000_000, 64, 100, 113),
            ]
        );
        assert_eq!(pkts[2].1, vec![3; 7]);
    }

    #[test]
    fn packet_for_undeclared_interface_is_corrupt() {
        let mut b = NgBuilder::new(false);
        b.idb(1, 0, &[]);
        b.epb(0, 1, &[0; 4], 4);
        let off = b.len();
        b.epb(3, 1, &[0; 4], 4);
        let (pkts, err) = all(b.finish());
        assert_eq!(pkts.len(), 1);
        assert!(matches!(err, Some(FileError::Corrupt { offset, .. }) if offset == off as u64));
    }

    #[test]
    fn trailer_mismatch_and_bad_lengths_are_corrupt() {
        let mut b = NgBuilder::new(false);
        b.idb(1, 0, &[]);
        let off = b.len();
        b.epb(0, 1, &[0; 4], 4);
        let mut bytes = b.finish();
        let n = bytes.len();
        bytes[n - 4] ^= 4;
        let (_, err) = all(bytes.clone());
        assert!(matches!(err, Some(FileError::Corrupt { offset, .. }) if offset == off as u64));
        // Block length not a multiple of 4.
        bytes[off + 4] ^= 1;
        let (_, err) = all(bytes);
        assert!(matches!(err, Some(FileError::Corrupt { offset, .. }) if offset == off as u64));
    }

    #[test]
    fn caplen_beyond_block_or_limit_is_corrupt() {
        let mut b = NgBuilder::new(true);
        b.idb(1, 1500, &[]);
        let off = b.len();
        b.epb(0, 1, &[0; 8], 8);
        let mut bytes = b.finish();
        // caplen 12 in a block with room for 8.
        bytes[off + 20..off + 24].copy_from_slice(&12u32.to_be_bytes());
        let (_, err) = all(bytes.clone());
        assert!(matches!(err, Some(FileError::Corrupt { offset, .. }) if offset == off as u64));
        bytes[off + 20..off + 24].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let (_, err) = all(bytes);
        assert!(matches!(err, Some(FileError::Corrupt { offset, .. }) if offset == off as u64));
    }

    #[test]
    fn packets_longer_than_the_interface_snaplen_are_read_whole_and_counted() {
        let mut b = NgBuilder::new(false);
        b.idb(1, 64, &[]);
        b.epb(0, 1, &[1; 64], 64);
        b.epb(0, 2, &[2; 1000], 1000);
        let f = CaptureFile::from_bytes(b.finish()).unwrap();
        let over = f.over_snaplen();
        let (pkts, err) = all_file(f);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts, vec![64, 1000]);
        assert_eq!(over.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    fn all_file(mut f: CaptureFile) -> (Vec<usize>, Option<FileError>) {
        let mut out = Vec::new();
        loop {
            match f.next_packet() {
                Ok(Some(p)) => out.push(p.data.len()),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn unsupported_version_and_bad_byte_order_magic() {
        let mut bytes = NgBuilder::new(false).finish();
        bytes[12] = 2;
        let err = CaptureFile::from_bytes(bytes.clone()).err().unwrap();
        assert!(
            matches!(err, FileError::Unsupported { offset: 0, .. }),
            "{err}"
        );
        bytes[8] = 0;
        let err = CaptureFile::from_bytes(bytes).err().unwrap();
        assert!(matches!(err, FileError::Corrupt { offset: 0, .. }), "{err}");
    }

    #[test]
    fn huge_skipped_block_is_streamed_past() {
        let mut b = NgBuilder::new(false);
        b.idb(1, 0, &[]);
        b.block(0x0000_0bad, &vec![0x55; 5 << 20]);
        b.epb(0, 7, &[1; 4], 4);
        let bytes = b.finish();
        let (pkts, err) = all(bytes.clone());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts.len(), 1);
        // The same from a file with a small starting buffer.
        let tmp = super::super::testutil::TempFile::new("huge-skip.pcapng", &bytes);
        let mut f = CaptureFile::open_with_buffer(tmp.path(), 4096).unwrap();
        assert_eq!(f.next_packet().unwrap().unwrap().data, &[1; 4]);
        assert!(f.next_packet().unwrap().is_none());
        // Cut inside the huge block: truncated, at the block's offset.
        let cut = tmp.path().with_extension("cut");
        std::fs::write(&cut, &bytes[..3 << 20]).unwrap();
        let mut f = CaptureFile::open_with_buffer(&cut, 4096).unwrap();
        let err = f.next_packet().err().unwrap();
        let _ = std::fs::remove_file(&cut);
        assert!(
            matches!(err, FileError::Truncated { offset: 48, available, .. } if available == (3 << 20) - 48),
            "{err:?}"
        );
        // And the error stays.
        assert!(matches!(
            f.next_packet(),
            Err(FileError::Truncated { offset: 48, .. })
        ));
    }
}
