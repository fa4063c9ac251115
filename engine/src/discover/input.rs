//! Flow logs flowtap wrote earlier, read back line by line (streaming:
//! one line in memory at a time): native and EVE JSON lines (flow, dns,
//! tls and http events; other event types are counted and skipped), and
//! Nutanix-style `SRC= DST= PROTO= SPORT= DPORT= ORIG: PKTS= BYTES= REPLY:
//! PKTS= BYTES=` lines. A line may carry a prefix (a syslog header, say):
//! the JSON object starts at the first `{`, a Nutanix line at its `SRC=`.
//! Files ending in `.gz` are gunzipped, `.zst`/`.zstd` unzstd'ed, a
//! directory stands for the files in it (sorted by name), `-` for stdin.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::net::parse_time_ns;
use super::{proto_number, Accepted, Aggregator, DiscoverError, FlowObs, NameObs};

/// What reading the logs did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub files: u64,
    pub lines: u64,
    /// Empty lines.
    pub blank: u64,
    /// Events of other types (stats, pcap, ...).
    pub other_events: u64,
    /// Lines that did not parse, when skipping them was asked for.
    pub bad: u64,
    /// The first bad line skipped: `file:line: why`.
    pub first_bad: Option<String>,
    /// Decompressed bytes read.
    pub bytes: u64,
}

/// The files `paths` stand for: each file itself, each directory's files sorted.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DiscoverError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| DiscoverError::Open {
                path: p.display().to_string(),
                err: e,
            })?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Opens `path`, decompressing by its extension.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, DiscoverError> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            std::io::stdin(),
        )));
    }
    let name = path.display().to_string();
    let f = File::open(path).map_err(|e| DiscoverError::Open {
        path: name.clone(),
        err: e,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let r: Box<dyn Read> = match ext.as_str() {
        "gz" | "gzip" => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f))),
        "zst" | "zstd" => Box::new(
            zstd::stream::read::Decoder::new(f)
                .map_err(|e| DiscoverError::Open { path: name, err: e })?,
        ),
        _ => Box::new(f),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, r)))
}

/// Reads every file into `agg`. With `skip_bad`, a line that does not
/// parse is counted and skipped; otherwise it stops the reading with an
/// error naming the file and line.
pub fn read_files(
    files: &[PathBuf],
    agg: &mut Aggregator,
    skip_bad: bool,
) -> Result<ReadStats, DiscoverError> {
    let mut st = ReadStats::default();
    for f in files {
        let r = open(f)?;
        read_stream(r, &f.display().to_string(), agg, skip_bad, &mut st)?;
        st.files += 1;
    }
    Ok(st)
}

/// Reads one stream of lines (`name` names it in errors).
pub fn read_stream(
    mut r: impl BufRead,
    name: &str,
    agg: &mut Aggregator,
    skip_bad: bool,
    st: &mut ReadStats,
) -> Result<(), DiscoverError> {
    let mut buf = Vec::with_capacity(4096);
    let mut lineno = 0u64;
    let mut names = Vec::new();
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| DiscoverError::Read {
                path: name.to_string(),
                line: lineno + 1,
                err: e,
            })?;
        if n == 0 {
            return Ok(());
        }
        lineno += 1;
        st.lines += 1;
        st.bytes += n as u64;
        let parsed = std::str::from_utf8(&buf)
            .map_err(|_| "not UTF-8 text".to_string())
            .and_then(|line| parse_line(line.trim_end_matches(['\n', '\r']), &mut names));
        match parsed {
            Ok(Parsed::Flow(f)) => agg.add_flow(&f),
            Ok(Parsed::App) => {
                agg.add_app_event();
                for n in names.drain(..) {
                    agg.add_name(&n);
                }
            }
            Ok(Parsed::Other) => st.other_events += 1,
            Ok(Parsed::Blank) => st.blank += 1,
            Err(msg) => {
                if !skip_bad {
                    return Err(DiscoverError::BadLine {
                        path: name.to_string(),
                        line: lineno,
                        msg,
                    });
                }
                st.bad += 1;
                if st.first_bad.is_none() {
                    st.first_bad = Some(format!("{name}:{lineno}: {msg}"));
                }
            }
        }
        names.clear();
    }
}

/// What one line was.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Flow(FlowObs),
    /// An app event (its names went to the caller's list).
    App,
    /// Another event type.
    Other,
    Blank,
}

/// Parses one line (without its newline).
pub fn parse_line(line: &str, names: &mut Vec<NameObs>) -> Result<Parsed, String> {
    let t = line.trim();
    if t.is_empty() {
        return Ok(Parsed::Blank);
    }
    if let Some(i) = t.find('{') {
        // A Nutanix line has no `{`; JSON may follow a syslog header.
        if !t[..i].contains("SRC=") {
            return parse_json(&t[i..], names);
        }
    }
    if let Some(i) = t.find("SRC=") {
        return parse_nutanix(t, i).map(Parsed::Flow);
    }
    Err("neither a JSON event nor a SRC= DST= flow line".into())
}

