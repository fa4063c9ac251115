//! Zero-copy packet views, flow keys, application-layer parsers and the
//! records the engine emits. No I/O and no `unsafe` in this crate.

pub mod app;
pub mod event;
pub mod flow;
pub mod packet;
