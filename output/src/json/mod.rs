//! JSON encoding into reused buffers: the object writer and the native
//! `flow` record encoder.

mod flow;

pub use flow::encode_flow;
pub(crate) use flow::{endpoint_members, flow_observations};
pub use jsonline::{
    format_rfc3339_micros, push_epoch_secs, push_ip, push_rfc3339_micros, push_rfc3339_micros_no_z,
    push_u64, write_escaped, JsonArray, JsonCursor, JsonWriter, StrBuilder,
};