#[derive(Deserialize)]
struct JLine<'a> {
    #[serde(borrow, default)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    src_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    dest_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    src_port: Option<u16>,
    #[serde(default)]
    dest_port: Option<u16>,
    #[serde(default, deserialize_with = "proto_de")]
    proto: Option<u8>,
    #[serde(default)]
    ip_proto: Option<u8>,
    #[serde(borrow, default)]
    app_proto: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    flow: Option<JFlow<'a>>,
    #[serde(borrow, default)]
    tcp: Option<JTcp<'a>>,
    #[serde(borrow, default)]
    dns: Option<JDns<'a>>,
    #[serde(borrow, default)]
    tls: Option<JTls<'a>>,
    #[serde(borrow, default)]
    http: Option<JHttp<'a>>,
}

#[derive(Deserialize)]
struct JFlow<'a> {
    #[serde(borrow, default)]
    start: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    end: Option<Cow<'a, str>>,
    #[serde(default)]
    pkts_toserver: u64,
    #[serde(default)]
    bytes_toserver: u64,
    #[serde(default)]
    pkts_toclient: u64,
    #[serde(default)]
    bytes_toclient: u64,
    #[serde(default)]
    slice: u32,
}

#[derive(Deserialize)]
struct JTcp<'a> {
    #[serde(borrow, default)]
    history: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tcp_flags_tc: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct JDns<'a> {
    #[serde(borrow, default)]
    queries: Vec<JQuery<'a>>,
    #[serde(borrow, default)]
    answers: Vec<JAnswer<'a>>,
}

#[derive(Deserialize)]
struct JQuery<'a> {
    #[serde(borrow, default)]
    rrname: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct JAnswer<'a> {
    #[serde(borrow, default)]
    rrname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    rrtype: Option<Cow<'a, str>>,
    #[serde(default)]
    rdata: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct JTls<'a> {
    #[serde(borrow, default)]
    sni: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct JHttp<'a> {
    /// native
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    /// EVE
    #[serde(borrow, default)]
    hostname: Option<Cow<'a, str>>,
}

fn proto_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a protocol name or number")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<u8>, E> {
            proto_number(v)
                .map(Some)
                .ok_or_else(|| E::custom(format!("unknown protocol {v:?}")))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<u8>, E> {
            u8::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("protocol {v} out of range")))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<u8>, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

fn ip(v: &Option<Cow<'_, str>>, key: &str) -> Result<IpAddr, String> {
    let s = v.as_deref().ok_or_else(|| format!("no {key}"))?;
    s.parse()
        .map_err(|_| format!("{key} {s:?} is not an IP address"))
}

fn time(v: Option<&str>, key: &str) -> Result<u64, String> {
    let s = v.ok_or_else(|| format!("no {key}"))?;
    parse_time_ns(s).ok_or_else(|| format!("{key} {s:?} is not an RFC 3339 time"))
}

fn static_app(s: &str) -> Cow<'static, str> {
    match s {
        "http" => Cow::Borrowed("http"),
        "dns" => Cow::Borrowed("dns"),
        "tls" => Cow::Borrowed("tls"),
        other => Cow::Owned(other.to_string()),
    }
}

fn flags(v: &Option<Cow<'_, str>>) -> u8 {
    v.as_deref()
        .and_then(|s| u8::from_str_radix(s, 16).ok())
        .unwrap_or(0)
}

fn parse_json(s: &str, names: &mut Vec<NameObs>) -> Result<Parsed, String> {
    let j: JLine<'_> = serde_json::from_str(s).map_err(|e| format!("bad JSON event: {e}"))?;
    let kind = j.event_type.as_deref().unwrap_or("");
    match kind {
        "flow" => {}
        "dns" | "tls" | "http" => {
            app_names(&j, names)?;
            return Ok(Parsed::App);
        }
        "" => return Err("JSON without event_type".into()),
        _ => return Ok(Parsed::Other),
    }
    let proto = j.ip_proto.or(j.proto).ok_or("flow event without proto")?;
    let fl = j
        .flow
        .as_ref()
        .ok_or("flow event without its flow object")?;
    let start = time(fl.start.as_deref(), "flow.start")?;
    let end = match fl.end.as_deref() {
        Some(e) => time(Some(e), "flow.end")?,
        None => time(j.timestamp.as_deref(), "timestamp")?,
    };
    let accepted = match (&j.tcp, proto) {
        (Some(t), 6) => match &t.history {
            Some(h) => super::tap::accepted_from_history(h),
            None => {
                // EVE: flags only, ORed over the flow. A SYN from the
                // responder is its SYN-ACK: it accepted. The originator's
                // SYN then ACKs look like a SYN-ACK, so that side tells nothing.
                if flags(&t.tcp_flags_tc) & 0x02 != 0 {
                    Accepted::Responder
                } else {
                    Accepted::Unknown
                }
            }
        },
        _ => Accepted::Unknown,
    };
    Ok(Parsed::Flow(FlowObs {
        orig_ip: ip(&j.src_ip, "src_ip")?,
        resp_ip: ip(&j.dest_ip, "dest_ip")?,
        orig_port: j.src_port.unwrap_or(0),
        resp_port: j.dest_port.unwrap_or(0),
        proto,
        start_ns: start,
        end_ns: end,
        orig_pkts: fl.pkts_toserver,
        orig_bytes: fl.bytes_toserver,
        resp_pkts: fl.pkts_toclient,
        resp_bytes: fl.bytes_toclient,
        accepted,
        app_proto: j.app_proto.as_deref().map(static_app),
        first_slice: fl.slice == 0,
    }))
}

