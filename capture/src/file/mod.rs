//! Capture files as a packet source: pcap (both byte orders, micro- and
//! nanosecond) and pcapng (sections in either byte order, several interfaces,
//! Enhanced / Simple / obsolete Packet Blocks), detected by their magic;
//! gzip- or zstd-compressed, decompressed as they are read; `-` is standard
//! input. Byte offsets in errors are those of the (decompressed) capture.
//!
//! # Why hand-written, not `pcap-parser`
//!
//! `pcap-parser` (rusticata, in `[workspace.dependencies]`) is well kept, but
//! its errors carry no byte offsets (`Incomplete(n)`, `NomError`, ...), its
//! streaming readers' refill/`consume` protocol hides where a block started
//! in the file, pcapng options are collected into `Vec`s, and timestamp
//! resolution/offset per interface are left to the caller. We need: (1)
//! every error names the file offset of the bad record, after every complete
//! packet before it was delivered; (2) zero copy from one large reusable
//! buffer (or from the caller's `Vec` for `from_bytes`) with no allocation
//! per packet; (3) per-interface link type and nanosecond timestamps
//! resolved in the reader. The formats are small and stable, so owning
//! ~600 lines is cheaper than adapting around the crate. No `unsafe` and no
//! mmap: plain large reads into a buffer.
//!
//! # Bad input
//!
//! Never panics on any input (the lints below; fuzzed in the tests).
//! Reading stops at the first bad record with [`FileError::Truncated`],
//! [`FileError::Corrupt`] or [`FileError::Unsupported`], whose `offset` is
//! the byte offset of that record (block); every complete packet before it
//! has been returned. The error is sticky: further calls return it again.
//! A caplen above 256 KiB is `Corrupt`; it is never used to size anything.
//! A record longer than its header's (or interface's) snaplen is read
//! whole, as tshark reads it, and counted ([`CaptureFile::over_snaplen`]).

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod chunked;
mod input;
mod pcap;
mod pcapng;
#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::source::{LinkType, Packet, PacketSource, Poll, SourceStats};
pub use chunked::{Chunk, ChunkPacket, PcapChunks};
use input::Input;
use pcap::PcapReader;
use pcapng::PcapngReader;

/// Largest captured length we accept for any record (Wireshark's limit).
pub const MAX_CAPLEN: u32 = 256 << 10;

/// Errors reading a capture file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Opening or reading failed (`path` is `<memory>` for `from_bytes`).
    #[error("cannot read capture file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file starts with neither a pcap nor a pcapng magic number.
    #[error("{} is not a pcap or pcapng file (it starts with {magic:#010x}{})", path.display(), compression_hint(*magic))]
    NotACapture { path: PathBuf, magic: u32 },
    /// The file ends inside the record (or header) starting at `offset`.
    #[error(
        "capture file truncated at byte {offset}: record needs {needed} bytes, {available} left"
    )]
    Truncated {
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// The record (or block, or header) starting at `offset` is invalid.
    #[error("capture file corrupt at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
    /// Valid, but uses something we do not read (pcapng 2.x, an odd
    /// timestamp resolution).
    #[error("capture file at byte {offset} is not supported: {reason}")]
    Unsupported { offset: u64, reason: String },
}

/// Names a compression that is not read transparently (gzip and zstd are),
/// from a file's first four bytes.
fn compression_hint(magic: u32) -> &'static str {
    match magic.to_be_bytes() {
        [b'B', b'Z', b'h', _] => ": it is bzip2-compressed, decompress it first (bunzip2)",
        [0xfd, b'7', b'z', b'X'] => ": it is xz-compressed, decompress it first (unxz)",
        [0x04, 0x22, 0x4d, 0x18] => ": it is lz4-compressed, decompress it first (unlz4)",
        [b'P', b'K', 3, 4] => ": it is a zip archive, extract it first (unzip)",
        _ => "",
    }
}

