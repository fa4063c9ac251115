//! Zero-copy packet views, flow keys, application-layer parsers and the
//! records the engine emits. No I/O and no `unsafe` in this crate.

pub mod event;
pub mod app;
