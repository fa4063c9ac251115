//! JSON-lines files and stdout (the directory must exist). A file rotates by size and/or age: the
//! current file is flushed, closed and renamed (atomically, same
//! directory) to `NAME.YYYYMMDDTHHMMSSZ-NNNNNN`, optionally gzip- or
//! zstd-compressed (written to `.gz.tmp` / `.zst.tmp`, then renamed), and the oldest rotated files are removed past
//! `keep_files` / `keep_bytes`. Rotation happens only between events, so no
//! line is ever split across files, and every event is written to exactly one.
//!
//! Write errors. Lines are gathered in a buffer of the sink's own
//! ([`LineBuf`]) that knows exactly which of its bytes reached the file, so
//! a write that fails part-way (a full disk, a quota, an I/O error) is
//! retried from the first byte that did not make it: never a line twice,
//! never half a line followed by the next. The runner treats such a sink as
//! down: it retries by writing the held bytes (not by reopening, which
//! would always "succeed"), with the network sinks' doubling backoff. A
//! reader that closed standard output is [`SinkError::ReaderGone`]: final.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::batch::Batch;
use super::spec::{FileCompression, FileSpec};
use super::{Partial, SinkError, Transport};
use crate::perms::FilePerms;

/// Bytes gathered before a write (the buffer can exceed it by one batch).
const BUF_CAP: usize = 1 << 20;
/// A batch this large goes to the file as it is when nothing is held (a
/// worker's batch is 256 KiB): copying it into the buffer first cost about
/// 100 instructions per packet on W1.
const PASS_THROUGH_MIN: usize = 64 << 10;

/// Lines waiting to be written to `W`; `bytes[..done]` are written already.
/// Every line ends with `\n`.
struct LineBuf {
    bytes: Vec<u8>,
    done: usize,
}

