//! Native flowtap JSON (one object per line).

mod flow;
mod writer;

pub use flow::encode_flow;
pub use writer::{format_rfc3339_micros, JsonWriter};
