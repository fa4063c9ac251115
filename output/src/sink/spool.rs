//! A disk spool: a FIFO of batches in one file, used by a network sink
//! while its collector is down and replayed in order when it is back.
//! Records are `[events u32][bytes u32][meta ...][bytes ...]` (little
//! endian); the file is truncated once everything in it has been replayed.
//! Past `max_bytes` new batches are refused (the caller counts them dropped).

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::batch::{Batch, EventMeta};
use super::SinkError;
use crate::event::EventType;
use crate::perms::FilePerms;

pub struct Spool {
    path: PathBuf,
    file: File,
    read_at: u64,
    write_at: u64,
    max_bytes: u64,
    events: u64,
    scratch: Vec<u8>,
}

fn kind_byte(k: EventType) -> u8 {
    k.index() as u8
}

fn kind_of(b: u8) -> EventType {
    EventType::from_index(usize::from(b)).unwrap_or(EventType::Flow)
}

impl Spool {
    /// Opens `dir/<name>.spool`; a spool left by an earlier run is replayed.
    /// The directory (and its missing parents) and the file are created
    /// with `perms`; existing ones are left as they are.
    pub fn open(
        dir: &Path,
        name: &str,
        max_bytes: u64,
        perms: FilePerms,
    ) -> Result<Spool, SinkError> {
        let d = dir.display().to_string();
        perms
            .create_dir_all(dir)
            .map_err(|e| SinkError::io("cannot create spool directory", d, e))?;
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{safe}.spool"));
        let file = perms
            .open_or_create(OpenOptions::new().read(true).write(true), &path)
            .map_err(|e| SinkError::io("cannot open spool", path.display().to_string(), e))?;
        let write_at = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut s = Spool {
            path,
            file,
            read_at: 0,
            write_at,
            max_bytes,
            events: 0,
            scratch: Vec::new(),
        };
        s.events = s.count_events();
        Ok(s)
    }

    fn err(&self, e: io::Error) -> SinkError {
        SinkError::io("spool", self.path.display().to_string(), e)
    }

    fn count_events(&mut self) -> u64 {
        let mut n = 0u64;
        let mut at = 0u64;
        let Ok(mut f) = self.file.try_clone() else {
            return 0;
        };
        if f.seek(SeekFrom::Start(0)).is_err() {
            return 0;
        }
        let mut r = BufReader::new(f);
        let mut head = [0u8; 8];
        while at < self.write_at {
            if r.read_exact(&mut head).is_err() {
                break;
            }
            let ev = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
            let bytes = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
            let body = ev * 46 + bytes;
            if r.seek_relative(body as i64).is_err() {
                break;
            }
            at += 8 + body;
            n += ev;
        }
        if at != self.write_at {
            // A torn record at the end (crash while writing): cut it off.
            self.write_at = at;
            let _ = self.file.set_len(at);
        }
        n
    }

    /// Bytes waiting in the spool.
    pub fn bytes(&self) -> u64 {
        self.write_at - self.read_at
    }

