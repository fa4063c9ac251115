//! GELF transports. UDP: one message per datagram, optionally gzip- or
//! zlib-compressed, chunked when larger than the chunk size (magic 0x1e 0x0f,
//! 8-byte message id, sequence number, sequence count; at most 128 chunks,
//! larger messages are counted as failed). TCP (optionally TLS): messages
//! end with a NUL byte, uncompressed (the GELF TCP framing).

use std::io::Write;

use super::batch::{Batch, EventMeta};
use super::net::{Framing, StreamSink, TcpConn, UdpConn};
use super::spec::{GelfCompression, TcpSpec};
use super::{Partial, SinkError, Transport};

const MAX_CHUNKS: usize = 128;
const CHUNK_HEADER: usize = 12;

pub struct GelfUdp {
    conn: UdpConn,
    compress: GelfCompression,
    chunk_size: usize,
    packed: Vec<u8>,
    datagram: Vec<u8>,
    next_id: u64,
}

impl GelfUdp {
    pub fn new(addr: &str, compress: GelfCompression, chunk_size: usize) -> GelfUdp {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        GelfUdp {
            conn: UdpConn::new(addr),
            compress,
            chunk_size: chunk_size.clamp(CHUNK_HEADER + 1, 8192),
            packed: Vec::with_capacity(8192),
            datagram: Vec::with_capacity(8192),
            next_id: seed,
        }
    }

    /// Compresses `msg` into `self.packed` (or copies it).
    fn pack(&mut self, msg: &[u8]) -> Result<(), SinkError> {
        self.packed.clear();
        let wrap = |e| SinkError::io("cannot compress for", "GELF", e);
        match self.compress {
            GelfCompression::None => self.packed.extend_from_slice(msg),
            GelfCompression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    std::mem::take(&mut self.packed),
                    flate2::Compression::fast(),
                );
                enc.write_all(msg).map_err(wrap)?;
                self.packed = enc.finish().map_err(wrap)?;
            }
            GelfCompression::Zlib => {
                let mut enc = flate2::write::ZlibEncoder::new(
                    std::mem::take(&mut self.packed),
                    flate2::Compression::fast(),
                );
                enc.write_all(msg).map_err(wrap)?;
                self.packed = enc.finish().map_err(wrap)?;
            }
        }
        Ok(())
    }

    fn send_one(&mut self, msg: &[u8]) -> Result<(), SinkError> {
        self.pack(msg)?;
        if self.packed.len() <= self.chunk_size {
            return self.conn.send(&self.packed);
        }
        let per = self.chunk_size - CHUNK_HEADER;
        let count = self.packed.len().div_ceil(per);
        if count > MAX_CHUNKS {
            return Err(SinkError::TooLarge(self.packed.len()));
        }
        self.next_id = self.next_id.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let id = self.next_id.to_be_bytes();
        for (seq, part) in self.packed.chunks(per).enumerate() {
            self.datagram.clear();
            self.datagram.extend_from_slice(&[0x1e, 0x0f]);
            self.datagram.extend_from_slice(&id);
            self.datagram.push(seq as u8);
            self.datagram.push(count as u8);
            self.datagram.extend_from_slice(part);
            self.conn.send(&self.datagram)?;
        }
        Ok(())
    }
}

impl Transport for GelfUdp {
    fn connect(&mut self) -> Result<(), SinkError> {
        self.conn.connect()
    }

    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        for i in from..batch.len() {
            let Some((_, line)) = batch.event(i) else {
                break;
            };
            self.send_one(line).map_err(|error| Partial {
                sent: i - from,
                error,
            })?;
        }
        Ok(())
    }

    fn lossy(&self) -> bool {
        true
    }
}

/// GELF TCP framing: the message, then a NUL byte.
pub struct NulDelimited;

impl Framing for NulDelimited {
    fn frame(&mut self, out: &mut Vec<u8>, _: &EventMeta, line: &[u8]) {
        out.extend_from_slice(line);
        out.push(0);
    }
}

/// GELF over TCP or TLS.
pub type GelfTcp = StreamSink<NulDelimited>;

impl GelfTcp {
    pub fn new(addr: &str, tcp: &TcpSpec) -> Result<GelfTcp, SinkError> {
        Ok(StreamSink::with_framing(
            TcpConn::with(addr, tcp)?,
            NulDelimited,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use std::io::Read;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn chunks_reassemble_and_decompress() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let addr = rx.local_addr().expect("addr").to_string();
        let mut g = GelfUdp::new(&addr, GelfCompression::Zlib, 600);
        g.connect().expect("connect");
        // incompressible-ish payload well over one chunk
        let mut msg = b"{\"version\":\"1.1\",\"short_message\":\"".to_vec();
        let mut x: u32 = 7;
        for _ in 0..6000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            msg.push(b'a' + (x >> 16) as u8 % 26);
        }
        msg.extend_from_slice(b"\"}");
        let mut b = Batch::default();
        b.bytes.extend_from_slice(&msg);
        b.bytes.push(b'\n');
        b.commit(EventType::Flow, 0, b"");
        g.send(&b, 0).expect("send");
        let mut parts: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut count;
        loop {
            let mut d = [0u8; 2048];
            let n = rx.recv(&mut d).expect("recv");
            assert_eq!(&d[..2], &[0x1e, 0x0f]);
            assert!(n <= 600);
            count = d[11];
            parts.push((d[10], d[12..n].to_vec()));
            if parts.len() == count as usize {
                break;
            }
        }
        assert!(count > 1);
        parts.sort();
        let packed: Vec<u8> = parts.into_iter().flat_map(|(_, p)| p).collect();
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .expect("zlib");
        assert_eq!(out, msg);
    }
}
