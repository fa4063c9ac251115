//! Connections for network sinks: a TCP stream (optionally TLS, with
//! rustls) that notices a closed peer before writing and a stalled one by
//! its write timeout, and a UDP socket. Both resolve their address at
//! connect time, so a collector that moves is found again on reconnect.
//!
//! What a TCP sink guarantees (there is no application-level ack in syslog
//! or GELF over TCP, so this is what TCP itself can tell us):
//!
//! - An event counts as sent once the kernel took all of its bytes (for TLS:
//!   once its record was written to the socket). Events are never split
//!   across connections and never sent twice by flowtap.
//! - A collector that stops reading (paused, overloaded) makes the write
//!   block. After `write_timeout` without progress the connection is marked
//!   stalled but kept: the event being written stays committed to it (its
//!   remaining bytes are written first when the collector reads again), and
//!   everything after it is spooled (or held, so that the queue's when-full
//!   policy decides). Nothing is lost or duplicated by a pause.
//! - A collector that dies (killed, crashed, restarted) takes with it the
//!   bytes its kernel had accepted but it had not read, and our own socket
//!   buffer: those events were counted as sent and are lost. Only the one
//!   event committed to a stalled connection that then dies is known to be
//!   lost; it is counted as failed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::batch::{Batch, EventMeta};
use super::spec::{TcpSpec, TlsSpec};
use super::{Partial, SinkError, Transport};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const UDP_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reconnect attempt waits for a stalled connection to take its
/// remaining bytes before it counts as still stalled.
const UNSTALL_WAIT: Duration = Duration::from_millis(100);
/// How long closing at the end of a run waits for the collector to close
/// its side.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Where Debian (and most distributions) keep the system's CA bundle.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

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

/// A TLS client set up once per sink: trusted CAs, optional client
/// certificate, and the name the collector's certificate must carry.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

fn tls_setup(what: &str, path: &Path, why: impl std::fmt::Display) -> SinkError {
    SinkError::TlsSetup(format!("{what} {}: {why}", path.display()))
}

