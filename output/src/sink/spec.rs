//! What a sink is: kind and address, schema, event types, batching, queue,
//! when-full policy and spool. Built from the config file or from an
//! `--output` URL.

use std::path::PathBuf;
use std::time::Duration;

use crate::event::{EventType, TypeSet};
use crate::perms::FilePerms;
use crate::schema::Schema;

/// An invalid sink description; the message names the offending part.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what}: {why}")]
pub struct SpecError {
    pub what: String,
    pub why: String,
}

fn err(what: &str, why: impl Into<String>) -> SpecError {
    SpecError {
        what: what.to_string(),
        why: why.into(),
    }
}

/// Compression of finished files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCompression {
    None,
    Gzip,
    /// Zstandard: several times faster than gzip at a better ratio on JSON
    /// lines, so rotating a large file holds the sink's thread far less.
    Zstd,
}

impl FileCompression {
    /// The suffix a compressed rotated file gets.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            FileCompression::None => None,
            FileCompression::Gzip => Some(".gz"),
            FileCompression::Zstd => Some(".zst"),
        }
    }
}

/// A JSON-lines file, rotated by size and/or age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub path: PathBuf,
    /// Rotate when the current file reaches this size (0 = never).
    pub rotate_bytes: u64,
    /// Rotate when the current file is this old (zero = never).
    pub rotate_age: Duration,
    pub compress: FileCompression,
    /// Rotated files kept (0 = all).
    pub keep_files: usize,
    /// Bytes of rotated files kept (0 = no limit).
    pub keep_bytes: u64,
    /// Mode and group of the files it creates (default 0640).
    pub perms: FilePerms,
}

impl FileSpec {
    pub fn plain(path: PathBuf) -> FileSpec {
        FileSpec {
            path,
            rotate_bytes: 0,
            rotate_age: Duration::ZERO,
            compress: FileCompression::None,
            keep_files: 0,
            keep_bytes: 0,
            perms: FilePerms::default(),
        }
    }
}

/// Compression of GELF UDP datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GelfCompression {
    None,
    Gzip,
    Zlib,
}

/// TLS for a TCP sink (rustls).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TlsSpec {
    /// PEM file of the CA certificate(s) the collector's certificate must
    /// chain to (`None`: the system's bundle, /etc/ssl/certs/ca-certificates.crt).
    pub ca: Option<PathBuf>,
    /// PEM client certificate (chain) and its private key, for collectors
    /// that authenticate their clients; both or neither.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Name the collector's certificate must carry (default: the host of
    /// the address).
    pub server_name: Option<String>,
}

/// Connection settings of a TCP sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSpec {
    pub tls: Option<TlsSpec>,
    /// A write that makes no progress for this long means the collector
    /// stalled: the sink stops feeding the connection (spooling or holding
    /// what follows) until it drains.
    pub write_timeout: Duration,
    /// SO_SNDBUF of the connection (`None`: the kernel's autotuning, up to
    /// net.ipv4.tcp_wmem's max). Bytes in it when a collector dies are lost
    /// although counted as sent; a smaller buffer bounds that loss and makes
    /// a stall show sooner.
    pub send_buffer: Option<usize>,
}

impl Default for TcpSpec {
    fn default() -> Self {
        TcpSpec {
            tls: None,
            write_timeout: Duration::from_secs(10),
            send_buffer: None,
        }
    }
}

impl TcpSpec {
    /// Reads `tls`, `ca`, `cert`, `key`, `server_name`, `write_timeout_ms`
    /// and `send_buffer` from URL options.
    fn from_opts(opts: &[(String, String)]) -> Result<TcpSpec, SpecError> {
        let get = |k: &str| opts.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let mut t = TcpSpec::default();
        let tls_on = match get("tls") {
            None | Some("false" | "0" | "no" | "off") => false,
            Some("true" | "1" | "yes" | "on" | "") => true,
            Some(v) => return Err(err("tls", format!("`{v}` (expected true or false)"))),
        };
        let tls = TlsSpec {
            ca: get("ca").map(PathBuf::from),
            cert: get("cert").map(PathBuf::from),
            key: get("key").map(PathBuf::from),
            server_name: get("server_name").map(String::from),
        };
        if tls_on {
            t.tls = Some(tls);
        } else if tls != TlsSpec::default() {
            let k = ["ca", "cert", "key", "server_name"]
                .into_iter()
                .find(|k| get(k).is_some())
                .unwrap_or("tls");
            return Err(err(k, "needs tls=true"));
        }
        if let Some(v) = get("write_timeout_ms") {
            t.write_timeout = Duration::from_millis(parse_num("write_timeout_ms", v)?);
        }
        if let Some(v) = get("send_buffer") {
            t.send_buffer = Some(parse_size("send_buffer", v)? as usize);
        }
        t.validate()?;
        Ok(t)
    }

