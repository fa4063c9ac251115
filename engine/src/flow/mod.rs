//! The per-worker flow table: a pre-sized open-addressing index over a slab
//! of flows, a lazy timer wheel for timeouts, and the flow record each flow
//! becomes when it ends.

mod table;
pub mod tcp;
pub mod wheel;

pub use table::{FlowTable, FlowTimeouts, PacketInfo, RecordSink, TableCounters};