    /// Events waiting in the spool.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.read_at >= self.write_at
    }

    /// Appends events `from..` of `batch`; false when over the cap.
    pub fn push(&mut self, batch: &Batch, from: usize) -> Result<bool, SinkError> {
        let n = batch.len().saturating_sub(from);
        if n == 0 {
            return Ok(true);
        }
        let bytes = batch.bytes_from(from);
        let base = if from == 0 {
            0
        } else {
            batch.meta.get(from - 1).map_or(0, |m| m.end)
        };
        let size = 8 + n as u64 * 46 + bytes.len() as u64;
        if self.write_at + size > self.max_bytes {
            return Ok(false);
        }
        let s = &mut self.scratch;
        s.clear();
        s.extend_from_slice(&(n as u32).to_le_bytes());
        s.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        for m in batch.meta.get(from..).unwrap_or(&[]) {
            s.extend_from_slice(&(m.end - base).to_le_bytes());
            s.push(kind_byte(m.kind));
            s.extend_from_slice(&m.ts_ns.to_le_bytes());
            let k = m.key();
            s.push(k.len() as u8);
            let mut key = [0u8; 32];
            key[..k.len()].copy_from_slice(k);
            s.extend_from_slice(&key);
        }
        s.extend_from_slice(bytes);
        let at = self.write_at;
        let r = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(&self.scratch));
        r.map_err(|e| self.err(e))?;
        self.write_at += size;
        self.events += n as u64;
        Ok(true)
    }

    /// Reads the oldest batch into `out` without removing it; call
    /// [`Spool::pop`] once it is sent.
    pub fn peek(&mut self, out: &mut Batch) -> Result<bool, SinkError> {
        out.clear();
        if self.is_empty() {
            return Ok(false);
        }
        let mut head = [0u8; 8];
        let at = self.read_at;
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(&mut head))
            .map_err(|e| self.err(e))?;
        let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        self.scratch.resize(n * 46, 0);
        let r = self.file.read_exact(&mut self.scratch);
        r.map_err(|e| self.err(e))?;
        out.bytes.resize(len, 0);
        self.file
            .read_exact(&mut out.bytes)
            .map_err(|e| self.err(e))?;
        for rec in self.scratch.chunks_exact(46) {
            let end = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
            let kind = kind_of(rec[4]);
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&rec[5..13]);
            let klen = (rec[13] as usize).min(32);
            out.meta.push(EventMeta::new(
                end,
                kind,
                u64::from_le_bytes(ts),
                &rec[14..14 + klen],
            ));
        }
        Ok(true)
    }

    /// Removes the batch [`Spool::peek`] returned (`events` of it).
    pub fn pop(&mut self, events: usize, bytes: usize) -> Result<(), SinkError> {
        self.read_at += 8 + events as u64 * 46 + bytes as u64;
        self.events = self.events.saturating_sub(events as u64);
        if self.read_at >= self.write_at {
            self.read_at = 0;
            self.write_at = 0;
            self.events = 0;
            self.file.set_len(0).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn fifo_with_cap_and_reopen() {
        let dir = std::env::temp_dir().join(format!("flowtap-spool-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut s = Spool::open(&dir, "s1", 10_000, FilePerms::default()).expect("open");
        let mut b = Batch::default();
        for i in 0..10u64 {
            b.bytes
                .extend_from_slice(format!("{{\"n\":{i}}}\n").as_bytes());
            b.commit(EventType::App(dissect::app::AppProto::Dns), i, b"1:key");
        }
        assert!(s.push(&b, 0).expect("push"));
        assert!(s.push(&b, 7).expect("push tail"));
        assert_eq!(s.events(), 13);
        let mut big = Batch::default();
        big.bytes.resize(20_000, b'x');
        big.commit(EventType::Flow, 0, b"");
        assert!(!s.push(&big, 0).expect("over cap"));
        drop(s);
        let mut s = Spool::open(&dir, "s1", 10_000, FilePerms::default()).expect("reopen");
        assert_eq!(s.events(), 13);
        let mut out = Batch::default();
        assert!(s.peek(&mut out).expect("peek"));
        assert_eq!(out.len(), 10);
        assert_eq!(
            out.event(3).map(|(m, l)| (m.ts_ns, l.to_vec())),
            Some((3, b"{\"n\":3}".to_vec()))
        );
        assert_eq!(
            out.event(3).map(|(m, _)| m.key().to_vec()),
            Some(b"1:key".to_vec())
        );
        s.pop(out.len(), out.bytes.len()).expect("pop");
        assert!(s.peek(&mut out).expect("peek"));
        assert_eq!(out.len(), 3);
        assert_eq!(
            out.event(0).map(|(_, l)| l.to_vec()),
            Some(b"{\"n\":7}".to_vec())
        );
        s.pop(out.len(), out.bytes.len()).expect("pop");
        assert!(s.is_empty());
        assert_eq!(
            fs::metadata(dir.join("s1.spool")).map(|m| m.len()).ok(),
            Some(0)
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
