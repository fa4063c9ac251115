//! What the handles send to the writer thread: a chunk of operations whose
//! variable parts (frames, labels) live in one byte buffer. Chunks are
//! recycled through a pool, so a handle in steady state allocates nothing.

/// A byte range in [`Chunk::bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Open {
        file: u64,
        rule: u32,
        linktype: u32,
        worker: u16,
        flow_id: u64,
        first_ts_ns: u64,
        community_id: Span,
        reason: Span,
    },
    Packet {
        file: u64,
        ts_ns: u64,
        orig_len: u32,
        data: Span,
    },
    Close {
        file: u64,
    },
    Shared {
        rule: u32,
        linktype: u32,
        ts_ns: u64,
        orig_len: u32,
        data: Span,
    },
    /// Packets of `file` dropped at a full queue.
    Dropped {
        file: u64,
        packets: u64,
    },
    /// Packets of a shared rule dropped at a full queue.
    SharedDropped {
        rule: u32,
        packets: u64,
    },
}

/// Bytes a chunk holds before it is handed over.
pub(crate) const CHUNK_BYTES: usize = 256 * 1024;
/// Operations a chunk holds before it is handed over.
pub(crate) const CHUNK_OPS: usize = 4096;

#[derive(Debug)]
pub(crate) struct Chunk {
    pub ops: Vec<Op>,
    pub bytes: Vec<u8>,
}

impl Chunk {
    pub fn new() -> Chunk {
        Chunk {
            ops: Vec::with_capacity(CHUNK_OPS),
            bytes: Vec::with_capacity(CHUNK_BYTES),
        }
    }

    pub fn clear(&mut self) {
        self.ops.clear();
        self.bytes.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Whether `extra` more bytes or one more op would not fit.
    pub fn would_overflow(&self, extra: usize) -> bool {
        self.ops.len() >= CHUNK_OPS
            || (!self.bytes.is_empty() && self.bytes.len() + extra > CHUNK_BYTES)
    }

    pub fn put(&mut self, data: &[u8]) -> Span {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(data);
        Span {
            start,
            len: data.len() as u32,
        }
    }

    pub fn get(&self, s: Span) -> &[u8] {
        self.bytes.get(s.range()).unwrap_or(&[])
    }

    /// Drops the frames but keeps every open and close (so files still start
    /// and finish), turning dropped frames into per-file drop counts. Works
    /// in place. Returns the number of frames dropped.
    pub fn strip_packets(&mut self) -> u64 {
        let mut dropped = 0u64;
        let mut w = 0usize; // ops kept so far (always <= the read index)
        let mut wb = 0usize; // bytes kept so far (always <= the read offset)
        for i in 0..self.ops.len() {
            let op = self.ops[i];
            let kept = match op {
                Op::Packet { file, .. } => {
                    dropped += 1;
                    if let Some(Op::Dropped { file: f, packets }) =
                        w.checked_sub(1).map(|j| &mut self.ops[j])
                    {
                        if *f == file {
                            *packets += 1;
                            continue;
                        }
                    }
                    Op::Dropped { file, packets: 1 }
                }
                Op::Shared { rule, .. } => {
                    dropped += 1;
                    if let Some(Op::SharedDropped { rule: r, packets }) =
                        w.checked_sub(1).map(|j| &mut self.ops[j])
                    {
                        if *r == rule {
                            *packets += 1;
                            continue;
                        }
                    }
                    Op::SharedDropped { rule, packets: 1 }
                }
                Op::Open {
                    file,
                    rule,
                    linktype,
                    worker,
                    flow_id,
                    first_ts_ns,
                    community_id,
                    reason,
                } => {
                    let mut keep = |s: Span| {
                        let start = wb;
                        self.bytes.copy_within(s.range(), wb);
                        wb += s.len as usize;
                        Span {
                            start: start as u32,
                            len: s.len,
                        }
                    };
                    let community_id = keep(community_id);
                    let reason = keep(reason);
                    Op::Open {
                        file,
                        rule,
                        linktype,
                        worker,
                        flow_id,
                        first_ts_ns,
                        community_id,
                        reason,
                    }
                }
                other => other,
            };
            self.ops[w] = kept;
            w += 1;
        }
        self.ops.truncate(w);
        self.bytes.truncate(wb);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_keeps_opens_and_closes_and_counts_per_file() {
        let mut c = Chunk::new();
        let d0 = c.put(&[1; 100]);
        let cid = c.put(b"1:abc");
        let reason = c.put(b"http.host=x");
        c.ops.push(Op::Packet {
            file: 7,
            ts_ns: 1,
            orig_len: 100,
            data: d0,
        });
        c.ops.push(Op::Open {
            file: 9,
            rule: 0,
            linktype: 1,
            worker: 0,
            flow_id: 42,
            first_ts_ns: 5,
            community_id: cid,
            reason,
        });
        for _ in 0..3 {
            let d = c.put(&[2; 60]);
            c.ops.push(Op::Packet {
                file: 9,
                ts_ns: 6,
                orig_len: 60,
                data: d,
            });
        }
        c.ops.push(Op::Close { file: 7 });
        let d = c.put(&[3; 10]);
        c.ops.push(Op::Shared {
            rule: 1,
            linktype: 1,
            ts_ns: 7,
            orig_len: 10,
            data: d,
        });
        assert_eq!(c.strip_packets(), 5);
        assert_eq!(c.ops.len(), 5);
        assert_eq!(
            c.ops[0],
            Op::Dropped {
                file: 7,
                packets: 1
            }
        );
        match c.ops[1] {
            Op::Open {
                community_id,
                reason,
                flow_id,
                ..
            } => {
                assert_eq!(c.get(community_id), b"1:abc");
                assert_eq!(c.get(reason), b"http.host=x");
                assert_eq!(flow_id, 42);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.ops[2],
            Op::Dropped {
                file: 9,
                packets: 3
            }
        );
        assert_eq!(c.ops[3], Op::Close { file: 7 });
        assert_eq!(
            c.ops[4],
            Op::SharedDropped {
                rule: 1,
                packets: 1
            }
        );
        assert_eq!(c.bytes.len(), 5 + 11);
    }
}
