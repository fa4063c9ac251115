//! The byte window a capture file is parsed from: either the whole file held
//! in memory (`from_bytes`), or one large reusable buffer refilled from a
//! `File` with big plain reads, or from a stream: standard input (`-`) or
//! the decompressed content of a gzip or zstd file (found by its magic).
//!
//! Invariant: `pos <= end <= buf.len()`. `buf[pos..end]` are valid bytes that
//! start at file offset `base + pos`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::FileError;

/// Size of the read buffer for large files. Small files get a buffer the
/// size of the file; the buffer grows (rarely, up to a record's size) when a
/// record does not fit. Small enough to stay in the core's L2 cache from the
/// read to the packets' use: on W1-1M one worker ran 3-8% faster with
/// 256 KiB than with 8 MiB, whose bytes were out of the cache again by the
/// time they were parsed.
pub(super) const READ_BUF: usize = 256 << 10;
/// Smallest read buffer, so that tiny and growing files still read in chunks.
const MIN_READ_BUF: usize = 64 << 10;

/// Byte order of the section being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endian {
    Little,
    Big,
}

impl Endian {
    #[inline(always)]
    pub(super) fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    #[inline(always)]
    pub(super) fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    #[inline(always)]
    pub(super) fn u16_at(self, s: &[u8], at: usize) -> Option<u16> {
        s.get(at..)?.first_chunk::<2>().map(|b| self.u16(*b))
    }

    #[inline(always)]
    pub(super) fn u32_at(self, s: &[u8], at: usize) -> Option<u32> {
        s.get(at..)?.first_chunk::<4>().map(|b| self.u32(*b))
    }

    #[inline(always)]
    pub(super) fn u64_at(self, s: &[u8], at: usize) -> Option<u64> {
        s.get(at..)?.first_chunk::<8>().map(|b| match self {
            Endian::Little => u64::from_le_bytes(*b),
            Endian::Big => u64::from_be_bytes(*b),
        })
    }
}

/// The u32 at `at` of `b`, big-endian if `BIG`: the byte order fixed at
/// compile time, for the readers' per-packet fast paths.
#[inline(always)]
pub(super) fn u32_in<const BIG: bool>(b: &[u8], at: usize) -> Option<u32> {
    let b = *b.get(at..)?.first_chunk::<4>()?;
    Some(if BIG {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

enum Source {
    /// Everything is in `buf` already.
    Memory,
    File {
        file: File,
        eof: bool,
    },
    /// Read front to back only (stdin, a decompressor).
    Stream {
        reader: Box<dyn Read + Send>,
        eof: bool,
    },
}

/// How a file's bytes are compressed, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    pub(super) fn sniff(head: &[u8]) -> Option<Compression> {
        match head {
            [0x1f, 0x8b, ..] => Some(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
            _ => None,
        }
    }

    fn reader(self, raw: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            // Multi-member: what `cat a.gz b.gz` and pigz write.
            Compression::Gzip => {
                Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(raw)))
            }
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
        })
    }
}

/// Reads up to 4 bytes (fewer only at the end of the input).
fn read_head(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; 4];
    let mut n = 0;
    while let Some(rest) = head.get_mut(n..).filter(|r| !r.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(n);
    Ok(head)
}

pub(super) struct Input {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    src: Source,
    /// For error messages; `<memory>` for `from_bytes`.
    path: PathBuf,
}

impl Input {
    pub(super) fn memory(bytes: Vec<u8>) -> Input {
        Input {
            end: bytes.len(),
            buf: bytes,
            pos: 0,
            base: 0,
            src: Source::Memory,
            path: PathBuf::from("<memory>"),
        }
    }

    /// A stream read front to back; the first bytes tell whether it is
    /// compressed.
    fn stream(
        path: &Path,
        mut raw: Box<dyn Read + Send>,
        buf_size: Option<usize>,
    ) -> io::Result<Input> {
        let head = read_head(&mut raw)?;
        let how = Compression::sniff(&head);
        let raw: Box<dyn Read + Send> = Box::new(io::Cursor::new(head).chain(raw));
        let reader = match how {
            Some(c) => c.reader(raw)?,
            None => raw,
        };
        Ok(Input {
            buf: vec![0; buf_size.unwrap_or(READ_BUF).max(1)],
            pos: 0,
            end: 0,
            base: 0,
            src: Source::Stream { reader, eof: false },
            path: path.to_path_buf(),
        })
    }

    /// `buf_size`: `None` picks a size from the file length. `-` is
    /// standard input; a gzip or zstd file is decompressed as it is read.
    pub(super) fn open(path: &Path, buf_size: Option<usize>) -> Result<Input, FileError> {
        let io_err = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.as_os_str() == "-" {
            return Input::stream(Path::new("<stdin>"), Box::new(io::stdin()), buf_size)
                .map_err(io_err);
        }
        let mut file = File::open(path).map_err(io_err)?;
        if !file.metadata().map_err(io_err)?.is_file() {
            // A FIFO or a device: read front to back, never seek.
            return Input::stream(path, Box::new(file), buf_size).map_err(io_err);
        }
        let head = read_head(&mut file).map_err(io_err)?;
        if Compression::sniff(&head).is_some() {
            file.seek(SeekFrom::Start(0)).map_err(io_err)?;
            return Input::stream(path, Box::new(file), buf_size).map_err(io_err);
        }
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let size = match buf_size {
            Some(n) => n.max(1),
            None => {
                let len = file.metadata().map_err(io_err)?.len();
                // A regular file smaller than the buffer needs only its own
                // size (plus a little, so EOF is seen without another refill).
                usize::try_from(len)
                    .unwrap_or(READ_BUF)
                    .saturating_add(16)
                    .clamp(MIN_READ_BUF, READ_BUF)
            }
        };
        Ok(Input {
            buf: vec![0; size],
            pos: 0,
            end: 0,
            base: 0,
            src: Source::File { file, eof: false },
            path: path.to_path_buf(),
        })
    }

