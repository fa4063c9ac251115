//! The flowtap engine: workers, flow table, fragment reassembly, offline
//! replay and the configuration. The `flowtap` binary is a thin CLI on top.

pub mod budget;
pub mod config;
pub mod control;
pub mod dedup;
pub mod defrag;
pub mod discover;
pub mod export;
pub mod flow;
pub mod kpi;
pub mod live;
pub mod offline;
pub mod reload;
pub mod service;
pub mod shard;
pub mod stats;
pub mod stream;
pub mod top;
pub mod worker;

pub use config::Config;