    /// Checks the combination; the error names the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.write_timeout.is_zero() {
            return Err(err("write_timeout_ms", "must be at least 1"));
        }
        if self
            .send_buffer
            .is_some_and(|b| !(4096..=1 << 30).contains(&b))
        {
            return Err(err("send_buffer", "must be within 4k..=1G"));
        }
        if let Some(t) = &self.tls {
            match (&t.cert, &t.key) {
                (Some(_), None) => return Err(err("key", "a client cert needs its key")),
                (None, Some(_)) => return Err(err("cert", "a client key needs its cert")),
                _ => {}
            }
            if t.server_name.as_deref() == Some("") {
                return Err(err("server_name", "empty"));
            }
        }
        Ok(())
    }
}

/// Where a sink sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkKind {
    Stdout,
    File(FileSpec),
    GelfUdp {
        addr: String,
        compress: GelfCompression,
        /// Largest datagram, chunk header included (GELF: at most 8192).
        chunk_size: usize,
    },
    GelfTcp {
        addr: String,
        tcp: TcpSpec,
    },
    SyslogUdp {
        addr: String,
    },
    SyslogTcp {
        addr: String,
        tcp: TcpSpec,
    },
    Kafka {
        brokers: String,
        /// Topic; `{type}` is replaced by the event type (topic per type).
        topic: String,
        /// Extra librdkafka properties (security.protocol, sasl.*, ssl.*, ...).
        properties: Vec<(String, String)>,
    },
}

impl SinkKind {
    pub fn label(&self) -> &'static str {
        match self {
            SinkKind::Stdout => "stdout",
            SinkKind::File(_) => "file",
            SinkKind::GelfUdp { .. } => "gelf+udp",
            SinkKind::GelfTcp { .. } => "gelf+tcp",
            SinkKind::SyslogUdp { .. } => "syslog+udp",
            SinkKind::SyslogTcp { .. } => "syslog+tcp",
            SinkKind::Kafka { .. } => "kafka",
        }
    }

    fn is_network(&self) -> bool {
        !matches!(self, SinkKind::Stdout | SinkKind::File(_))
    }

    fn default_schema(&self) -> Schema {
        match self {
            SinkKind::GelfUdp { .. } | SinkKind::GelfTcp { .. } => Schema::Gelf,
            _ => Schema::Native,
        }
    }
}

/// A disk spool that absorbs an outage of a network sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolSpec {
    pub dir: PathBuf,
    /// Spool size cap; batches past it are dropped and counted.
    pub max_bytes: u64,
    /// Mode and group of the spool file and the directories it creates.
    pub perms: FilePerms,
}

/// One sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    /// Name in metrics and stats (defaults to the kind and index).
    pub name: String,
    pub kind: SinkKind,
    pub schema: Schema,
    /// Event types this sink takes.
    pub types: TypeSet,
    /// A worker hands its batch over at this many events ...
    pub batch_events: usize,
    /// ... or this many bytes ...
    pub batch_bytes: usize,
    /// ... or when its oldest event is this old.
    pub batch_age: Duration,
    /// Batches queued between the workers and the sink thread.
    pub queue_batches: usize,
    /// `None`: the run's default (offline replay waits, live capture drops).
    pub when_full: Option<WhenFull>,
    pub spool: Option<SpoolSpec>,
}

impl SinkSpec {
    pub fn new(kind: SinkKind) -> SinkSpec {
        SinkSpec {
            name: kind.label().to_string(),
            schema: kind.default_schema(),
            kind,
            types: TypeSet::ALL,
            batch_events: 4096,
            batch_bytes: 256 << 10,
            batch_age: Duration::from_millis(500),
            queue_batches: 64,
            when_full: None,
            spool: None,
        }
    }

