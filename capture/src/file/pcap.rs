//! Classic libpcap files: a 24-byte file header, then records of a 16-byte
//! header and `caplen` bytes. Both byte orders, micro- and nanosecond magic.
//! Format: <https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/>.

use super::input::{u32_in, Endian, Input};
use super::{over_snaplen, FileError, RawPacket, MAX_CAPLEN};
use crate::source::LinkType;

pub(super) const MAGIC_US_LE: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];
pub(super) const MAGIC_US_BE: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
pub(super) const MAGIC_NS_LE: [u8; 4] = [0x4d, 0x3c, 0xb2, 0xa1];
pub(super) const MAGIC_NS_BE: [u8; 4] = [0xa1, 0xb2, 0x3c, 0x4d];

pub(super) const FILE_HEADER_LEN: usize = 24;
pub(super) const RECORD_HEADER_LEN: usize = 16;

pub(super) struct PcapReader {
    pub(super) endian: Endian,
    /// Multiplier from the fraction field to nanoseconds (1000 or 1).
    pub(super) frac_to_ns: u32,
    pub(super) link: LinkType,
    /// The header's snaplen (longer records are read whole and counted).
    pub(super) snaplen: u32,
    /// FCS length from the link-type field, when the P bit is set.
    fcs_len: Option<u8>,
}

/// A record's timestamp in nanoseconds.
#[inline(always)]
pub(super) fn ts_ns(sec: u32, frac: u32, frac_to_ns: u32) -> u64 {
    // sec * 1e9 + frac * 1000 < 2^32 * 1.000001e9 < 2^64: cannot overflow.
    u64::from(sec) * 1_000_000_000 + u64::from(frac) * u64::from(frac_to_ns)
}

/// The error for a record header whose caplen is past [`MAX_CAPLEN`].
#[cold]
pub(super) fn caplen_too_large(offset: u64, caplen: u32) -> FileError {
    FileError::Corrupt {
        offset,
        reason: format!(
            "record caplen {caplen} is larger than the {MAX_CAPLEN} bytes a record may have"
        ),
    }
}

impl PcapReader {
    /// Parse the file header at the read position (the magic was checked).
    pub(super) fn open(input: &mut Input) -> Result<PcapReader, FileError> {
        let offset = input.offset();
        let Some(h) = input.need::<FILE_HEADER_LEN>()? else {
            return Err(FileError::Truncated {
                offset,
                needed: FILE_HEADER_LEN as u64,
                available: input.avail() as u64,
            });
        };
        let magic = [h[0], h[1], h[2], h[3]];
        let (endian, frac_to_ns) = match magic {
            MAGIC_US_LE => (Endian::Little, 1000),
            MAGIC_US_BE => (Endian::Big, 1000),
            MAGIC_NS_LE => (Endian::Little, 1),
            MAGIC_NS_BE => (Endian::Big, 1),
            _ => {
                return Err(FileError::NotACapture {
                    path: input.path().to_path_buf(),
                    magic: u32::from_be_bytes(magic),
                })
            }
        };
        // Version (2.4), thiszone and sigfigs are not used: every writer
        // sets thiszone 0 and libpcap ignores it.
        let snaplen = endian.u32([h[16], h[17], h[18], h[19]]);
        let link_field = endian.u32([h[20], h[21], h[22], h[23]]);
        // Low 16 bits: link type. Bit 26 (P) set: bits 28..31 hold the FCS
        // length in 16-bit words. Bits 16..25 are reserved.
        let link = LinkType(link_field & 0xffff);
        let fcs_len = (link_field & 0x0400_0000 != 0).then_some(((link_field >> 28) * 2) as u8);
        input.consume(FILE_HEADER_LEN);
        Ok(PcapReader {
            endian,
            frac_to_ns,
            link,
            snaplen,
            fcs_len,
        })
    }

    pub(super) fn link(&self) -> LinkType {
        self.link
    }

    /// FCS bytes at the end of every packet, when the header says.
    pub(super) fn fcs_len(&self) -> Option<u8> {
        self.fcs_len
    }

    /// The next packet if its record is whole in the window and well
    /// formed, with the record's length (the caller consumes it); `None`
    /// leaves it to [`Self::next`]. Nearly every record takes this path,
    /// with the byte order fixed at compile time (the general path
    /// re-dispatches on it for every field).
    #[inline(always)]
    pub(super) fn in_window(&self, input: &Input) -> Option<(RawPacket, usize)> {
        match self.endian {
            Endian::Little => self.record_in_window::<false>(input),
            Endian::Big => self.record_in_window::<true>(input),
        }
    }

