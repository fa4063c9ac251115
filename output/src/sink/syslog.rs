//! Syslog RFC 5424 over UDP (one message per datagram) and TCP (octet
//! counting, RFC 6587 3.4.1). Each event is one message:
//!
//! `<134>1 2014-07-18T12:49:30.592064Z probe-1 flowtap 4242 flow - {"timestamp":...}`
//!
//! PRI is local0.info; MSGID is the event type; the MSG is the event in the
//! sink's schema.

use super::batch::{Batch, EventMeta};
use super::net::{Framing, StreamSink, TcpConn, UdpConn};
use super::spec::TcpSpec;
use super::{Partial, SinkError, Transport};
use crate::json::{push_rfc3339_micros, push_u64};

/// local0 (16) * 8 + informational (6)
const PRI: u64 = 134;

/// Header fields fixed for the life of the sink.
pub struct SyslogHeader {
    host: String,
    pid: u32,
}

impl SyslogHeader {
    pub fn new(host: &str) -> SyslogHeader {
        // HOSTNAME is 1*255 PRINTUSASCII; anything else becomes '-'.
        let host: String = host
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        SyslogHeader {
            host: if host.is_empty() { "-".into() } else { host },
            pid: std::process::id(),
        }
    }

    /// Appends the RFC 5424 message for one event.
    pub fn push_message(&self, buf: &mut Vec<u8>, m: &EventMeta, line: &[u8]) {
        buf.push(b'<');
        push_u64(buf, PRI);
        buf.extend_from_slice(b">1 ");
        push_rfc3339_micros(buf, m.ts_ns);
        buf.push(b' ');
        buf.extend_from_slice(self.host.as_bytes());
        buf.extend_from_slice(b" flowtap ");
        push_u64(buf, u64::from(self.pid));
        buf.push(b' ');
        buf.extend_from_slice(m.kind.as_str().as_bytes());
        buf.extend_from_slice(b" - ");
        buf.extend_from_slice(line);
    }
}

pub struct SyslogUdp {
    conn: UdpConn,
    header: SyslogHeader,
    msg: Vec<u8>,
}

impl SyslogUdp {
    pub fn new(addr: &str, host: &str) -> SyslogUdp {
        SyslogUdp {
            conn: UdpConn::new(addr),
            header: SyslogHeader::new(host),
            msg: Vec::with_capacity(8192),
        }
    }
}

impl Transport for SyslogUdp {
    fn connect(&mut self) -> Result<(), SinkError> {
        self.conn.connect()
    }

    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        for i in from..batch.len() {
            let Some((m, line)) = batch.event(i) else {
                break;
            };
            self.msg.clear();
            self.header.push_message(&mut self.msg, m, line);
            self.conn.send(&self.msg).map_err(|error| Partial {
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

/// RFC 5424 messages with octet counting (RFC 6587 3.4.1): `LEN SP MSG`.
pub struct OctetCounted {
    header: SyslogHeader,
    msg: Vec<u8>,
}

impl Framing for OctetCounted {
    fn frame(&mut self, out: &mut Vec<u8>, m: &EventMeta, line: &[u8]) {
        self.msg.clear();
        self.header.push_message(&mut self.msg, m, line);
        push_u64(out, self.msg.len() as u64);
        out.push(b' ');
        out.extend_from_slice(&self.msg);
    }
}

/// Syslog over TCP or TLS.
pub type SyslogTcp = StreamSink<OctetCounted>;

impl SyslogTcp {
    pub fn new(addr: &str, tcp: &TcpSpec, host: &str) -> Result<SyslogTcp, SinkError> {
        Ok(StreamSink::with_framing(
            TcpConn::with(addr, tcp)?,
            OctetCounted {
                header: SyslogHeader::new(host),
                msg: Vec::with_capacity(8192),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    #[test]
    fn rfc5424_header() {
        let h = SyslogHeader {
            host: "probe-1".into(),
            pid: 42,
        };
        let m = EventMeta::new(
            0,
            EventType::App(dissect::app::AppProto::Dns),
            1_405_687_770_592_064_000,
            b"",
        );
        let mut out = Vec::new();
        h.push_message(&mut out, &m, b"{\"a\":1}");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "<134>1 2014-07-18T12:49:30.592064Z probe-1 flowtap 42 dns - {\"a\":1}"
        );
        assert_eq!(SyslogHeader::new("my host\u{e9}").host, "myhost");
    }
}