    /// Checks the combination; the error names the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.batch_events == 0 {
            return Err(err("batch_events", "must be at least 1"));
        }
        if self.batch_bytes == 0 {
            return Err(err("batch_bytes", "must be at least 1"));
        }
        if self.queue_batches == 0 {
            return Err(err("queue_batches", "must be at least 1"));
        }
        if self.types.is_empty() {
            return Err(err("types", "no event type selected"));
        }
        if matches!(
            self.kind,
            SinkKind::GelfUdp { .. } | SinkKind::GelfTcp { .. }
        ) && self.schema != Schema::Gelf
        {
            return Err(err("schema", "a GELF sink needs schema gelf"));
        }
        if self.schema == Schema::Gelf
            && !matches!(
                self.kind,
                SinkKind::GelfUdp { .. }
                    | SinkKind::GelfTcp { .. }
                    | SinkKind::File(_)
                    | SinkKind::Stdout
                    | SinkKind::Kafka { .. }
            )
        {
            return Err(err(
                "schema",
                "gelf is for GELF, file, stdout and kafka sinks",
            ));
        }
        let supported: Vec<EventType> = self
            .types
            .iter()
            .filter(|t| self.schema.supports(*t))
            .collect();
        if supported.is_empty() {
            return Err(err(
                "types",
                format!(
                    "schema {} has none of the types {}",
                    self.schema.as_str(),
                    self.types
                ),
            ));
        }
        if self.spool.is_some() && !self.kind.is_network() {
            return Err(err("spool", "only network sinks spool"));
        }
        if let Some(s) = &self.spool {
            if s.max_bytes == 0 {
                return Err(err("spool_bytes", "must be at least 1"));
            }
        }
        match &self.kind {
            SinkKind::GelfUdp { chunk_size, .. } if !(512..=8192).contains(chunk_size) => {
                return Err(err("chunk_size", "must be within 512..=8192"))
            }
            SinkKind::File(f) if f.path.as_os_str().is_empty() => {
                return Err(err("path", "empty file path"))
            }
            SinkKind::GelfTcp { tcp, .. } | SinkKind::SyslogTcp { tcp, .. } => tcp.validate()?,
            SinkKind::Kafka { topic, .. } if topic.is_empty() => {
                return Err(err("topic", "empty Kafka topic"))
            }
            _ => {}
        }
        Ok(())
    }

    /// Parses an `--output` value: `-`, a path, or a sink URL with options
    /// (`file:///p?rotate_bytes=..`, `gelf+udp://h:p`, `gelf+tcp://h:p`,
    /// `syslog+udp://h:p`, `syslog+tcp://h:p`, `kafka://h:p/topic`, each with
    /// `?schema=..&types=..`; the TCP ones also take
    /// `tls=true&ca=..&cert=..&key=..&server_name=..&write_timeout_ms=..&send_buffer=..`).
    pub fn parse_url(s: &str) -> Result<SinkSpec, SpecError> {
        SinkSpec::parse_url_with(s, |_| {})
    }

    /// Like [`SinkSpec::parse_url`], with `defaults` applied before the
    /// URL's own options (so that `?queue_batches=2` beats a config-wide
    /// `queue_batches`).
    pub fn parse_url_with(
        s: &str,
        defaults: impl FnOnce(&mut SinkSpec),
    ) -> Result<SinkSpec, SpecError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(err("output", "empty"));
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            // `-` or a plain path, with optional `?options`.
            None => match s.split_once('?').unwrap_or((s, "")) {
                ("-", _) => ("stdout", s.get(1..).unwrap_or("")),
                _ => ("file", s),
            },
        };
        let (body, query) = rest.split_once('?').unwrap_or((rest, ""));
        let opts = parse_query(query)?;
        let get = |k: &str| opts.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let kind = match scheme {
            "file" => {
                if body.is_empty() {
                    return Err(err("file", "no path in file:// URL"));
                }
                let mut f = FileSpec::plain(PathBuf::from(body));
                if let Some(v) = get("rotate_bytes") {
                    f.rotate_bytes = parse_size("rotate_bytes", v)?;
                }
                if let Some(v) = get("rotate_secs") {
                    f.rotate_age = Duration::from_secs(parse_num("rotate_secs", v)?);
                }
                if let Some(v) = get("compress") {
                    f.compress = match v {
                        "none" | "" => FileCompression::None,
                        "gzip" | "gz" => FileCompression::Gzip,
                        "zstd" | "zst" => FileCompression::Zstd,
                        _ => {
                            return Err(err(
                                "compress",
                                format!("`{v}`: expected none, gzip or zstd"),
                            ))
                        }
                    };
                }
                if let Some(v) = get("keep_files") {
                    f.keep_files = parse_num("keep_files", v)? as usize;
                }
                if let Some(v) = get("keep_bytes") {
                    f.keep_bytes = parse_size("keep_bytes", v)?;
                }
                if let Some(v) = get("file_mode") {
                    f.perms.mode = FilePerms::parse_mode(v).map_err(|e| err("file_mode", e))?;
                }
                if let Some(v) = get("group") {
                    f.perms.gid = Some(FilePerms::group_id(v).map_err(|e| err("group", e))?);
                }
                SinkKind::File(f)
            }
            "stdout" => SinkKind::Stdout,
            "gelf+udp" | "gelf" => SinkKind::GelfUdp {
                addr: host_port(scheme, body)?,
                compress: match get("compress").unwrap_or("none") {
                    "none" => GelfCompression::None,
                    "gzip" => GelfCompression::Gzip,
                    "zlib" => GelfCompression::Zlib,
                    v => {
                        return Err(err(
                            "compress",
                            format!("`{v}`: expected none, gzip or zlib"),
                        ))
                    }
                },
                chunk_size: match get("chunk_size") {
                    Some(v) => parse_num("chunk_size", v)? as usize,
                    None => 1420,
                },
            },
            "gelf+tcp" => SinkKind::GelfTcp {
                addr: host_port(scheme, body)?,
                tcp: TcpSpec::from_opts(&opts)?,
            },
            "syslog+udp" | "syslog" => SinkKind::SyslogUdp {
                addr: host_port(scheme, body)?,
            },
            "syslog+tcp" => SinkKind::SyslogTcp {
                addr: host_port(scheme, body)?,
                tcp: TcpSpec::from_opts(&opts)?,
            },
            "kafka" => {
                let (brokers, topic) = body.split_once('/').unwrap_or((body, "flowtap"));
                if brokers.is_empty() {
                    return Err(err("kafka", "no broker in kafka:// URL"));
                }
                let properties = opts
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix("kafka.").map(|p| (p.to_string(), v.clone())))
                    .collect();
                SinkKind::Kafka {
                    brokers: brokers.to_string(),
                    topic: if topic.is_empty() { "flowtap".into() } else { topic.to_string() },
                    properties,
                }
            }
            other => {
                return Err(err(
                    "output",
                    format!("unknown sink scheme `{other}` (file, gelf+udp, gelf+tcp, syslog+udp, syslog+tcp, kafka)"),
                ))
            }
        };
        let mut spec = SinkSpec::new(kind);
        defaults(&mut spec);
        finish(spec, query, s)
    }
}