    /// The next record if it is whole in the window and its caplen is sane,
    /// with its length; `None` leaves it to the general path.
    #[inline(always)]
    fn record_in_window<const BIG: bool>(&self, input: &Input) -> Option<(RawPacket, usize)> {
        let w = input.window(input.avail());
        let h: &[u8] = w.first_chunk::<RECORD_HEADER_LEN>()?;
        let word = |at: usize| u32_in::<BIG>(h, at).unwrap_or_default();
        let caplen = word(8);
        let n = RECORD_HEADER_LEN + caplen as usize;
        if caplen > MAX_CAPLEN || n > w.len() {
            return None;
        }
        Some((self.record(input, word(0), word(4), caplen, word(12)), n))
    }

    #[inline(always)]
    fn record(&self, input: &Input, sec: u32, frac: u32, caplen: u32, orig_len: u32) -> RawPacket {
        RawPacket {
            record_offset: input.offset(),
            ts_ns: ts_ns(sec, frac, self.frac_to_ns),
            start: input.pos() + RECORD_HEADER_LEN,
            caplen,
            orig_len,
            link: self.link,
            over_snaplen: over_snaplen(caplen, self.snaplen),
        }
    }

    #[inline(never)]
    pub(super) fn next(&mut self, input: &mut Input) -> Result<Option<RawPacket>, FileError> {
        let Some(h) = input.need::<RECORD_HEADER_LEN>()? else {
            return end_or_truncated(input, RECORD_HEADER_LEN as u64);
        };
        let e = self.endian;
        let sec = e.u32([h[0], h[1], h[2], h[3]]);
        let frac = e.u32([h[4], h[5], h[6], h[7]]);
        let caplen = e.u32([h[8], h[9], h[10], h[11]]);
        let orig_len = e.u32([h[12], h[13], h[14], h[15]]);
        if caplen > MAX_CAPLEN {
            return Err(caplen_too_large(input.offset(), caplen));
        }
        // caplen <= 512 KiB, no overflow.
        let total = RECORD_HEADER_LEN + caplen as usize;
        let offset = input.offset();
        if !input.fill(total)? {
            return Err(FileError::Truncated {
                offset,
                needed: total as u64,
                available: input.avail() as u64,
            });
        }
        let packet = self.record(input, sec, frac, caplen, orig_len);
        input.consume(total);
        Ok(Some(packet))
    }
}

