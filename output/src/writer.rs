//! The line writer: one thread that owns the output file (or stdout) and
//! writes the batches workers encoded. Workers hand over whole buffers
//! through a bounded queue and get an empty, already-grown buffer back, so
//! steady state allocates nothing.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

/// Where JSON lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl Destination {
    /// `-` means stdout; anything else is a file path.
    pub fn parse(s: &str) -> Destination {
        if s == "-" {
            Destination::Stdout
        } else {
            Destination::File(PathBuf::from(s))
        }
    }
}

/// What a worker does when the writer's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (offline replay: lossless).
    Block,
    /// Drop the batch and count its events (live capture: never stall RX).
    DropNewest,
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot create output file {path}")]
    Create { path: PathBuf, source: io::Error },
    #[error("writing output failed: {0}")]
    Write(#[from] io::Error),
}

/// One encoded batch: whole lines only.
struct Batch {
    bytes: Vec<u8>,
    events: u64,
}

/// Counters shared between the writer thread and the senders.
#[derive(Debug, Default)]
pub struct WriterCounters {
    pub batches_written: AtomicU64,
    pub events_written: AtomicU64,
    pub bytes_written: AtomicU64,
    pub events_dropped: AtomicU64,
    pub batches_dropped: AtomicU64,
}

/// A worker's handle on the writer. Cheap to clone, one per worker.
#[derive(Clone)]
pub struct BatchSender {
    tx: Sender<Batch>,
    pool: Receiver<Vec<u8>>,
    policy: WhenFull,
    counters: Arc<WriterCounters>,
}

impl BatchSender {
    /// Hands `buf` (holding `events` complete lines) to the writer and leaves
    /// an empty buffer in its place. Never blocks with [`WhenFull::DropNewest`].
    pub fn submit(&self, buf: &mut Vec<u8>, events: u64) {
        if buf.is_empty() {
            return;
        }
        let replacement = self
            .pool
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(buf.capacity()));
        let bytes = std::mem::replace(buf, replacement);
        let batch = Batch { bytes, events };
        let rejected = match self.policy {
            WhenFull::Block => self.tx.send(batch).err().map(|e| e.0),
            WhenFull::DropNewest => match self.tx.try_send(batch) {
                Ok(()) => None,
                Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => Some(b),
            },
        };
        if let Some(b) = rejected {
            self.counters
                .events_dropped
                .fetch_add(b.events, Ordering::Relaxed);
            self.counters
                .batches_dropped
                .fetch_add(1, Ordering::Relaxed);
            // Keep the grown buffer for the next batch.
            let mut bytes = b.bytes;
            bytes.clear();
            *buf = bytes;
        }
    }

    pub fn counters(&self) -> &Arc<WriterCounters> {
        &self.counters
    }
}

/// The writer thread; join it after every sender is dropped.
pub struct LineWriter {
    handle: JoinHandle<Result<(), WriterError>>,
    counters: Arc<WriterCounters>,
}

impl LineWriter {
    /// Opens `dest` and starts the writer thread with a queue of `queue_batches` batches.
    pub fn spawn(
        dest: &Destination,
        queue_batches: usize,
        policy: WhenFull,
    ) -> Result<(LineWriter, BatchSender), WriterError> {
        let out: Box<dyn Write + Send> = match dest {
            Destination::Stdout => Box::new(io::stdout()),
            Destination::File(path) => {
                Box::new(File::create(path).map_err(|source| WriterError::Create {
                    path: path.clone(),
                    source,
                })?)
            }
        };
        let (tx, rx) = bounded::<Batch>(queue_batches.max(1));
        let (pool_tx, pool_rx) = bounded::<Vec<u8>>(queue_batches.max(1) * 2);
        let counters = Arc::new(WriterCounters::default());
        let thread_counters = Arc::clone(&counters);
        let handle = std::thread::Builder::new()
            .name("flowtap-writer".into())
            .spawn(move || write_loop(out, rx, pool_tx, &thread_counters))
            .map_err(WriterError::Write)?;
        Ok((
            LineWriter {
                handle,
                counters: Arc::clone(&counters),
            },
            BatchSender {
                tx,
                pool: pool_rx,
                policy,
                counters,
            },
        ))
    }

    pub fn counters(&self) -> &Arc<WriterCounters> {
        &self.counters
    }

    /// Waits until every sender is gone and all batches are written.
    pub fn join(self) -> Result<(), WriterError> {
        match self.handle.join() {
            Ok(r) => r,
            Err(_) => Err(WriterError::Write(io::Error::other(
                "writer thread panicked",
            ))),
        }
    }
}

fn write_loop(
    out: Box<dyn Write + Send>,
    rx: Receiver<Batch>,
    pool: Sender<Vec<u8>>,
    counters: &WriterCounters,
) -> Result<(), WriterError> {
    let mut out = BufWriter::with_capacity(1 << 20, out);
    for batch in rx.iter() {
        out.write_all(&batch.bytes)?;
        counters.batches_written.fetch_add(1, Ordering::Relaxed);
        counters
            .events_written
            .fetch_add(batch.events, Ordering::Relaxed);
        counters
            .bytes_written
            .fetch_add(batch.bytes.len() as u64, Ordering::Relaxed);
        // Flush when the queue runs dry so a reader of the file sees whole
        // batches promptly on quiet links.
        if rx.is_empty() {
            out.flush()?;
        }
        let mut bytes = batch.bytes;
        bytes.clear();
        let _ = pool.try_send(bytes);
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_batch_in_order_and_recycles_buffers() {
        let dir = std::env::temp_dir().join(format!("flowtap-writer-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("out.json");
        let (writer, sender) =
            LineWriter::spawn(&Destination::File(path.clone()), 2, WhenFull::Block).expect("spawn");
        let mut buf = Vec::with_capacity(64);
        for i in 0..100u64 {
            buf.extend_from_slice(format!("{{\"n\":{i}}}\n").as_bytes());
            sender.submit(&mut buf, 1);
            assert!(buf.is_empty());
        }
        drop(sender);
        let counters = Arc::clone(writer.counters());
        writer.join().expect("join");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 100);
        assert_eq!(lines[99], "{\"n\":99}");
        assert_eq!(counters.events_written.load(Ordering::Relaxed), 100);
        assert_eq!(counters.events_dropped.load(Ordering::Relaxed), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn drop_newest_counts_what_it_drops() {
        let (tx, rx) = bounded::<Batch>(1);
        let (_pool_tx, pool_rx) = bounded::<Vec<u8>>(1);
        let sender = BatchSender {
            tx,
            pool: pool_rx,
            policy: WhenFull::DropNewest,
            counters: Arc::new(WriterCounters::default()),
        };
        let mut buf = b"{}\n{}\n".to_vec();
        sender.submit(&mut buf, 2);
        buf.extend_from_slice(b"{}\n");
        sender.submit(&mut buf, 1); // queue full: dropped
        assert_eq!(sender.counters.events_dropped.load(Ordering::Relaxed), 1);
        assert_eq!(rx.len(), 1);
        assert!(buf.is_empty());
    }
}