impl FileError {
    /// Byte offset of the bad record, for the errors that have one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            FileError::Truncated { offset, .. }
            | FileError::Corrupt { offset, .. }
            | FileError::Unsupported { offset, .. } => Some(*offset),
            FileError::Io { .. } | FileError::NotACapture { .. } => None,
        }
    }

    /// A copy of the error (an I/O error keeps its kind and message), for
    /// one that several threads saw and one of them reports.
    pub fn duplicate(&self) -> FileError {
        match self {
            FileError::Io { path, source } => FileError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            other => other.sticky_copy().unwrap_or_else(|| FileError::Corrupt {
                offset: 0,
                reason: other.to_string(),
            }),
        }
    }

    /// A copy of a format error, to repeat it on later calls. I/O errors
    /// are not kept: the next call retries the read.
    fn sticky_copy(&self) -> Option<FileError> {
        Some(match self {
            FileError::Truncated {
                offset,
                needed,
                available,
            } => FileError::Truncated {
                offset: *offset,
                needed: *needed,
                available: *available,
            },
            FileError::Corrupt { offset, reason } => FileError::Corrupt {
                offset: *offset,
                reason: reason.clone(),
            },
            FileError::Unsupported { offset, reason } => FileError::Unsupported {
                offset: *offset,
                reason: reason.clone(),
            },
            FileError::NotACapture { path, magic } => FileError::NotACapture {
                path: path.clone(),
                magic: *magic,
            },
            FileError::Io { .. } => return None,
        })
    }
}

/// Which container format a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// libpcap, microsecond timestamps.
    Pcap,
    /// libpcap, nanosecond timestamps (magic 0xa1b23c4d).
    PcapNanos,
    Pcapng,
}

/// A packet found by a format reader: `start`/`caplen` index the input buffer.
#[derive(Clone, Copy, Debug)]
struct RawPacket {
    /// File offset of the record (block) holding the packet.
    record_offset: u64,
    ts_ns: u64,
    start: usize,
    caplen: u32,
    orig_len: u32,
    link: LinkType,
    /// Longer than the snaplen of its header or interface.
    over_snaplen: bool,
}

/// Whether a record of `caplen` bytes is longer than its `snaplen` (0: no
/// snaplen). Such records are read whole, as tshark reads them (writers are
/// sloppy about the snaplen, e.g. the MTU without the link header), and
/// counted.
#[inline(always)]
fn over_snaplen(caplen: u32, snaplen: u32) -> bool {
    snaplen != 0 && caplen > snaplen
}

enum Reader {
    Pcap(PcapReader),
    Pcapng(PcapngReader),
}

