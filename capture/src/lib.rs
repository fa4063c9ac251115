//! Packet sources: capture files (pcap, pcapng), and live sources (AF_XDP,
//! AF_PACKET). Every source hands packets to its caller in batches through
//! [`PacketSource::poll_batch`], borrowing the bytes for the duration of the
//! callback only, so a live source can return its frames to the kernel right
//! after the worker has run the packet to completion.

pub mod file;
pub mod source;

pub mod afpacket;
pub mod afxdp;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod gen;
mod sys;
pub mod worker;

pub use file::{CaptureFile, FileError, FileFormat};
pub use source::{LinkType, Packet, PacketSource, Poll, SourceStats};