impl TlsClient {
    /// Reads the PEM files of `spec`; `addr` gives the default server name.
    pub fn new(spec: &TlsSpec, addr: &str) -> Result<TlsClient, SinkError> {
        let ca = spec.ca.clone().unwrap_or_else(|| SYSTEM_CA_BUNDLE.into());
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&ca)
            .map_err(|e| tls_setup("cannot read CA file", &ca, e))?;
        for c in certs {
            let c = c.map_err(|e| tls_setup("bad PEM in CA file", &ca, e))?;
            roots
                .add(c)
                .map_err(|e| tls_setup("bad CA certificate in", &ca, e))?;
        }
        if roots.is_empty() {
            return Err(tls_setup("no certificate in CA file", &ca, "empty"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SinkError::TlsSetup(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&spec.cert, &spec.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| tls_setup("cannot read client certificate", cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| tls_setup("bad PEM in client certificate", cert, e))?;
                if chain.is_empty() {
                    return Err(tls_setup("no certificate in", cert, "empty"));
                }
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| tls_setup("cannot read client key", key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| tls_setup("client certificate and key do not fit", cert, e))?
            }
            _ => builder.with_no_client_auth(),
        };
        let name = match &spec.server_name {
            Some(n) => n.clone(),
            None => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            }
        };
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| SinkError::TlsSetup(format!("`{name}` is not a valid server name")))?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// Whether the socket becomes writable (or errored, which the next write
/// reports) within `wait`.
fn writable(sock: &TcpStream, wait: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(sock, PollFlags::OUT)];
    let timeout = Timespec {
        tv_sec: wait.as_secs() as i64,
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
}

/// Why a write stopped: the collector stalled (nothing taken for the write
/// timeout) or the connection broke.
fn is_stall(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The rustls error inside an I/O error from a TLS connection, if any.
fn tls_reason(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .map(ToString::to_string)
}

/// One open connection: the socket and, for TLS, the rustls state.
struct Conn {
    sock: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

impl Conn {
    /// Hands bytes to the connection, returns how many it took. TLS: they
    /// are encrypted into rustls's queue; [`Conn::flush`] writes it out.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => (&self.sock).write(buf),
            Some(t) => t.writer().write(buf),
        }
    }

    /// TLS: writes out what rustls has queued.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(t) = &mut self.tls {
            while t.wants_write() {
                t.write_tls(&mut self.sock)?;
            }
        }
        Ok(())
    }

    /// Whether TLS records are still queued in rustls.
    fn queued(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Reads (and discards) what the peer sends until it closes or
    /// `deadline` passes; true when done either way.
    fn drain_until_closed(&mut self, deadline: std::time::Instant) -> bool {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || self.sock.set_read_timeout(Some(left)).is_err() {
            return true;
        }
        let mut junk = [0u8; 4096];
        let r = match &mut self.tls {
            None => (&self.sock).read(&mut junk),
            Some(t) => t.read_tls(&mut self.sock).inspect(|_| {
                let _ = t.process_new_packets();
                while matches!(t.reader().read(&mut junk), Ok(n) if n > 0) {}
            }),
        };
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::Interrupted,
        }
    }

    /// Reads what the peer sent without blocking; true once it closed
    /// (FIN, RST, TLS close_notify or a TLS error).
    fn peer_closed(&mut self) -> bool {
        if self.sock.set_nonblocking(true).is_err() {
            return true;
        }
        let closed = match &mut self.tls {
            None => {
                let mut b = [0u8; 1];
                match self.sock.peek(&mut b) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != io::ErrorKind::WouldBlock,
                }
            }
            Some(t) => loop {
                match t.read_tls(&mut self.sock) {
                    Ok(0) => break true,
                    Ok(_) => match t.process_new_packets() {
                        Ok(st) if st.peer_has_closed() => break true,
                        Ok(_) => {
                            // Collectors send nothing we use (session tickets
                            // are handled by rustls); discard any plaintext.
                            let mut junk = [0u8; 1024];
                            while matches!(t.reader().read(&mut junk), Ok(n) if n > 0) {}
                        }
                        Err(_) => break true,
                    },
                    Err(e) => break e.kind() != io::ErrorKind::WouldBlock,
                }
            },
        };
        let _ = self.sock.set_nonblocking(false);
        closed
    }
}