/// Applies the options every kind shares, then validates.
fn finish(mut spec: SinkSpec, query: &str, url: &str) -> Result<SinkSpec, SpecError> {
    for (k, v) in parse_query(query)? {
        match k.as_str() {
            "schema" => {
                spec.schema = Schema::parse(&v).ok_or_else(|| {
                    err(
                        "schema",
                        format!("`{v}` (expected native, ecs, eve, gelf, nanocorp or nutanix)"),
                    )
                })?
            }
            "types" => spec.types = TypeSet::parse_list(&v).map_err(|e| err("types", e))?,
            "name" => spec.name = v,
            "batch_events" => spec.batch_events = parse_num("batch_events", &v)? as usize,
            "batch_bytes" => spec.batch_bytes = parse_size("batch_bytes", &v)? as usize,
            "batch_ms" => spec.batch_age = Duration::from_millis(parse_num("batch_ms", &v)?),
            "queue" | "queue_batches" => {
                spec.queue_batches = parse_num("queue_batches", &v)? as usize
            }
            "when_full" => {
                spec.when_full = Some(parse_when_full(&v)?);
            }
            "spool" => {
                let max = spec.spool.as_ref().map_or(1 << 30, |s| s.max_bytes);
                spec.spool = Some(SpoolSpec {
                    dir: PathBuf::from(v),
                    max_bytes: max,
                    perms: FilePerms::default(),
                });
            }
            "spool_bytes" => {
                let n = parse_size("spool_bytes", &v)?;
                match &mut spec.spool {
                    Some(s) => s.max_bytes = n,
                    None => {
                        return Err(err("spool_bytes", "set spool=DIR first"));
                    }
                }
            }
            // kind-specific keys were read by the caller
            "rotate_bytes" | "rotate_secs" | "keep_files" | "keep_bytes" | "file_mode"
            | "group"
                if matches!(spec.kind, SinkKind::File(_)) => {}
            "compress" if matches!(spec.kind, SinkKind::File(_) | SinkKind::GelfUdp { .. }) => {}
            "chunk_size" if matches!(spec.kind, SinkKind::GelfUdp { .. }) => {}
            "tls" | "ca" | "cert" | "key" | "server_name" | "write_timeout_ms" | "send_buffer"
                if matches!(
                    spec.kind,
                    SinkKind::GelfTcp { .. } | SinkKind::SyslogTcp { .. }
                ) => {}
            k if k.starts_with("kafka.") => {}
            other => return Err(err(other, format!("unknown option in `{url}`"))),
        }
    }
    spec.validate()?;
    Ok(spec)
}