impl LineBuf {
    fn new() -> LineBuf {
        LineBuf {
            bytes: Vec::with_capacity(BUF_CAP),
            done: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Writes what is held; on error keeps the part not written.
    fn flush_to(&mut self, w: &mut impl Write) -> io::Result<()> {
        while self.done < self.bytes.len() {
            match w.write(&self.bytes[self.done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.bytes.clear();
        self.done = 0;
        w.flush()
    }

    /// Writes `lines` straight to `w` when nothing is held, without
    /// copying them; whatever `w` does not take (an error, a short write)
    /// is held as if it had been buffered, so the next flush retries it and
    /// reports the error with the usual accounting.
    fn pass_through(&mut self, w: &mut impl Write, lines: &[u8]) {
        debug_assert!(self.is_empty());
        let mut done = 0;
        while done < lines.len() {
            match w.write(&lines[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if done < lines.len() {
            self.bytes.extend_from_slice(lines);
            self.done = done;
        }
    }

    /// Lines not (wholly) written.
    fn lines_unwritten(&self) -> u64 {
        self.bytes[self.done..]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
    }

    /// Bytes of a line that are written while the rest of it is not.
    fn partial_line_written(&self) -> usize {
        let head = &self.bytes[..self.done];
        match head.iter().rposition(|&b| b == b'\n') {
            Some(i) => head.len() - i - 1,
            None => head.len(),
        }
    }

    /// Forgets everything held (after it was counted lost).
    fn discard(&mut self) {
        self.bytes.clear();
        self.done = 0;
    }
}

fn is_reader_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Standard output. A reader that goes away (EPIPE, e.g. `| head`) ends
/// this sink for good ([`SinkError::ReaderGone`]).
pub struct StdoutSink {
    buf: LineBuf,
    gone: bool,
    /// Events counted as sent that never reached the reader.
    unwritten: u64,
}

impl StdoutSink {
    pub fn new() -> StdoutSink {
        StdoutSink {
            buf: LineBuf::new(),
            gone: false,
            unwritten: 0,
        }
    }

    fn error(&mut self, e: io::Error) -> SinkError {
        if is_reader_gone(&e) {
            self.gone = true;
            self.unwritten += self.buf.lines_unwritten();
            self.buf.discard();
            SinkError::ReaderGone("stdout".into())
        } else {
            SinkError::io("cannot write to", "stdout", e)
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.gone {
            return Err(SinkError::ReaderGone("stdout".into()));
        }
        let r = self.buf.flush_to(&mut io::stdout().lock());
        r.map_err(|e| self.error(e))
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}

impl Transport for StdoutSink {
    fn connect(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        if self.buf.len() >= BUF_CAP {
            self.flush().map_err(|error| Partial { sent: 0, error })?;
        }
        let lines = batch.bytes_from(from);
        if self.buf.is_empty() && lines.len() >= PASS_THROUGH_MIN && !self.gone {
            self.buf.pass_through(&mut io::stdout().lock(), lines);
        } else {
            self.buf.bytes.extend_from_slice(lines);
        }
        Ok(())
    }

    fn idle(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    fn close(&mut self) -> Result<(), SinkError> {
        match self.flush() {
            Err(SinkError::ReaderGone(_)) => Ok(()),
            Err(e) => {
                self.unwritten += self.buf.lines_unwritten();
                self.buf.discard();
                Err(e)
            }
            Ok(()) => Ok(()),
        }
    }

    fn take_unwritten(&mut self) -> u64 {
        std::mem::take(&mut self.unwritten)
    }
}

/// A rotating JSON-lines file.
pub struct FileSink {
    spec: FileSpec,
    file: Option<File>,
    buf: LineBuf,
    /// Bytes in the current file, the buffered ones included.
    size: u64,
    opened: Instant,
    seq: u64,
    /// A plain file is emptied when the run starts (see [`Transport::start`]),
    /// not when it is opened: a run that fails to start leaves it as it was.
    empty_at_start: bool,
    /// Events counted as sent that never reached the file.
    unwritten: u64,
    /// Files rotated so far (for tests and stats).
    pub rotations: u64,
}

impl FileSink {
    /// Opens the file (appending; nothing in it changes yet). A plain file
    /// (no rotation) is emptied by [`Transport::start`], once every output
    /// could be opened, as any command's output file is; a rotating file is
    /// appended to, so that a restart continues the current file that
    /// collectors are tailing.
    pub fn open(spec: FileSpec) -> Result<FileSink, SinkError> {
        let rotating = spec.rotate_bytes > 0 || !spec.rotate_age.is_zero();
        let mut s = FileSink {
            seq: 0,
            spec,
            file: None,
            buf: LineBuf::new(),
            size: 0,
            opened: Instant::now(),
            empty_at_start: !rotating,
            unwritten: 0,
            rotations: 0,
        };
        s.seq = s.rotated_files().len() as u64;
        s.open_file()?;
        Ok(s)
    }

    /// Like [`FileSink::open`], but a plain file is appended to, never
    /// emptied: a sink added by a reload must not wipe a file that an
    /// earlier sink (or the one it replaces) wrote.
    pub fn open_appending(spec: FileSpec) -> Result<FileSink, SinkError> {
        let mut s = FileSink::open(spec)?;
        s.empty_at_start = false;
        Ok(s)
    }

    fn path_str(&self) -> String {
        self.spec.path.display().to_string()
    }

    fn open_file(&mut self) -> Result<(), SinkError> {
        // The directory must exist: a mistyped path fails loudly.
        // Created with the sink's mode and group; an existing file (an
        // earlier run's, /dev/null, a FIFO) is appended to as it is.
        let f = self
            .spec
            .perms
            .open_or_create(OpenOptions::new().append(true), &self.spec.path)
            .map_err(|e| SinkError::io("cannot open output file", self.path_str(), e))?;
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0) + self.buf.len() as u64;
        self.file = Some(f);
        self.opened = Instant::now();
        Ok(())
    }

    /// Writes the buffered lines.
    fn flush_buf(&mut self) -> Result<(), SinkError> {
        if self.file.is_none() {
            self.open_file()?;
        }
        let r = match &mut self.file {
            Some(f) => self.buf.flush_to(f),
            None => Ok(()),
        };
        r.map_err(|e| SinkError::io("cannot write", self.path_str(), e))
    }

    fn rotation_due(&self, next_line: u64) -> bool {
        if self.size == 0 {
            return false;
        }
        let by_size = self.spec.rotate_bytes > 0 && self.size + next_line > self.spec.rotate_bytes;
        let by_age =
            !self.spec.rotate_age.is_zero() && self.opened.elapsed() >= self.spec.rotate_age;
        by_size || by_age
    }

    /// Closes the current file, renames it, compresses it, applies retention.
    /// A compression that fails (e.g. the disk is full) leaves the rotated
    /// file uncompressed and no `.tmp` behind; the sink goes on.
    pub fn rotate(&mut self) -> Result<(), SinkError> {
        self.flush_buf()?;
        if let Some(f) = self.file.take() {
            let _ = f.sync_data();
        }
        if self.size > 0 {
            self.seq += 1;
            let target = self.rotated_name(self.seq);
            fs::rename(&self.spec.path, &target)
                .map_err(|e| SinkError::io("cannot rename", self.path_str(), e))?;
            self.rotations += 1;
            if let Err(e) = compress_file(&target, self.spec.compress, self.spec.perms) {
                eprintln!(
                    "flowtap: file sink {}: {}; {} kept uncompressed",
                    self.path_str(),
                    super::error_chain(&e),
                    target.display()
                );
            }
            self.retention()?;
        }
        self.open_file()
    }

    fn rotated_name(&self, seq: u64) -> PathBuf {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut ts = Vec::with_capacity(27);
        crate::json::push_rfc3339_micros(&mut ts, secs * 1_000_000_000);
        // 2026-07-06T00:00:00.000000Z -> 20260706T000000Z
        let compact: String = ts
            .iter()
            .take(19)
            .filter(|c| c.is_ascii_digit() || **c == b'T')
            .map(|&c| c as char)
            .collect();
        let mut name = self
            .spec
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.push_str(&format!(".{compact}Z-{seq:06}"));
        self.spec.path.with_file_name(name)
    }

    /// Rotated files of this sink, oldest first.
    pub fn rotated_files(&self) -> Vec<(PathBuf, u64)> {
        rotated_files(&self.spec.path)
    }

    fn retention(&self) -> Result<(), SinkError> {
        let files = self.rotated_files();
        let mut total: u64 = files.iter().map(|(_, n)| n).sum();
        let mut count = files.len();
        for (p, n) in files {
            let over_count = self.spec.keep_files > 0 && count > self.spec.keep_files;
            let over_bytes = self.spec.keep_bytes > 0 && total > self.spec.keep_bytes;
            if !over_count && !over_bytes {
                break;
            }
            fs::remove_file(&p)
                .map_err(|e| SinkError::io("cannot remove", p.display().to_string(), e))?;
            total = total.saturating_sub(n);
            count -= 1;
        }
        Ok(())
    }

    /// Takes one or more whole lines; writes first when the buffer is full.
    fn take(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        if !self.buf.is_empty() && self.buf.len() + lines.len() > BUF_CAP {
            self.flush_buf()?;
        }
        if self.buf.is_empty() && lines.len() >= PASS_THROUGH_MIN {
            if self.file.is_none() {
                self.open_file()?;
            }
            if let Some(f) = &mut self.file {
                self.buf.pass_through(f, lines);
                self.size += lines.len() as u64;
                return Ok(());
            }
        }
        self.buf.bytes.extend_from_slice(lines);
        self.size += lines.len() as u64;
        Ok(())
    }

    /// Takes one line given without its newline.
    fn take_line(&mut self, line: &[u8]) -> Result<(), SinkError> {
        if !self.buf.is_empty() && self.buf.len() + line.len() + 1 > BUF_CAP {
            self.flush_buf()?;
        }
        self.buf.bytes.extend_from_slice(line);
        self.buf.bytes.push(b'\n');
        self.size += line.len() as u64 + 1;
        Ok(())
    }
}

/// Rotated files beside `path` (`NAME.<stamp>-<seq>[.gz|.zst]`), oldest first.
pub fn rotated_files(path: &Path) -> Vec<(PathBuf, u64)> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!("{name}.");
    let mut out: Vec<(String, PathBuf, u64)> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let rest = n.strip_prefix(&prefix)?;
                    if rest.ends_with(".tmp") || !rest.contains('-') {
                        return None;
                    }
                    // sort by sequence number, the part after the last '-'
                    let seq = rest.rsplit_once('-').map(|(_, s)| {
                        s.trim_end_matches(".gz")
                            .trim_end_matches(".zst")
                            .to_string()
                    })?;
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    Some((seq, e.path(), len))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.into_iter().map(|(_, p, n)| (p, n)).collect()
}

/// Replaces the rotated file `path` by its compressed copy (`.gz` or
/// `.zst`), written under a `.tmp` name, synced, then renamed, so a reader
/// never sees half a compressed file and a crash leaves the plain one.
fn compress_file(path: &Path, how: FileCompression, perms: FilePerms) -> Result<(), SinkError> {
    let Some(suffix) = how.suffix() else {
        return Ok(());
    };
    let name = |suffix: &str| {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let tmp = name(&format!("{suffix}.tmp"));
    let done = name(suffix);
    let p = path.display().to_string();
    let run = || -> io::Result<()> {
        let mut input = File::open(path)?;
        // A `.tmp` left by a crash is replaced: it is ours, half written.
        let _ = fs::remove_file(&tmp);
        let out = io::BufWriter::new(perms.create_new(OpenOptions::new().write(true), &tmp)?);
        let out = if how == FileCompression::Zstd {
            let mut z = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
            io::copy(&mut input, &mut z)?;
            z.finish()?
        } else {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            io::copy(&mut input, &mut gz)?;
            gz.finish()?
        };
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_data()?;
        fs::rename(&tmp, &done)?;
        fs::remove_file(path)
    };
    run().map_err(|e| {
        // Never leave half a compressed file behind (a full disk).
        let _ = fs::remove_file(&tmp);
        SinkError::io("cannot compress", p, e)
    })
}

/// zstd's default level: on W1's JSON lines it compresses better than gzip's
/// default and several times faster.
const ZSTD_LEVEL: i32 = 3;

impl Transport for FileSink {
    /// Writes what is held (reopening the file if a rotation lost it): a
    /// sink that is down is back only once its bytes reach the disk.
    fn connect(&mut self) -> Result<(), SinkError> {
        self.flush_buf()
    }

    fn start(&mut self) -> Result<(), SinkError> {
        if std::mem::take(&mut self.empty_at_start) {
            // Only a regular file (not /dev/null, a FIFO, ...).
            if let Some(f) = self
                .file
                .as_ref()
                .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
            {
                f.set_len(0)
                    .map_err(|e| SinkError::io("cannot empty output file", self.path_str(), e))?;
            }
            self.size = self.buf.len() as u64;
        }
        Ok(())
    }

    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        let simple = self.spec.rotate_bytes == 0 && self.spec.rotate_age.is_zero();
        if simple {
            return self
                .take(batch.bytes_from(from))
                .map_err(|error| Partial { sent: 0, error });
        }
        for i in from..batch.len() {
            let Some((_, line)) = batch.event(i) else {
                break;
            };
            let n = line.len() as u64 + 1;
            let r = if self.rotation_due(n) {
                self.rotate()
            } else {
                Ok(())
            };
            if let Err(error) = r.and_then(|()| self.take_line(line)) {
                return Err(Partial {
                    sent: i - from,
                    error,
                });
            }
        }
        Ok(())
    }

    fn idle(&mut self) -> Result<(), SinkError> {
        if self.rotation_due(0) {
            self.rotate()?;
        }
        self.flush_buf()
    }

    /// Writes what is held. If that fails, the lines not written are
    /// counted ([`Transport::take_unwritten`]) and a line cut by the
    /// failure is removed, so the file ends with a whole line.
    fn close(&mut self) -> Result<(), SinkError> {
        let r = self.flush_buf();
        if r.is_err() {
            self.unwritten += self.buf.lines_unwritten();
            let cut = self.buf.partial_line_written() as u64;
            if let Some(f) = &self.file {
                if cut > 0 {
                    if let Ok(m) = f.metadata() {
                        let _ = f.set_len(m.len().saturating_sub(cut));
                    }
                }
            }
            self.buf.discard();
        }
        self.file = None;
        r
    }

    fn take_unwritten(&mut self) -> u64 {
        std::mem::take(&mut self.unwritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use std::io::Read;
    use std::time::Duration;

    fn batch(from: u64, n: u64) -> Batch {
        let mut b = Batch::default();
        for i in from..from + n {
            b.bytes
                .extend_from_slice(format!("{{\"n\":{i},\"pad\":\"xxxxxxxxxx\"}}\n").as_bytes());
            b.commit(EventType::Flow, i, b"");
        }
        b
    }

    fn read_all(dir: &Path, name: &str) -> Vec<u64> {
        let mut files: Vec<PathBuf> = rotated_files(&dir.join(name))
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        files.push(dir.join(name));
        let mut out = Vec::new();
        for f in files {
            let mut text = String::new();
            let raw = fs::File::open(&f).expect("open");
            if f.extension().is_some_and(|e| e == "gz") {
                flate2::read::GzDecoder::new(raw)
                    .read_to_string(&mut text)
                    .expect("gunzip");
            } else if f.extension().is_some_and(|e| e == "zst") {
                zstd::stream::read::Decoder::new(raw)
                    .expect("zstd")
                    .read_to_string(&mut text)
                    .expect("unzstd");
            } else {
                io::BufReader::new(raw)
                    .read_to_string(&mut text)
                    .expect("read");
            }
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).expect("whole JSON line");
                out.push(v["n"].as_u64().expect("n"));
            }
        }
        out
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("flowtap-file-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn rotates_by_size_without_splitting_or_losing_lines() {
        let dir = tmp("size");
        let mut spec = FileSpec::plain(dir.join("eve.json"));
        spec.rotate_bytes = 1000;
        let mut s = FileSink::open(spec).expect("open");
        for k in 0..20 {
            s.send(&batch(k * 37, 37), 0).expect("send");
        }
        s.close().expect("close");
        let got = read_all(&dir, "eve.json");
        assert_eq!(got, (0..740).collect::<Vec<_>>());
        let files = rotated_files(&dir.join("eve.json"));
        assert!(files.len() > 20, "{}", files.len());
        for (_, n) in &files {
            assert!(*n <= 1000, "{n}");
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn gzip_and_retention_by_count() {
        let dir = tmp("gz");
        let mut spec = FileSpec::plain(dir.join("f.json"));
        spec.rotate_bytes = 2000;
        spec.compress = FileCompression::Gzip;
        spec.keep_files = 3;
        let mut s = FileSink::open(spec).expect("open");
        for k in 0..10 {
            s.send(&batch(k * 100, 100), 0).expect("send");
        }
        s.close().expect("close");
        let files = rotated_files(&dir.join("f.json"));
        assert_eq!(files.len(), 3);
        assert!(files
            .iter()
            .all(|(p, _)| p.extension().is_some_and(|e| e == "gz")));
        // the newest events are all there, in order, none split
        let got = read_all(&dir, "f.json");
        assert_eq!(got.last(), Some(&999));
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn zstd_rotation_keeps_every_line_within_the_byte_budget() {
        let dir = tmp("zst");
        let mut spec = FileSpec::plain(dir.join("f.json"));
        spec.rotate_bytes = 4000;
        spec.compress = FileCompression::Zstd;
        spec.keep_bytes = 100_000;
        let mut s = FileSink::open(spec).expect("open");
        for k in 0..10 {
            s.send(&batch(k * 100, 100), 0).expect("send");
        }
        s.close().expect("close");
        let files = rotated_files(&dir.join("f.json"));
        assert!(files.len() >= 4, "{}", files.len());
        for (p, n) in &files {
            assert!(p.extension().is_some_and(|e| e == "zst"), "{}", p.display());
            let head = fs::read(p).expect("read");
            assert_eq!(&head[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
            assert!(*n < 4000, "compressed {n}");
        }
        // nothing left behind under a temporary name, every event once, in order
        assert!(fs::read_dir(&dir).expect("dir").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
        assert_eq!(read_all(&dir, "f.json"), (0..1000).collect::<Vec<_>>());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn retention_by_bytes_and_rotation_by_age() {
        let dir = tmp("age");
        let mut spec = FileSpec::plain(dir.join("a.json"));
        spec.rotate_age = Duration::from_millis(30);
        spec.keep_bytes = 1 << 20;
        let mut s = FileSink::open(spec).expect("open");
        s.send(&batch(0, 5), 0).expect("send");
        std::thread::sleep(Duration::from_millis(40));
        s.idle().expect("idle");
        s.send(&batch(5, 5), 0).expect("send");
        s.close().expect("close");
        assert_eq!(s.rotations, 1);
        assert_eq!(read_all(&dir, "a.json"), (0..10).collect::<Vec<_>>());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_is_retried_from_where_it_stopped_and_counted_if_never_done() {
        // /dev/full: every write fails with ENOSPC.
        let mut s = FileSink::open(FileSpec::plain(PathBuf::from("/dev/full"))).expect("open");
        s.start().expect("a device is not emptied");
        s.send(&batch(0, 10), 0).expect("taken into the buffer");
        let e = s.idle().expect_err("the disk is full");
        let why = crate::sink::error_chain(&e);
        assert!(why.contains("No space left on device"), "{why}");
        // Being down is not undone by "reconnecting": the bytes must go out.
        assert!(s.connect().is_err());
        assert!(s.close().is_err());
        assert_eq!(s.take_unwritten(), 10);
        assert_eq!(s.take_unwritten(), 0);
    }

    #[test]
    fn a_plain_file_is_emptied_when_its_sink_starts_not_when_opened() {
        let dir = tmp("start");
        let path = dir.join("out.json");
        fs::write(&path, "kept\n").expect("write");
        let mut s = FileSink::open(FileSpec::plain(path.clone())).expect("open");
        assert_eq!(fs::read_to_string(&path).expect("read"), "kept\n");
        drop(s);
        s = FileSink::open(FileSpec::plain(path.clone())).expect("open");
        s.start().expect("start");
        s.send(&batch(0, 2), 0).expect("send");
        s.close().expect("close");
        assert_eq!(read_all(&dir, "out.json"), vec![0, 1]);
        let _ = fs::remove_dir_all(&dir);
    }
}