/// A pcap or pcapng capture read from a file (large buffered reads) or from
/// memory, handing out packets borrowed from its buffer.
pub struct CaptureFile {
    input: Input,
    reader: Reader,
    format: FileFormat,
    received: u64,
    /// File offset of the record of the packet last returned.
    record_offset: u64,
    /// The format error that ended reading, repeated on later calls.
    failed: Option<FileError>,
    /// Records longer than their snaplen (read whole), shared so that a
    /// caller can read it while another thread reads the file.
    over_snaplen: Arc<AtomicU64>,
    /// Link types seen so far, and who wants to hear of a new one.
    links_seen: Vec<LinkType>,
    last_link: Option<LinkType>,
    on_new_link: Option<Box<dyn FnMut(LinkType) + Send>>,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.input.path())
            .field("format", &self.format)
            .field("offset", &self.offset())
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl CaptureFile {
    /// Open a capture file and read its header. Errors name `path`.
    pub fn open(path: &Path) -> Result<CaptureFile, FileError> {
        Self::start(Input::open(path, None)?)
    }

    /// Another reader of the same file, from its first packet, for replays
    /// in which every worker reads the file itself. `None` for what cannot
    /// be read twice for free: standard input, a pipe, a compressed file
    /// (each reader would decompress all of it), bytes in memory.
    pub fn reopen(&self) -> Option<Result<CaptureFile, FileError>> {
        self.input
            .is_plain_file()
            .then(|| CaptureFile::open(self.input.path()))
    }

    /// Whether [`Self::into_chunks`] can take this file: a regular,
    /// uncompressed classic pcap file, not read from yet.
    pub fn chunkable(&self) -> bool {
        self.input.is_plain_file() && matches!(self.reader, Reader::Pcap(_)) && self.received == 0
    }

    /// The file as chunks of `size` bytes that several threads parse at
    /// once (see [`PcapChunks`]); `Unsupported` unless [`Self::chunkable`].
    /// The over-snaplen counter and the new-link callback go with it.
    pub fn into_chunks(self, size: usize) -> Result<PcapChunks, FileError> {
        let unsupported = || FileError::Unsupported {
            offset: 0,
            reason: "only a regular, uncompressed pcap file is read in chunks".into(),
        };
        if !self.chunkable() {
            return Err(unsupported());
        }
        let Reader::Pcap(r) = &self.reader else {
            return Err(unsupported());
        };
        PcapChunks::new(
            self.input.path(),
            size,
            r.endian == input::Endian::Big,
            r.frac_to_ns,
            r.link,
            r.snaplen,
            self.over_snaplen,
            self.on_new_link,
        )
    }

    /// Read a capture held in memory, parsing directly from `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<CaptureFile, FileError> {
        Self::start(Input::memory(bytes))
    }

    /// `open` with a given starting buffer size, to exercise refills.
    #[cfg(test)]
    pub(crate) fn open_with_buffer(path: &Path, size: usize) -> Result<CaptureFile, FileError> {
        Self::start(Input::open(path, Some(size))?)
    }

    fn start(mut input: Input) -> Result<CaptureFile, FileError> {
        let (reader, format) = Self::read_header(&mut input)?;
        Ok(CaptureFile {
            input,
            reader,
            format,
            received: 0,
            record_offset: 0,
            failed: None,
            over_snaplen: Arc::new(AtomicU64::new(0)),
            links_seen: Vec::new(),
            last_link: None,
            on_new_link: None,
        })
    }

    fn read_header(input: &mut Input) -> Result<(Reader, FileFormat), FileError> {
        let Some(magic) = input.need::<4>()? else {
            return Err(FileError::Truncated {
                offset: input.offset(),
                needed: 4,
                available: input.avail() as u64,
            });
        };
        Ok(match magic {
            pcap::MAGIC_US_LE | pcap::MAGIC_US_BE => {
                (Reader::Pcap(PcapReader::open(input)?), FileFormat::Pcap)
            }
            pcap::MAGIC_NS_LE | pcap::MAGIC_NS_BE => (
                Reader::Pcap(PcapReader::open(input)?),
                FileFormat::PcapNanos,
            ),
            pcapng::SHB_MAGIC => (
                Reader::Pcapng(PcapngReader::open(input)?),
                FileFormat::Pcapng,
            ),
            _ => {
                return Err(FileError::NotACapture {
                    path: input.path().to_path_buf(),
                    magic: u32::from_be_bytes(magic),
                })
            }
        })
    }

    /// Next packet, or `None` at a clean end of file. The packet borrows the
    /// reader's buffer until the next call.
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, FileError> {
        if self.failed.is_some() {
            return Err(self.replay_error());
        }
        let fast = match &mut self.reader {
            Reader::Pcap(r) => r.in_window(&self.input),
            Reader::Pcapng(r) => r.in_window(&self.input),
        };
        let raw = match fast {
            Some((raw, n)) => {
                self.input.consume(n);
                Ok(Some(raw))
            }
            None => match &mut self.reader {
                Reader::Pcap(r) => r.next(&mut self.input),
                Reader::Pcapng(r) => r.next(&mut self.input),
            },
        };
        match raw {
            Ok(Some(raw)) => {
                self.received += 1;
                self.record_offset = raw.record_offset;
                if raw.over_snaplen {
                    self.over_snaplen.fetch_add(1, Ordering::Relaxed);
                }
                if self.last_link != Some(raw.link) {
                    self.link_changed(raw.link);
                }
                Ok(Some(Packet {
                    ts_ns: raw.ts_ns,
                    data: self.input.slice(raw.start, raw.caplen as usize),
                    orig_len: raw.orig_len,
                    link: raw.link,
                }))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = e.sticky_copy();
                Err(e)
            }
        }
    }

    #[cold]
    fn link_changed(&mut self, link: LinkType) {
        self.last_link = Some(link);
        if self.links_seen.contains(&link) || self.links_seen.len() >= 64 {
            return;
        }
        self.links_seen.push(link);
        if let Some(f) = &mut self.on_new_link {
            f(link);
        }
    }

    /// Calls `f` once for each link type as its first packet is read (to
    /// warn of one the decoder does not support).
    pub fn on_new_link(&mut self, f: impl FnMut(LinkType) + Send + 'static) {
        self.on_new_link = Some(Box::new(f));
    }

    /// Records read so far that were longer than the snaplen of their
    /// header or interface (read whole, as tshark does); the counter stays
    /// readable after the file moved to another thread.
    pub fn over_snaplen(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.over_snaplen)
    }

    #[cold]
    fn replay_error(&self) -> FileError {
        match self.failed.as_ref().and_then(FileError::sticky_copy) {
            Some(e) => e,
            None => self.input.io_error(std::io::ErrorKind::Other.into()),
        }
    }

    /// Byte offset in the file of the next record (block).
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    /// Byte offset in the file of the record (block) that held the packet
    /// last returned (0 before the first).
    pub fn record_offset(&self) -> u64 {
        self.record_offset
    }

    /// The container format.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Link type from the pcap header, or of the first interface of the
    /// current pcapng section (`None` before its first IDB). Packets carry
    /// their own link type; this is for choosing a decoder up front.
    pub fn link_type(&self) -> Option<LinkType> {
        match &self.reader {
            Reader::Pcap(r) => Some(r.link()),
            Reader::Pcapng(r) => r.link(),
        }
    }

    /// Bytes of FCS at the end of every packet, when a pcap header says so
    /// (link-type field, P bit). pcapng `if_fcslen` is not read.
    pub fn fcs_len(&self) -> Option<u8> {
        match &self.reader {
            Reader::Pcap(r) => r.fcs_len(),
            Reader::Pcapng(_) => None,
        }
    }

    /// Path the file was opened from (`<memory>` for `from_bytes`).
    pub fn path(&self) -> &Path {
        self.input.path()
    }

    /// Start again from the first packet (to replay a file in a loop).
    /// Clears a sticky error; `stats()` keep counting.
    pub fn rewind(&mut self) -> Result<(), FileError> {
        self.input.rewind()?;
        let (reader, format) = Self::read_header(&mut self.input)?;
        self.reader = reader;
        self.format = format;
        self.failed = None;
        Ok(())
    }
}