/// At a record boundary: a clean end if no byte is left, else a truncated
/// record header.
#[cold]
fn end_or_truncated(input: &Input, needed: u64) -> Result<Option<RawPacket>, FileError> {
    match input.avail() {
        0 => Ok(None),
        n => Err(FileError::Truncated {
            offset: input.offset(),
            needed,
            available: n as u64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::PcapBuilder;
    use super::super::{CaptureFile, FileError};
    use crate::source::LinkType;

    type Pkt = (u64, Vec<u8>, u32, LinkType);

    fn all(mut f: CaptureFile) -> (Vec<Pkt>, Option<FileError>) {
        let mut out = Vec::new();
        loop {
            match f.next_packet() {
                Ok(Some(p)) => out.push((p.ts_ns, p.data.to_vec(), p.orig_len, p.link)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn both_byte_orders_and_resolutions() {
        for big in [false, true] {
            for nanos in [false, true] {
                let mut b = PcapBuilder::new(big, nanos, 65535, 1);
                b.packet(1_700_000_000, 123_456, &[1, 2, 3], 60);
                b.packet(1_700_000_001, 999_999, &[4; 100], 100);
                let f = CaptureFile::from_bytes(b.finish()).unwrap();
                let (pkts, err) = all(f);
                assert!(err.is_none(), "{err:?}");
                let mul = if nanos { 1 } else { 1000 };
                assert_eq!(pkts.len(), 2);
                assert_eq!(pkts[0].0, 1_700_000_000_000_000_000 + 123_456 * mul);
                assert_eq!(pkts[0].1, vec![1, 2, 3]);
                assert_eq!(pkts[0].2, 60);
                assert_eq!(pkts[0].3, LinkType::ETHERNET);
                assert_eq!(pkts[1].0, 1_700_000_001_000_000_000 + 999_999 * mul);
                assert_eq!(pkts[1].1, vec![4; 100]);
            }
        }
    }

    #[test]
    fn fcs_bits_are_masked_off_the_link_type() {
        // P bit set, FCS length 2 (x 16 bits = 4 bytes per the spec's units).
        let field = 0x2400_0000 | 113;
        let mut b = PcapBuilder::new(false, false, 65535, field);
        b.packet(1, 2, &[0; 20], 20);
        let f = CaptureFile::from_bytes(b.finish()).unwrap();
        assert_eq!(f.fcs_len(), Some(4));
        let (pkts, err) = all(f);
        assert!(err.is_none());
        assert_eq!(pkts[0].3, LinkType::LINUX_SLL);
    }

    #[test]
    fn empty_capture_ends_cleanly() {
        let b = PcapBuilder::new(false, false, 65535, 1);
        let mut f = CaptureFile::from_bytes(b.finish()).unwrap();
        assert!(f.next_packet().unwrap().is_none());
        assert!(f.next_packet().unwrap().is_none());
        assert_eq!(f.offset(), 24);
    }

    #[test]
    fn truncated_file_header() {
        let bytes = PcapBuilder::new(false, false, 65535, 1).finish();
        let err = CaptureFile::from_bytes(bytes[..10].to_vec()).err().unwrap();
        assert!(
            matches!(
                err,
                FileError::Truncated {
                    offset: 0,
                    needed: 24,
                    available: 10
                }
            ),
            "{err}"
        );
        let err = CaptureFile::from_bytes(bytes[..3].to_vec()).err().unwrap();
        assert!(
            matches!(err, FileError::Truncated { offset: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn truncated_record_after_good_ones() {
        let mut b = PcapBuilder::new(false, false, 65535, 1);
        b.packet(1, 0, &[7; 1514], 1514);
        b.packet(2, 0, &[8; 1514], 1514);
        let full = b.finish();
        let second = 24 + 16 + 1514;
        let cut = second + 16 + 800;
        let f = CaptureFile::from_bytes(full[..cut].to_vec()).unwrap();
        let (pkts, err) = all(f);
        assert_eq!(pkts.len(), 1);
        let err = err.unwrap();
        assert!(
            matches!(err, FileError::Truncated { offset, needed: 1530, available: 816 } if offset == second as u64),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("capture file truncated at byte {second}: record needs 1530 bytes, 816 left")
        );
        // Mid record header.
        let f = CaptureFile::from_bytes(full[..second + 5].to_vec()).unwrap();
        let (pkts, err) = all(f);
        assert_eq!(pkts.len(), 1);
        assert!(matches!(
            err,
            Some(FileError::Truncated { offset, needed: 16, available: 5 }) if offset == second as u64
        ));
    }

    #[test]
    fn absurd_caplen_is_corrupt() {
        let mut b = PcapBuilder::new(true, false, 65535, 1);
        b.packet(1, 0, &[1; 10], 10);
        b.raw_record(2, 0, 0xffff_fff0, 60, &[]);
        let f = CaptureFile::from_bytes(b.finish()).unwrap();
        let (pkts, err) = all(f);
        assert_eq!(pkts.len(), 1);
        let err = err.unwrap();
        assert!(
            matches!(err, FileError::Corrupt { offset: 50, .. }),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .starts_with("capture file corrupt at byte 50: "));
    }

    #[test]
    fn records_longer_than_the_snaplen_are_read_whole_and_counted() {
        // snaplen 100: 200, 201 and 5000 bytes are read whole, as tshark does.
        let mut b = PcapBuilder::new(false, false, 100, 1);
        b.packet(1, 0, &[0; 100], 100);
        b.packet(1, 0, &[0; 200], 200);
        b.packet(1, 0, &[0; 201], 201);
        b.packet(1, 0, &[7; 5000], 5000);
        let f = CaptureFile::from_bytes(b.finish()).unwrap();
        let over = f.over_snaplen();
        let (pkts, err) = all(f);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts.len(), 4);
        assert_eq!(over.load(std::sync::atomic::Ordering::Relaxed), 3);
        // Past the 256 KiB ceiling a record is corrupt, whatever the snaplen.
        let mut b = PcapBuilder::new(false, false, 0, 1);
        b.packet(1, 0, &vec![0; 256 << 10], 300_000);
        b.raw_record(1, 0, (256 << 10) + 1, 300_000, &[]);
        let (pkts, err) = all(CaptureFile::from_bytes(b.finish()).unwrap());
        assert_eq!(pkts.len(), 1);
        assert!(matches!(err, Some(FileError::Corrupt { .. })));
    }
}
