//! Encoding of flowtap records and the sinks that ship them. Encoding runs on
//! the workers into reused buffers; sink I/O runs on threads of its own behind
//! bounded queues, so a slow sink never blocks a receive core.
//!
//! The engine uses [`Outputs`] (one per process) and a [`WorkerOutput`] per
//! worker; see [`outputs`].

pub mod event;
pub mod json;
pub mod metrics;
pub mod outputs;
pub mod pcap;
pub mod perms;
pub mod schema;
pub mod sink;
pub mod writer;

pub use event::{EventType, TypeSet};
pub use outputs::{OutputError, Outputs, OutputsProbe, SinkSnapshot, Volume, WorkerOutput};
pub use schema::{EncodeOptions, Schema};
pub use sink::{SinkKind, SinkSpec};
