//! JSON-lines files and stdout (the directory must exist). A file rotates by size and/or age: the
//! current file is flushed, closed and renamed (atomically, same
//! directory) to `NAME.YYYYMMDDTHHMMSSZ-NNNNNN`, optionally gzip- or
//! zstd-compressed (written to `.gz.tmp` / `.zst.tmp`, then renamed), and the oldest rotated files are removed past
//! `keep_files` / `keep_bytes`. Rotation happens only between events, so no
//! line is ever split across files, and every event is written to exactly one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::batch::Batch;
use super::spec::{FileCompression, FileSpec};
use super::{Partial, SinkError, Transport};

/// Standard output.
pub struct StdoutSink {
    out: BufWriter<io::Stdout>,
}

impl StdoutSink {
    pub fn new() -> StdoutSink {
        StdoutSink {
            out: BufWriter::with_capacity(1 << 20, io::stdout()),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}

impl Transport for StdoutSink {
    fn connect(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        self.out
            .write_all(batch.bytes_from(from))
            .map_err(|e| Partial {
                sent: 0,
                error: SinkError::io("cannot write to", "stdout", e),
            })
    }

    fn idle(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(|e| SinkError::io("cannot write to", "stdout", e))
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.idle()
    }
}

/// A rotating JSON-lines file.
pub struct FileSink {
    spec: FileSpec,
    out: Option<BufWriter<File>>,
    size: u64,
    opened: Instant,
    seq: u64,
    /// Files rotated so far (for tests and stats).
    pub rotations: u64,
}

impl FileSink {
    /// Opens the file. A plain file (no rotation) starts empty, as any
    /// command's output file does; a rotating file is appended to, so that a
    /// restart continues the current file that collectors are tailing.
    pub fn open(spec: FileSpec) -> Result<FileSink, SinkError> {
        let mut s = FileSink {
            seq: 0,
            spec,
            out: None,
            size: 0,
            opened: Instant::now(),
            rotations: 0,
        };
        s.seq = s.rotated_files().len() as u64;
        let rotating = s.spec.rotate_bytes > 0 || !s.spec.rotate_age.is_zero();
        s.open_file(!rotating)?;
        Ok(s)
    }

    fn path_str(&self) -> String {
        self.spec.path.display().to_string()
    }

    fn reopen(&mut self) -> Result<(), SinkError> {
        self.open_file(false)
    }

    fn open_file(&mut self, truncate: bool) -> Result<(), SinkError> {
        // The directory must exist: a mistyped path fails loudly.
        let path = &self.spec.path;
        let f = OpenOptions::new()
            .create(true)
            .append(!truncate)
            .write(true)
            .truncate(truncate)
            .open(path)
            .map_err(|e| SinkError::io("cannot open output file", self.path_str(), e))?;
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.out = Some(BufWriter::with_capacity(1 << 20, f));
        self.opened = Instant::now();
        Ok(())
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
    pub fn rotate(&mut self) -> Result<(), SinkError> {
        if let Some(mut out) = self.out.take() {
            out.flush()
                .map_err(|e| SinkError::io("cannot write", self.path_str(), e))?;
            let f = out
                .into_inner()
                .map_err(|e| SinkError::io("cannot write", self.path_str(), e.into_error()))?;
            let _ = f.sync_data();
        }
        if self.size > 0 {
            self.seq += 1;
            let target = self.rotated_name(self.seq);
            fs::rename(&self.spec.path, &target)
                .map_err(|e| SinkError::io("cannot rename", self.path_str(), e))?;
            self.rotations += 1;
            compress_file(&target, self.spec.compress)?;
            self.retention()?;
        }
        self.reopen()
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

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.out {
            Some(o) => o.write_all(bytes),
            None => Err(io::Error::other("file not open")),
        }?;
        self.size += bytes.len() as u64;
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
fn compress_file(path: &Path, how: FileCompression) -> Result<(), SinkError> {
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
        let out = BufWriter::new(File::create(&tmp)?);
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
    run().map_err(|e| SinkError::io("cannot compress", p, e))
}

/// zstd's default level: on W1's JSON lines it compresses better than gzip's
/// default and several times faster.
const ZSTD_LEVEL: i32 = 3;

impl Transport for FileSink {
    fn connect(&mut self) -> Result<(), SinkError> {
        if self.out.is_none() {
            self.reopen()?;
        }
        Ok(())
    }

    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        let simple = self.spec.rotate_bytes == 0 && self.spec.rotate_age.is_zero();
        if simple {
            return self.write(batch.bytes_from(from)).map_err(|e| Partial {
                sent: 0,
                error: SinkError::io("cannot write", self.path_str(), e),
            });
        }
        for i in from..batch.len() {
            let Some((_, line)) = batch.event(i) else {
                break;
            };
            let n = line.len() as u64 + 1;
            if self.rotation_due(n) {
                self.rotate().map_err(|error| Partial {
                    sent: i - from,
                    error,
                })?;
            }
            let r = self.write(line).and_then(|_| self.write(b"\n"));
            if let Err(e) = r {
                return Err(Partial {
                    sent: i - from,
                    error: SinkError::io("cannot write", self.path_str(), e),
                });
            }
        }
        Ok(())
    }

    fn idle(&mut self) -> Result<(), SinkError> {
        if self.rotation_due(0) {
            self.rotate()?;
        }
        if let Some(o) = &mut self.out {
            o.flush().map_err(|e| {
                SinkError::io("cannot write", self.spec.path.display().to_string(), e)
            })?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        if let Some(mut o) = self.out.take() {
            o.flush()
                .map_err(|e| SinkError::io("cannot write", self.path_str(), e))?;
        }
        Ok(())
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
}
