//! Encoding of flowtap records and the sinks that ship them. Encoding runs on
//! the workers into reused buffers; sink I/O runs on threads of its own behind
//! bounded queues, so a slow sink never blocks a receive core.

pub mod json;
pub mod writer;