impl PacketSource for CaptureFile {
    type Error = FileError;

    /// Hands up to `max` packets to `f`. `Poll::End` once the file is
    /// exhausted. If a bad record follows some packets of this batch, the
    /// batch is returned as `Packets(n)` and the error on the next call.
    fn poll_batch<F>(&mut self, max: usize, mut f: F) -> Result<Poll, FileError>
    where
        F: FnMut(&Packet<'_>),
    {
        let mut n = 0;
        while n < max {
            match self.next_packet() {
                Ok(Some(p)) => {
                    f(&p);
                    n += 1;
                }
                Ok(None) if n == 0 => return Ok(Poll::End),
                Ok(None) => break,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(Poll::Packets(n))
    }

    fn stats(&self) -> SourceStats {
        SourceStats {
            received: self.received,
            ..SourceStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{xorshift, NgBuilder, PcapBuilder, TempFile};
    use super::*;

    /// A pcap with packets of many sizes, so records straddle buffer refills.
    fn varied_pcap(n: usize) -> Vec<u8> {
        let mut b = PcapBuilder::new(false, true, 65535, 1);
        for i in 0..n {
            let len = (i * 37) % 1600;
            b.packet(i as u32, i as u32, &vec![i as u8; len], len as u32 + 4);
        }
        b.finish()
    }

    /// (ts, caplen, orig_len, byte sum ^ offset) per packet, and the error.
    type Summary = (Vec<(u64, u32, u32, u64)>, Option<String>);

    fn summary(f: &mut CaptureFile) -> Summary {
        let mut out = Vec::new();
        loop {
            let off = f.offset();
            match f.next_packet() {
                Ok(Some(p)) => {
                    let sum = p.data.iter().map(|&b| u64::from(b)).sum::<u64>();
                    out.push((p.ts_ns, p.data.len() as u32, p.orig_len, sum ^ off));
                }
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn file_and_memory_agree_across_refills() {
        let bytes = varied_pcap(500);
        let tmp = TempFile::new("varied.pcap", &bytes);
        let want = summary(&mut CaptureFile::from_bytes(bytes.clone()).unwrap());
        assert_eq!(want.0.len(), 500);
        assert!(want.1.is_none());
        for buf in [1, 7, 100, 1600, 4096, 1 << 20] {
            let mut f = CaptureFile::open_with_buffer(tmp.path(), buf).unwrap();
            assert_eq!(summary(&mut f), want, "buffer {buf}");
        }
        let mut f = CaptureFile::open(tmp.path()).unwrap();
        assert_eq!(summary(&mut f), want);
        // Cut mid-record: same packets and error in both modes.
        let cut = &bytes[..bytes.len() - 100];
        let tmp2 = TempFile::new("varied-cut.pcap", cut);
        let want = summary(&mut CaptureFile::from_bytes(cut.to_vec()).unwrap());
        assert_eq!(want.0.len(), 499);
        assert!(want.1.as_deref().unwrap_or("").contains("truncated"));
        for buf in [1, 333, 1 << 20] {
            let mut f = CaptureFile::open_with_buffer(tmp2.path(), buf).unwrap();
            assert_eq!(summary(&mut f), want, "buffer {buf}");
        }
    }

    #[test]
    fn gzip_and_zstd_captures_read_as_the_plain_one_and_rewind() {
        use std::io::Write as _;
        let bytes = varied_pcap(500);
        let want = summary(&mut CaptureFile::from_bytes(bytes.clone()).unwrap());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&bytes[..], 3).unwrap();
        // The packets and their offsets in the decompressed capture.
        let want_offsets: Vec<_> = want.0.iter().map(|p| (p.0, p.1, p.2)).collect();
        for (name, data) in [("v.pcap.gz", gz.clone()), ("v.pcap.zst", zst)] {
            let tmp = TempFile::new(name, &data);
            for buf in [7, 4096, 1 << 20] {
                let mut f = CaptureFile::open_with_buffer(tmp.path(), buf).unwrap();
                assert_eq!(summary(&mut f), want, "{name} buffer {buf}");
            }
            let mut f = CaptureFile::open(tmp.path()).unwrap();
            let _ = summary(&mut f);
            f.rewind().unwrap();
            let again: Vec<_> = summary(&mut f).0.iter().map(|p| (p.0, p.1, p.2)).collect();
            assert_eq!(again, want_offsets, "{name} after rewind");
        }
        // A cut compressed file ends with an error after what it held.
        let tmp = TempFile::new("cut.pcap.gz", &gz[..gz.len() / 2]);
        let mut f = CaptureFile::open(tmp.path()).unwrap();
        let (pkts, err) = summary(&mut f);
        assert!(!pkts.is_empty() && pkts.len() < 500, "{}", pkts.len());
        assert!(err.is_some());
    }

    #[test]
    fn other_compressions_are_named() {
        for (head, name) in [
            (&b"BZh91AY&SY"[..], "bzip2"),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0][..], "xz"),
        ] {
            let tmp = TempFile::new("c.pcap.x", head);
            let err = CaptureFile::open(tmp.path()).unwrap_err().to_string();
            assert!(err.contains(&format!("it is {name}-compressed")), "{err}");
        }
    }

    #[test]
    fn open_errors_name_the_path() {
        let err = CaptureFile::open(Path::new("/nonexistent/x.pcap")).unwrap_err();
        assert!(matches!(err, FileError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/x.pcap"), "{err}");
        let tmp = TempFile::new("not-a-capture.txt", b"<html>hello</html>");
        let err = CaptureFile::open(tmp.path()).unwrap_err();
        assert!(matches!(
            err,
            FileError::NotACapture {
                magic: 0x3c68746d,
                ..
            }
        ));
        assert!(err.to_string().contains("not-a-capture.txt"), "{err}");
        let tmp = TempFile::new("empty.pcap", b"");
        let err = CaptureFile::open(tmp.path()).unwrap_err();
        assert!(
            matches!(
                err,
                FileError::Truncated {
                    offset: 0,
                    available: 0,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn poll_batch_hands_batches_then_end() {
        let mut f = CaptureFile::from_bytes(varied_pcap(10)).unwrap();
        let mut seen = Vec::new();
        assert_eq!(
            f.poll_batch(4, |p| seen.push(p.ts_ns)).unwrap(),
            Poll::Packets(4)
        );
        assert_eq!(f.poll_batch(0, |_| panic!()).unwrap(), Poll::Packets(0));
        assert_eq!(
            f.poll_batch(4, |p| seen.push(p.ts_ns)).unwrap(),
            Poll::Packets(4)
        );
        assert_eq!(
            f.poll_batch(4, |p| seen.push(p.ts_ns)).unwrap(),
            Poll::Packets(2)
        );
        assert_eq!(f.poll_batch(4, |_| panic!()).unwrap(), Poll::End);
        assert_eq!(f.poll_batch(4, |_| panic!()).unwrap(), Poll::End);
        assert_eq!(seen.len(), 10);
        assert_eq!(f.stats().received, 10);
        f.rewind().unwrap();
        assert_eq!(f.poll_batch(100, |_| {}).unwrap(), Poll::Packets(10));
        assert_eq!(f.stats().received, 20);
    }

    #[test]
    fn poll_batch_delivers_packets_before_an_error_then_the_error() {
        let bytes = varied_pcap(10);
        let mut f = CaptureFile::from_bytes(bytes[..bytes.len() - 1].to_vec()).unwrap();
        assert_eq!(f.poll_batch(100, |_| {}).unwrap(), Poll::Packets(9));
        let err = f.poll_batch(100, |_| panic!()).unwrap_err();
        assert!(matches!(err, FileError::Truncated { .. }));
        // Sticky.
        assert!(matches!(
            f.poll_batch(100, |_| panic!()),
            Err(FileError::Truncated { .. })
        ));
    }

    #[test]
    fn rewind_works_for_files() {
        let tmp = TempFile::new("rewind.pcap", &varied_pcap(50));
        let mut f = CaptureFile::open_with_buffer(tmp.path(), 512).unwrap();
        let first = summary(&mut f);
        f.rewind().unwrap();
        assert_eq!(summary(&mut f), first);
    }

    #[test]
    fn link_type_and_format() {
        let f = CaptureFile::from_bytes(varied_pcap(1)).unwrap();
        assert_eq!(f.format(), FileFormat::PcapNanos);
        assert_eq!(f.link_type(), Some(LinkType::ETHERNET));
        let mut b = NgBuilder::new(false);
        b.idb(101, 0, &[]);
        let f = CaptureFile::from_bytes(b.finish()).unwrap();
        assert_eq!(f.format(), FileFormat::Pcapng);
        assert_eq!(f.link_type(), None); // the IDB is not read yet
    }

    /// Every prefix of a valid file: never a panic; the packets whose
    /// records are whole come out, then a clean end exactly at a record
    /// boundary, else `Truncated` at the offset of the cut record.
    #[test]
    fn every_prefix_is_handled() {
        let mut ng = NgBuilder::new(true);
        ng.idb(1, 0, &[(9, vec![9]), (2, b"eth0".to_vec())]);
        ng.epb(0, 5, &[1; 13], 13);
        ng.spb(&[2; 6], 6);
        ng.block(5, &[0; 20]);
        ng.shb(false);
        ng.idb(101, 0, &[]);
        ng.pb(0, 9, &[3; 3], 3);
        for bytes in [varied_pcap(6), ng.finish()] {
            let mut full = CaptureFile::from_bytes(bytes.clone()).unwrap();
            let mut ends = Vec::new(); // offset after each packet
            let mut starts = Vec::new();
            loop {
                let before = full.offset();
                match full.next_packet() {
                    Ok(Some(_)) => {
                        starts.push(before);
                        ends.push(full.offset());
                    }
                    Ok(None) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            for cut in 0..bytes.len() {
                let Ok(mut f) = CaptureFile::from_bytes(bytes[..cut].to_vec()) else {
                    continue;
                };
                let mut got = 0;
                let end = loop {
                    match f.next_packet() {
                        Ok(Some(_)) => got += 1,
                        other => break other.map(|_| ()),
                    }
                };
                let whole = ends.iter().filter(|&&e| e <= cut as u64).count();
                assert_eq!(got, whole, "cut {cut}");
                match end {
                    Ok(()) => assert!(f.offset() == cut as u64, "cut {cut}"),
                    Err(FileError::Truncated {
                        offset, available, ..
                    }) => {
                        assert_eq!(offset + available, cut as u64, "cut {cut}");
                        assert!(offset >= ends.get(got.wrapping_sub(1)).copied().unwrap_or(0));
                    }
                    Err(e) => panic!("cut {cut}: {e}"),
                }
            }
        }
    }

    /// Random corruption: never a panic, always terminates.
    #[test]
    fn random_mutations_never_panic() {
        let mut ng = NgBuilder::new(false);
        ng.idb(1, 1500, &[(9, vec![6])]);
        for i in 0..20u8 {
            ng.epb(0, u64::from(i), &vec![i; usize::from(i) * 7], 200);
        }
        ng.spb(&[1; 30], 30);
        let seeds = [varied_pcap(30), ng.finish()];
        let mut rand = xorshift(0x9e37_79b9_7f4a_7c15);
        for round in 0..4000 {
            let mut bytes = seeds[round % 2].clone();
            for _ in 0..1 + rand() % 8 {
                let i = (rand() as usize) % bytes.len();
                bytes[i] = rand() as u8;
            }
            if rand().is_multiple_of(4) {
                let keep = (rand() as usize) % bytes.len();
                bytes.truncate(keep);
            }
            let Ok(mut f) = CaptureFile::from_bytes(bytes.clone()) else {
                continue;
            };
            for _ in 0..bytes.len() {
                match f.next_packet() {
                    Ok(Some(p)) => assert!(p.data.len() <= MAX_CAPLEN as usize),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
