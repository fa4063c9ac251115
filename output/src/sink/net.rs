//! Connections for network sinks: a TCP stream that notices a closed peer
//! before writing, and a UDP socket. Both resolve their address at connect
//! time, so a collector that moves is found again on reconnect.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use super::SinkError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn resolve(addr: &str) -> Result<Vec<SocketAddr>, SinkError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|_| SinkError::Resolve(addr.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(SinkError::Resolve(addr.to_string()));
    }
    Ok(addrs)
}

/// A TCP connection to a collector; frames are written whole.
pub struct TcpConn {
    addr: String,
    stream: Option<TcpStream>,
    /// Framed bytes of the events being sent, and where each event ends.
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl TcpConn {
    pub fn new(addr: &str) -> TcpConn {
        TcpConn {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::with_capacity(1 << 20),
            ends: Vec::with_capacity(4096),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    pub fn connect(&mut self) -> Result<(), SinkError> {
        if self.stream.is_some() {
            return Ok(());
        }
        let mut last = io::Error::other("no address");
        for a in resolve(&self.addr)? {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
                    self.stream = Some(s);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(SinkError::io("cannot connect to", self.addr.clone(), last))
    }

    pub fn disconnect(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// True when the peer has closed (FIN or RST seen); then the connection
    /// is dropped so the next send reconnects.
    pub fn peer_closed(&mut self) -> bool {
        let Some(s) = &self.stream else {
            return true;
        };
        let mut b = [0u8; 1];
        let closed = if s.set_nonblocking(true).is_ok() {
            let r = match s.peek(&mut b) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
                Err(_) => true,
            };
            let _ = s.set_nonblocking(false);
            r
        } else {
            true
        };
        if closed {
            self.disconnect();
        }
        closed
    }

    /// The frame buffer to fill: call [`TcpConn::end_frame`] after each event.
    pub fn frames(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn clear_frames(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    pub fn end_frame(&mut self) {
        self.ends.push(self.buf.len());
    }

    /// Writes the framed events; on failure returns how many were written
    /// whole and drops the connection.
    pub fn write_frames(&mut self) -> Result<(), (usize, SinkError)> {
        let Some(s) = &mut self.stream else {
            return Err((0, SinkError::Down));
        };
        let mut written = 0usize;
        let mut result = Ok(());
        while written < self.buf.len() {
            match s.write(self.buf.get(written..).unwrap_or(&[])) {
                Ok(0) => {
                    result = Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed",
                    ));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let done = self.ends.iter().take_while(|&&end| end <= written).count();
                self.disconnect();
                Err((done, SinkError::io("cannot send to", self.addr.clone(), e)))
            }
        }
    }
}

/// A UDP socket aimed at one collector.
pub struct UdpConn {
    addr: String,
    sock: Option<UdpSocket>,
}

impl UdpConn {
    pub fn new(addr: &str) -> UdpConn {
        UdpConn {
            addr: addr.to_string(),
            sock: None,
        }
    }

    pub fn connect(&mut self) -> Result<(), SinkError> {
        if self.sock.is_some() {
            return Ok(());
        }
        let target = resolve(&self.addr)?
            .into_iter()
            .next()
            .ok_or_else(|| SinkError::Resolve(self.addr.clone()))?;
        let bind: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let sock = UdpSocket::bind(bind)
            .and_then(|s| s.connect(target).map(|_| s))
            .map_err(|e| SinkError::io("cannot open UDP socket to", self.addr.clone(), e))?;
        let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
        self.sock = Some(sock);
        Ok(())
    }

    pub fn send(&mut self, datagram: &[u8]) -> Result<(), SinkError> {
        let Some(s) = &self.sock else {
            return Err(SinkError::Down);
        };
        s.send(datagram)
            .map(|_| ())
            .map_err(|e| SinkError::io("cannot send to", self.addr.clone(), e))
    }
}