    /// A regular, uncompressed file: it can be opened again and read by
    /// another reader at no extra cost.
    pub(super) fn is_plain_file(&self) -> bool {
        matches!(self.src, Source::File { .. })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn io_error(&self, source: io::Error) -> FileError {
        FileError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// File offset of the next unread byte.
    #[inline(always)]
    pub(super) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Index in the buffer of the next unread byte (for `slice`).
    #[inline(always)]
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes available without reading.
    #[inline(always)]
    pub(super) fn avail(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// Make at least `n` bytes available. `Ok(false)` when the input ends
    /// first; `avail()` then says how many there are.
    #[inline(always)]
    pub(super) fn fill(&mut self, n: usize) -> Result<bool, FileError> {
        if self.avail() >= n {
            return Ok(true);
        }
        self.fill_slow(n).map_err(|e| self.io_error(e))
    }

    #[cold]
    fn fill_slow(&mut self, n: usize) -> io::Result<bool> {
        let (file, eof): (&mut dyn Read, &mut bool) = match &mut self.src {
            Source::Memory => return Ok(false),
            Source::File { file, eof } => (file, eof),
            Source::Stream { reader, eof } => (reader.as_mut(), eof),
        };
        if *eof {
            return Ok(false);
        }
        // Move the unread tail (less than one record) to the front.
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if n > self.buf.len() {
            let grown = n.max(self.buf.len().saturating_mul(2)).min(READ_BUF.max(n));
            self.buf.resize(grown, 0);
        }
        // The first read takes only a little: opening a file reads its
        // header, and a replay that splits the file between workers
        // (`PcapChunks`) drops this reader right after; a full first
        // buffer was a serial copy and fresh-page cost before any worker
        // started.
        let upto = if self.base == 0 && self.end == 0 {
            n.max(MIN_READ_BUF).min(self.buf.len())
        } else {
            self.buf.len()
        };
        while self.end < n {
            let Some(space) = self.buf.get_mut(self.end..upto) else {
                break;
            };
            if space.is_empty() {
                break;
            }
            match file.read(space) {
                Ok(0) => {
                    *eof = true;
                    break;
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end >= n)
    }

    /// The next `N` bytes, reading if needed; `None` when the input ends first.
    #[inline(always)]
    pub(super) fn need<const N: usize>(&mut self) -> Result<Option<[u8; N]>, FileError> {
        if !self.fill(N)? {
            return Ok(None);
        }
        Ok(self.window(N).first_chunk::<N>().copied())
    }

    /// Up to `n` available bytes from the read position (no reading).
    #[inline(always)]
    pub(super) fn window(&self, n: usize) -> &[u8] {
        let stop = self.pos.saturating_add(n).min(self.end);
        self.buf.get(self.pos..stop).unwrap_or(&[])
    }

    /// Bytes `[start, start+len)` of the buffer, as indexed by `pos()`.
    #[inline(always)]
    pub(super) fn slice(&self, start: usize, len: usize) -> &[u8] {
        self.buf
            .get(start..start.saturating_add(len))
            .unwrap_or(&[])
    }

    /// Step over `n` bytes that `fill` made available.
    #[inline(always)]
    pub(super) fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.end);
    }

    /// Step over `n` bytes that need not be in the buffer (a huge block that
    /// is skipped unparsed). Returns how many bytes were there: fewer than
    /// `n` means the input ended.
    pub(super) fn skip(&mut self, n: u64) -> Result<u64, FileError> {
        let avail = self.avail() as u64;
        if n <= avail {
            self.consume(n as usize);
            return Ok(n);
        }
        let mut left = n - avail;
        self.base += self.end as u64;
        self.pos = 0;
        self.end = 0;
        let (file, eof): (&mut dyn Read, &mut bool) = match &mut self.src {
            Source::Memory => return Ok(avail),
            Source::File { file, eof } => (file, eof),
            Source::Stream { reader, eof } => (reader.as_mut(), eof),
        };
        while !*eof {
            match file.read(&mut self.buf) {
                Ok(0) => *eof = true,
                Ok(k) if k as u64 <= left => {
                    left -= k as u64;
                    self.base += k as u64;
                }
                Ok(k) => {
                    // `left < k <= buf.len()`, so the cast cannot truncate.
                    self.pos = left as usize;
                    self.end = k;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
            if left == 0 {
                return Ok(n);
            }
        }
        Ok(n - left)
    }

    /// Back to byte 0.
    pub(super) fn rewind(&mut self) -> Result<(), FileError> {
        match &mut self.src {
            Source::Memory => {
                self.pos = 0;
            }
            Source::File { file, eof } => {
                if let Err(e) = file.seek(SeekFrom::Start(0)) {
                    return Err(self.io_error(e));
                }
                *eof = false;
                self.base = 0;
                self.pos = 0;
                self.end = 0;
            }
            Source::Stream { .. } => {
                // A compressed file starts again from its first byte;
                // standard input cannot.
                if self.path.as_os_str() == "<stdin>" {
                    return Err(self.io_error(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "standard input cannot be read again",
                    )));
                }
                let size = self.buf.len();
                *self = Input::open(&self.path.clone(), Some(size))?;
            }
        }
        Ok(())
    }
}