/// A TCP (or TLS over TCP) connection to a collector; frames are written
/// whole, see the module documentation for what is guaranteed.
pub struct TcpConn {
    addr: String,
    tls: Option<TlsClient>,
    write_timeout: Duration,
    send_buffer: Option<usize>,
    conn: Option<Conn>,
    /// Set when a write timed out: the connection is kept, `tail` (the rest
    /// of the one event committed to it) goes out before anything else.
    stalled: bool,
    tail: Vec<u8>,
    /// Events known lost since the last [`TcpConn::take_lost`].
    lost: u64,
    /// Framed bytes of the events being sent, and where each event ends.
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl TcpConn {
    /// A plain TCP connection with the default settings.
    pub fn new(addr: &str) -> TcpConn {
        TcpConn::build(addr, None, TcpSpec::default().write_timeout)
    }

    /// A connection with `spec`'s settings; reads the TLS files now, so a
    /// bad one stops the start.
    pub fn with(addr: &str, spec: &TcpSpec) -> Result<TcpConn, SinkError> {
        let tls = match &spec.tls {
            Some(t) => Some(TlsClient::new(t, addr)?),
            None => None,
        };
        let mut c = TcpConn::build(addr, tls, spec.write_timeout);
        c.send_buffer = spec.send_buffer;
        Ok(c)
    }

    fn build(addr: &str, tls: Option<TlsClient>, write_timeout: Duration) -> TcpConn {
        TcpConn {
            addr: addr.to_string(),
            tls,
            write_timeout,
            send_buffer: None,
            conn: None,
            stalled: false,
            tail: Vec::new(),
            lost: 0,
            buf: Vec::with_capacity(1 << 20),
            ends: Vec::with_capacity(4096),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Events known lost (committed to a connection that died stalled).
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// Makes the connection ready to take events: finishes a stalled one
    /// (error while it still takes nothing), else opens a new one.
    pub fn connect(&mut self) -> Result<(), SinkError> {
        if self.conn.is_some() && self.stalled {
            self.unstall()?;
        }
        if self.conn.is_some() {
            return Ok(());
        }
        let mut last = io::Error::other("no address");
        for a in resolve(&self.addr)? {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_write_timeout(Some(self.write_timeout));
                    if let Some(b) = self.send_buffer {
                        // The kernel doubles it for its bookkeeping.
                        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&s, b);
                    }
                    let tls = match &self.tls {
                        Some(t) => Some(self.handshake(t, &s)?),
                        None => None,
                    };
                    self.conn = Some(Conn { sock: s, tls });
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(SinkError::io("cannot connect to", self.addr.clone(), last))
    }

    fn handshake(&self, t: &TlsClient, s: &TcpStream) -> Result<Box<ClientConnection>, SinkError> {
        let fail = |why: String| SinkError::Tls {
            target: self.addr.clone(),
            why,
        };
        let mut c = ClientConnection::new(Arc::clone(&t.config), t.server_name.clone())
            .map_err(|e| fail(e.to_string()))?;
        // Events are flushed one at a time (see write_frames): no cap needed.
        c.set_buffer_limit(None);
        let _ = s.set_read_timeout(Some(CONNECT_TIMEOUT));
        let mut sock = s;
        while c.is_handshaking() {
            if let Err(e) = c.complete_io(&mut sock) {
                return Err(fail(tls_reason(&e).unwrap_or_else(|| e.to_string())));
            }
        }
        let _ = s.set_read_timeout(None);
        Ok(Box::new(c))
    }

    /// Tries to write the stalled event's remaining bytes for a moment.
    fn unstall(&mut self) -> Result<(), SinkError> {
        self.unstall_for(UNSTALL_WAIT.min(self.write_timeout))
    }

    fn unstall_for(&mut self, wait: Duration) -> Result<(), SinkError> {
        let Some(c) = &mut self.conn else {
            self.stalled = false;
            return Ok(());
        };
        if c.peer_closed() {
            self.drop_conn();
            return Ok(());
        }
        // A few bytes of room is not a collector that reads again: wait until
        // the kernel reports the socket writable (for TCP, a third of the
        // send buffer free), else it is still stalled.
        if !writable(&c.sock, wait) {
            return Err(self.stall_error());
        }
        let _ = c.sock.set_write_timeout(Some(wait));
        let mut r = Ok(());
        while !self.tail.is_empty() {
            match c.write(&self.tail) {
                Ok(0) => {
                    r = Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed",
                    ));
                    break;
                }
                Ok(n) => {
                    self.tail.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        let r = r.and_then(|()| c.flush());
        let _ = c.sock.set_write_timeout(Some(self.write_timeout));
        match r {
            Ok(()) => {
                self.stalled = false;
                Ok(())
            }
            Err(e) if is_stall(&e) => Err(self.stall_error()),
            Err(_) => {
                self.drop_conn();
                Ok(())
            }
        }
    }

    fn stall_error(&self) -> SinkError {
        SinkError::Stalled {
            target: self.addr.clone(),
            ms: self.write_timeout.as_millis() as u64,
        }
    }

    /// Drops the connection; an event still committed to it is lost.
    fn drop_conn(&mut self) {
        if let Some(c) = self.conn.take() {
            if self.stalled && (!self.tail.is_empty() || c.queued()) {
                self.lost += 1;
            }
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
        }
        self.stalled = false;
        self.tail.clear();
    }

    /// Closes at the end of a run: sends our end (TLS close_notify, then
    /// FIN) and waits up to [`CLOSE_WAIT`] for the collector to close its
    /// side. Collectors close once they have read our FIN, so this is the one
    /// moment TCP confirms that everything sent was read, and leaving before
    /// it (or with unread bytes from the peer, which makes the kernel send
    /// RST) could cut off the last events.
    pub fn disconnect(&mut self) {
        if self.stalled {
            // Give a stalled collector one write timeout to take the rest.
            let _ = self.unstall_for(self.write_timeout);
        }
        if let Some(c) = &mut self.conn {
            if !self.stalled {
                if let Some(t) = &mut c.tls {
                    t.send_close_notify();
                    let _ = c.flush();
                }
                let _ = c.sock.shutdown(std::net::Shutdown::Write);
                let deadline = std::time::Instant::now() + CLOSE_WAIT;
                while !c.drain_until_closed(deadline) {}
            }
        }
        self.drop_conn();
    }

    /// True when the peer has closed (FIN, RST, TLS close_notify); then the
    /// connection is dropped so the next send reconnects.
    pub fn peer_closed(&mut self) -> bool {
        let Some(c) = &mut self.conn else {
            return true;
        };
        let closed = c.peer_closed();
        if closed {
            self.drop_conn();
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

    /// Writes the framed events. On failure returns how many events the
    /// connection took (their count from the first): a stall keeps the
    /// connection with the event it was writing committed to it; any other
    /// error drops it, and the event it was writing is not counted.
    pub fn write_frames(&mut self) -> Result<(), (usize, SinkError)> {
        if self.stalled {
            return Err((0, self.stall_error()));
        }
        let Some(c) = &mut self.conn else {
            return Err((0, SinkError::Down));
        };
        let tls = c.tls.is_some();
        let mut written = 0usize;
        // Plain TCP: the whole buffer in as few writes as the kernel allows.
        // TLS: one event at a time, written out before the next is
        // encrypted, so that at most one event is ever queued in rustls.
        let mut frame = 0usize;
        let mut result = Ok(());
        while written < self.buf.len() {
            let until = if tls {
                self.ends.get(frame).copied().unwrap_or(self.buf.len())
            } else {
                self.buf.len()
            };
            match c.write(self.buf.get(written..until).unwrap_or(&[])) {
                Ok(0) => {
                    result = Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed",
                    ));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            if tls && written == until {
                frame += 1;
                if let Err(e) = c.flush() {
                    result = Err(e);
                    break;
                }
            }
        }
        let Err(e) = result else {
            return Ok(());
        };
        let whole = self.ends.iter().take_while(|&&end| end <= written).count();
        if is_stall(&e) {
            // Keep the connection; the event in the middle of its write (plain:
            // bytes left of it; TLS: its record still queued in rustls) stays
            // committed to it.
            let mut taken = whole;
            if let Some(&end) = self.ends.get(whole) {
                if written > whole.checked_sub(1).map_or(0, |i| self.ends[i]) {
                    self.tail.clear();
                    self.tail
                        .extend_from_slice(self.buf.get(written..end).unwrap_or(&[]));
                    taken += 1;
                }
            }
            self.stalled = true;
            return Err((taken, self.stall_error()));
        }
        // Broken: what the kernel took whole counts; TLS: the last event
        // encrypted may not have left rustls, it is sent again.
        let done = if tls && c.queued() {
            whole.saturating_sub(1)
        } else {
            whole
        };
        let why = tls_reason(&e);
        self.drop_conn();
        Err((
            done,
            match why {
                Some(why) => SinkError::Tls {
                    target: self.addr.clone(),
                    why,
                },
                None => SinkError::io("cannot send to", self.addr.clone(), e),
            },
        ))
    }
}

/// How a stream sink frames one event (syslog: octet counting; GELF: NUL).
pub trait Framing: Send {
    fn frame(&mut self, out: &mut Vec<u8>, meta: &EventMeta, line: &[u8]);
}

/// A sink that writes framed events to a TCP (or TLS) connection; syslog
/// and GELF over TCP differ only in their [`Framing`].
pub struct StreamSink<F> {
    conn: TcpConn,
    framing: F,
}

impl<F: Framing> StreamSink<F> {
    pub fn with_framing(conn: TcpConn, framing: F) -> StreamSink<F> {
        StreamSink { conn, framing }
    }
}

impl<F: Framing> Transport for StreamSink<F> {
    fn connect(&mut self) -> Result<(), SinkError> {
        self.conn.connect()
    }

    fn peer_closed(&mut self) -> bool {
        self.conn.peer_closed()
    }

    fn take_lost(&mut self) -> u64 {
        self.conn.take_lost()
    }

    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        self.conn.clear_frames();
        for i in from..batch.len() {
            let Some((m, line)) = batch.event(i) else {
                break;
            };
            self.framing.frame(self.conn.frames(), m, line);
            self.conn.end_frame();
        }
        self.conn
            .write_frames()
            .map_err(|(sent, error)| Partial { sent, error })
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.conn.disconnect();
        Ok(())
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
        let _ = sock.set_write_timeout(Some(UDP_WRITE_TIMEOUT));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn frame(n: usize) -> Vec<u8> {
        let mut f = format!("{n:08} ").into_bytes();
        f.resize(50_000, b'a' + (n % 26) as u8);
        f.push(b'\n');
        f
    }

    #[test]
    fn tls_setup_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("flowtap-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        for (ca, want) in [
            (dir.join("missing.pem"), "cannot read CA file"),
            (empty.clone(), "no certificate in CA file"),
        ] {
            let spec = TlsSpec {
                ca: Some(ca.clone()),
                ..TlsSpec::default()
            };
            let e = TlsClient::new(&spec, "127.0.0.1:6514")
                .err()
                .expect("an error")
                .to_string();
            assert!(
                e.starts_with("TLS setup: ")
                    && e.contains(want)
                    && e.contains(&*ca.to_string_lossy()),
                "{e}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stalled_connection_keeps_its_event_and_finishes_it_when_the_peer_reads() {
        let l = TcpListener::bind("127.0.0.1:0").expect("listen");
        let addr = l.local_addr().expect("addr").to_string();
        let spec = TcpSpec {
            tls: None,
            write_timeout: Duration::from_millis(200),
            send_buffer: None,
        };
        let mut c = TcpConn::with(&addr, &spec).expect("conn");
        c.connect().expect("connect");
        let (mut peer, _) = l.accept().expect("accept");
        // The peer reads nothing: write batches of 20 frames until one stalls.
        let mut next = 0usize;
        let stalled_at = loop {
            assert!(next < 4000, "never stalled");
            c.clear_frames();
            for i in next..next + 20 {
                c.frames().extend_from_slice(&frame(i));
                c.end_frame();
            }
            match c.write_frames() {
                Ok(()) => next += 20,
                Err((taken, SinkError::Stalled { .. })) => {
                    next += taken;
                    break next;
                }
                Err((_, e)) => panic!("{e}"),
            }
        };
        // Still not reading: the connection stays stalled, nothing is lost.
        assert!(matches!(c.connect(), Err(SinkError::Stalled { .. })));
        assert!(matches!(
            c.write_frames(),
            Err((0, SinkError::Stalled { .. }))
        ));
        assert_eq!(c.take_lost(), 0);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).expect("read");
            got
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while c.connect().is_err() {
            assert!(std::time::Instant::now() < deadline, "never drained");
        }
        c.disconnect();
        let got = reader.join().expect("reader");
        let want: Vec<u8> = (0..stalled_at).flat_map(frame).collect();
        assert_eq!(got.len(), want.len(), "every taken frame, whole, once");
        assert!(got == want);
        assert_eq!(c.take_lost(), 0);
    }
}
