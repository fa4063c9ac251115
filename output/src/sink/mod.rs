//! Sinks: where encoded batches go. Each sink runs on a thread of its own
//! (see [`runner`]) behind a bounded queue; a transport only knows how to
//! frame and send the events of a batch.

pub mod batch;
pub mod file;
pub mod gelf;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod net;
pub(crate) mod runner;
pub mod spec;
pub mod spool;
pub mod syslog;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64};

pub use batch::{Batch, EventMeta};
pub use runner::GIVE_UP_AFTER;
pub use spec::WhenFull;
pub use spec::{
    FileCompression, FileSpec, GelfCompression, SinkKind, SinkSpec, SpecError, SpoolSpec, TcpSpec,
    TlsSpec,
};

/// What went wrong in a sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{what} {target}")]
    Io {
        what: &'static str,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("message of {0} bytes needs more than 128 GELF chunks")]
    TooLarge(usize),
    #[error("kafka: {0}")]
    Kafka(String),
    /// This one event cannot be sent (the collector is fine): counted as
    /// failed and skipped.
    #[error("event rejected: {0}")]
    Rejected(String),
    #[error("sink is not connected")]
    Down,
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    #[error("TLS with {target} failed: {why}")]
    Tls { target: String, why: String },
    #[error("{target} took nothing for {ms} ms (collector stalled)")]
    Stalled { target: String, ms: u64 },
    /// The reader of a pipe went away (EPIPE): this sink is done for good.
    #[error("the reader closed {0}")]
    ReaderGone(String),
}

/// `e` and its sources, `: `-separated (the OS reason of an I/O error
/// included), for a log line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

impl SinkError {
    pub(crate) fn io(what: &'static str, target: impl Into<String>, source: io::Error) -> Self {
        SinkError::Io {
            what,
            target: target.into(),
            source,
        }
    }
}

/// A send that stopped part-way: `sent` events of the batch (from the
/// starting index) went out before `error`.
#[derive(Debug)]
pub struct Partial {
    pub sent: usize,
    pub error: SinkError,
}

/// Frames and sends events. Runs on the sink's own thread.
pub trait Transport: Send {
    /// Makes sure the transport can send (connects if needed).
    fn connect(&mut self) -> Result<(), SinkError>;
    /// Called once every sink of the run could be opened, before the first
    /// event (a plain output file is emptied here, not when opened).
    fn start(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Sends events `from..` of `batch`.
    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial>;
    /// Called when the queue is idle: flush buffers, rotate by time.
    fn idle(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Called at the end; flushes and closes.
    fn close(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Datagram transports: a failed event is counted, never retried.
    fn lossy(&self) -> bool {
        false
    }
    /// Whether the peer is known to be gone (checked before each send).
    fn peer_closed(&mut self) -> bool {
        false
    }
    /// Events found lost since the last call (committed to a connection
    /// that died before taking them whole); the runner counts them failed.
    fn take_lost(&mut self) -> u64 {
        0
    }
    /// Events counted as sent (taken into the transport's buffer) that
    /// never reached their destination (a flush at the end that failed);
    /// the runner moves them from sent to failed.
    fn take_unwritten(&mut self) -> u64 {
        0
    }
}

/// Counters of one sink, shared by its thread and the workers.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Events handed to the queue.
    pub events_queued: AtomicU64,
    pub events_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    /// Events that could not be delivered (datagram errors, shutdown give-up).
    pub events_failed: AtomicU64,
    /// Events dropped because the queue was full (when_full = drop).
    pub events_dropped: AtomicU64,
    /// Events dropped because the spool was at its cap.
    pub events_dropped_spool_full: AtomicU64,
    /// Events written to the spool / replayed from it.
    pub events_spooled: AtomicU64,
    pub events_unspooled: AtomicU64,
    /// Bytes and events in the spool now.
    pub spool_bytes: AtomicU64,
    pub spool_events: AtomicU64,
    pub reconnects: AtomicU64,
    pub connect_failures: AtomicU64,
    /// 1 while connected.
    pub up: AtomicU64,
    /// Batches put into / taken from the queue (their difference is its
    /// depth, readable without holding an end of the channel).
    pub batches_enqueued: AtomicU64,
    pub batches_dequeued: AtomicU64,
    /// The reader of this sink's pipe went away (stdout and EPIPE): the run
    /// should stop, as any Unix tool does when its reader quits.
    pub reader_gone: AtomicBool,
}