fn app_names(j: &JLine<'_>, names: &mut Vec<NameObs>) -> Result<(), String> {
    if let Some(d) = &j.dns {
        let q = d.queries.first().and_then(|q| q.rrname.as_deref());
        for a in &d.answers {
            if !matches!(a.rrtype.as_deref(), Some("A" | "AAAA")) {
                continue;
            }
            let Some(addr) = a
                .rdata
                .as_ref()
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let rr = a.rrname.as_deref().unwrap_or("");
            if let Some(q) = q {
                if !q.eq_ignore_ascii_case(rr) {
                    names.push(NameObs::Dns {
                        addr,
                        name: q.to_string(),
                    });
                }
            }
            names.push(NameObs::Dns {
                addr,
                name: rr.to_string(),
            });
        }
        return Ok(());
    }
    let server = || ip(&j.dest_ip, "dest_ip");
    let proto = j.ip_proto.or(j.proto).unwrap_or(6);
    let port = j.dest_port.unwrap_or(0);
    if let Some(sni) = j.tls.as_ref().and_then(|t| t.sni.as_deref()) {
        names.push(NameObs::Sni {
            server: server()?,
            proto,
            port,
            name: sni.to_string(),
        });
    }
    if let Some(h) = j
        .http
        .as_ref()
        .and_then(|h| h.host.as_deref().or(h.hostname.as_deref()))
    {
        names.push(NameObs::Host {
            server: server()?,
            proto,
            port,
            name: h.to_string(),
        });
    }
    Ok(())
}

/// A Nutanix-style line; `at` is where `SRC=` starts. The token before it
/// is the record's (end) time, if it is one.
fn parse_nutanix(line: &str, at: usize) -> Result<FlowObs, String> {
    let ts = line[..at]
        .split_whitespace()
        .last()
        .and_then(parse_time_ns)
        .unwrap_or(0);
    let mut src = None;
    let mut dst = None;
    let mut proto = None;
    let (mut sport, mut dport) = (0u16, 0u16);
    let mut counts = [0u64; 4];
    let mut side = 0usize;
    for tok in line[at..].split_whitespace() {
        match tok {
            "ORIG:" => side = 1,
            "REPLY:" => side = 2,
            _ => {
                let Some((k, v)) = tok.split_once('=') else {
                    continue;
                };
                let num = |v: &str| -> Result<u64, String> {
                    v.parse().map_err(|_| format!("{k}={v} is not a number"))
                };
                match (side, k) {
                    (0, "SRC") => {
                        src = Some(
                            v.parse::<IpAddr>()
                                .map_err(|_| format!("SRC={v} is not an IP address"))?,
                        )
                    }
                    (0, "DST") => {
                        dst = Some(
                            v.parse::<IpAddr>()
                                .map_err(|_| format!("DST={v} is not an IP address"))?,
                        )
                    }
                    (0, "PROTO") => {
                        proto = Some(proto_number(v).ok_or_else(|| format!("unknown PROTO={v}"))?)
                    }
                    (0, "SPORT") => {
                        sport = u16::try_from(num(v)?).map_err(|_| format!("SPORT={v}"))?
                    }
                    (0, "DPORT") => {
                        dport = u16::try_from(num(v)?).map_err(|_| format!("DPORT={v}"))?
                    }
                    (1, "PKTS") => counts[0] = num(v)?,
                    (1, "BYTES") => counts[1] = num(v)?,
                    (2, "PKTS") => counts[2] = num(v)?,
                    (2, "BYTES") => counts[3] = num(v)?,
                    _ => {}
                }
            }
        }
    }
    Ok(FlowObs {
        orig_ip: src.ok_or("no SRC=")?,
        resp_ip: dst.ok_or("no DST=")?,
        orig_port: sport,
        resp_port: dport,
        proto: proto.ok_or("no PROTO=")?,
        start_ns: ts,
        end_ns: ts,
        orig_pkts: counts[0],
        orig_bytes: counts[1],
        resp_pkts: counts[2],
        resp_bytes: counts[3],
        accepted: Accepted::Unknown,
        app_proto: None,
        first_slice: true,
    })
}