/// `block` or `drop`.
pub fn parse_when_full(v: &str) -> Result<WhenFull, SpecError> {
    match v {
        "block" => Ok(WhenFull::Block),
        "drop" | "drop_newest" => Ok(WhenFull::DropNewest),
        _ => Err(err("when_full", format!("`{v}` (expected block or drop)"))),
    }
}

fn host_port(scheme: &str, body: &str) -> Result<String, SpecError> {
    let hp = body.trim_end_matches('/');
    let ok = hp
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !ok {
        return Err(err(scheme, format!("`{body}`: expected host:port")));
    }
    Ok(hp.to_string())
}

fn parse_query(q: &str) -> Result<Vec<(String, String)>, SpecError> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, SpecError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| err("url", format!("bad escape in `{s}`")))?;
                out.push(hex);
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| err("url", format!("`{s}` is not UTF-8")))
}

fn parse_num(what: &str, v: &str) -> Result<u64, SpecError> {
    v.parse()
        .map_err(|_| err(what, format!("`{v}` is not a number")))
}

/// `1048576`, `64k`, `10M`, `2G` (powers of 1024).
pub fn parse_size(what: &str, v: &str) -> Result<u64, SpecError> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last() {
        Some((i, 'k' | 'K')) => (&v[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&v[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| err(what, format!("`{v}` is not a size")))
}

/// What a worker does when a sink's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (offline replay: lossless).
    Block,
    /// Drop the batch and count its events (live capture: never stall RX).
    DropNewest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = SinkSpec::parse_url("-").expect("stdout");
        assert_eq!(s.kind, SinkKind::Stdout);
        assert_eq!(s.schema, Schema::Native);
        let s = SinkSpec::parse_url("-?schema=ecs&types=flow").expect("stdout");
        assert_eq!((s.kind, s.schema), (SinkKind::Stdout, Schema::Ecs));
        let s = SinkSpec::parse_url("out/flows.json?rotate_bytes=1k").expect("path");
        assert!(matches!(&s.kind, SinkKind::File(f) if f.rotate_bytes == 1024));
        let s = SinkSpec::parse_url("out/flows.json").expect("path");
        assert_eq!(
            s.kind,
            SinkKind::File(FileSpec::plain(PathBuf::from("out/flows.json")))
        );
        let s = SinkSpec::parse_url(
            "file:///var/log/flowtap/eve.json?rotate_bytes=64M&rotate_secs=3600&compress=gzip&keep_files=10&schema=eve&types=flow,dns",
        )
        .expect("file url");
        let SinkKind::File(f) = &s.kind else {
            panic!("file")
        };
        assert_eq!(f.path, PathBuf::from("/var/log/flowtap/eve.json"));
        assert_eq!(f.rotate_bytes, 64 << 20);
        assert_eq!(f.rotate_age, Duration::from_secs(3600));
        assert_eq!(f.compress, FileCompression::Gzip);
        assert_eq!(f.keep_files, 10);
        assert_eq!(s.schema, Schema::Eve);
        assert_eq!(
            s.types,
            TypeSet::of(&[EventType::Flow, EventType::App(dissect::app::AppProto::Dns)])
        );
        let s = SinkSpec::parse_url("gelf+udp://127.0.0.1:12201?compress=zlib").expect("gelf");
        assert_eq!(s.schema, Schema::Gelf);
        assert!(matches!(
            s.kind,
            SinkKind::GelfUdp {
                compress: GelfCompression::Zlib,
                chunk_size: 1420,
                ..
            }
        ));
        let s = SinkSpec::parse_url(
            "syslog+tcp://[::1]:6514?schema=ecs&spool=/var/spool/flowtap&spool_bytes=1G&when_full=block",
        )
        .expect("syslog");
        assert_eq!(
            s.kind,
            SinkKind::SyslogTcp {
                addr: "[::1]:6514".into(),
                tcp: TcpSpec::default(),
            }
        );
        let g = SinkSpec::parse_url(
            "gelf+tcp://collector:12201?tls=true&ca=/etc/ca.pem&cert=/c.pem&key=/k.pem&server_name=graylog.lan&write_timeout_ms=1500&send_buffer=256k",
        )
        .expect("gelf tls");
        assert_eq!(
            g.kind,
            SinkKind::GelfTcp {
                addr: "collector:12201".into(),
                tcp: TcpSpec {
                    tls: Some(TlsSpec {
                        ca: Some("/etc/ca.pem".into()),
                        cert: Some("/c.pem".into()),
                        key: Some("/k.pem".into()),
                        server_name: Some("graylog.lan".into()),
                    }),
                    write_timeout: Duration::from_millis(1500),
                    send_buffer: Some(256 << 10),
                }
            }
        );
        assert_eq!(s.spool.as_ref().map(|s| s.max_bytes), Some(1 << 30));
        assert_eq!(s.when_full, Some(WhenFull::Block));
        let s = SinkSpec::parse_url("kafka://127.0.0.1:9092/flowtap-{type}?kafka.acks=all")
            .expect("kafka");
        assert_eq!(
            s.kind,
            SinkKind::Kafka {
                brokers: "127.0.0.1:9092".into(),
                topic: "flowtap-{type}".into(),
                properties: vec![("acks".into(), "all".into())]
            }
        );
    }

    #[test]
    fn bad_urls_name_the_part() {
        for (url, part) in [
            ("gelf+udp://127.0.0.1:12201?schema=ecs", "schema"),
            ("syslog+udp://127.0.0.1", "syslog+udp"),
            ("file:///x?rotate_bytes=lots", "rotate_bytes"),
            ("-?schema=nope", "schema"),
            ("-?rotate_bytes=1", "rotate_bytes"),
            ("file:///x?schema=xml", "schema"),
            ("file:///x?types=flow,smb", "types"),
            ("file:///x?schema=nutanix&types=dns", "types"),
            ("ftp://x:1", "output"),
            ("file:///x?colour=red", "colour"),
            ("file:///x?spool=/tmp", "spool"),
            ("syslog+tcp://h:1?ca=/ca.pem", "ca"),
            ("syslog+tcp://h:1?tls=maybe", "tls"),
            ("gelf+tcp://h:1?tls=true&cert=/c.pem", "key"),
            ("gelf+tcp://h:1?write_timeout_ms=0", "write_timeout_ms"),
            ("gelf+tcp://h:1?send_buffer=10", "send_buffer"),
            ("syslog+udp://h:1?tls=true", "tls"),
        ] {
            let e = SinkSpec::parse_url(url).expect_err(url);
            assert!(e.to_string().starts_with(part), "{url}: {e}");
        }
    }
}
