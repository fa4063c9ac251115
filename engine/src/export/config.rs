//! `[export]`: PCAP export rules (`[[export.rules]]`) and the pre-trigger
//! buffer that lets a file start with the flow's handshake although the rule
//! only matched later (after the HTTP response, the TLS handshake, ...).
//!
//! ```toml
//! [export]
//! buffer_packets = 64
//!
//! [[export.rules]]
//! name = "evil"
//! dir = "/var/lib/flowtap/pcap"
//! action = "flow"                  # one file per flow; "shared": one rotating file
//! match.http.host = ["*.example.com", "evil.org"]
//! match.port = [80, "8000-8099"]
//! ```
//!
//! The rules are compiled (and every value checked, with the rule's name and
//! the field in the error) by [`crate::export::rules::compile`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExportSection {
    /// Packets of each undecided flow kept in the pre-trigger buffer.
    pub buffer_packets: u32,
    /// Bytes of each undecided flow kept in the pre-trigger buffer.
    pub buffer_bytes: Size,
    /// The pre-trigger pool of one worker; when full the oldest buffered
    /// flow loses its buffer (counted as a pool eviction).
    pub pool_bytes_per_worker: Size,
    /// Chunks queued between the workers and the writer thread (its bound:
    /// a full queue drops and counts, never blocks capture).
    pub queue_chunks: usize,
    /// Frames of IP fragments held per worker until their datagram is
    /// reassembled (so an exported flow has every fragment frame).
    pub fragment_bytes_per_worker: Size,
    pub rules: Vec<RuleSection>,
}

impl Default for ExportSection {
    fn default() -> Self {
        ExportSection {
            buffer_packets: 64,
            buffer_bytes: Size(256 << 10),
            pool_bytes_per_worker: Size(64 << 20),
            queue_chunks: 256,
            fragment_bytes_per_worker: Size(4 << 20),
            rules: Vec::new(),
        }
    }
}

/// One `[[export.rules]]` entry. Strings are checked when compiled.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSection {
    /// `[A-Za-z0-9_-]+`; names the files.
    pub name: String,
    /// `flow` (one file per flow) or `shared` (one rotating file for all
    /// matching flows; a rule with no match conditions captures every frame).
    pub action: String,
    /// `pcapng` or `pcap`.
    pub format: String,
    /// Bytes kept of each frame (0 = whole frame).
    pub snaplen: u32,
    pub dir: String,
    /// `none` or `gzip`.
    pub compression: String,
    /// Per-flow file: it is finished after this many packets / bytes.
    pub max_packets: Option<u64>,
    pub max_bytes: Option<Size>,
    /// Shared file: rotated past this size / age.
    pub rotate_bytes: Option<Size>,
    pub rotate_secs: Option<u64>,
    /// Finished files of this rule kept in `dir` (oldest removed first).
    pub retain_files: Option<usize>,
    pub retain_bytes: Option<Size>,
    /// Mode of the files written, an octal string (default "0640").
    pub file_mode: Option<String>,
    /// Group of the files written (a name; default the process's).
    pub group: Option<String>,
    #[serde(rename = "match")]
    pub matches: MatchSection,
}

impl Default for RuleSection {
    fn default() -> Self {
        RuleSection {
            name: String::new(),
            action: "flow".into(),
            format: "pcapng".into(),
            snaplen: 0,
            dir: String::new(),
            compression: "none".into(),
            max_packets: None,
            max_bytes: None,
            rotate_bytes: None,
            rotate_secs: None,
            retain_files: None,
            retain_bytes: None,
            file_mode: None,
            group: None,
            matches: MatchSection::default(),
        }
    }
}

/// Match conditions of a rule. Every condition given must hold (AND); the
/// values of one condition are alternatives (OR). `src`/`dst` are the flow's
/// originator and responder; the unprefixed forms match either endpoint.
///
/// Unknown keys are refused by name when the rule compiles (serde cannot
/// refuse them here: the protocol conditions are a flattened map).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct MatchSection {
    pub cidr: Values,
    pub src_cidr: Values,
    pub dst_cidr: Values,
    /// Ports or ranges (`8000-8099`).
    pub port: Values,
    pub src_port: Values,
    pub dst_port: Values,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `sctp` or a number.
    pub proto: Values,
    /// Any VLAN id of the flow's stack.
    pub vlan: Values,
    /// `gre`, `vxlan`, `geneve`, `erspan` (any version), `erspan1`..`erspan3`,
    /// `ipip`, `teredo`, `gtpu`, or `none`.
    pub tunnel: Values,
    /// A registered protocol's name (`http`, `dns`, `tls`, ...).
    pub app_proto: Values,
    /// The flow has carried at least this many bytes (both directions, whole frames).
    pub flow_bytes: Option<Size>,
    /// The flow has carried at least this many packets.
    pub flow_packets: Option<u64>,
    /// `match.PROTOCOL.FIELD` (`match.http.host`, `match.dns.query`, ...):
    /// the fields each registered protocol declares (its `EXPORT_FIELDS`).
    #[serde(flatten)]
    pub app: BTreeMap<String, toml::Value>,
}

/// A list of alternatives, written as one value or an array of values
/// (strings or integers): `port = 80`, `port = [80, "8000-8099"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values(pub Vec<String>);

impl Values {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Values, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an integer or an array of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Values, E> {
                Ok(Values(vec![v.to_string()]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Values, E> {
                Ok(Values(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Values, E> {
                Ok(Values(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut out = Vec::new();
                while let Some(one) = seq.next_element::<Scalar>()? {
                    out.push(one.0);
                }
                Ok(Values(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One string or integer, as a string.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte count, written as an integer or a string with a K/M/G suffix (`"64M"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    /// `1048576`, `64k`, `10M`, `2G` (powers of 1024), as the sinks take them.
    pub fn parse(v: &str) -> Option<Size> {
        output::sink::spec::parse_size("size", v).ok().map(Size)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count: an integer or a string like \"64M\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).ok_or_else(|| E::custom(format!("`{v}` is not a size")))
            }
        }
        d.deserialize_any(V)
    }
}

impl ExportSection {
    /// Checks the section and compiles its rules; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |field: &str, why: &str| Err(format!("{field}: {why}"));
        if self.queue_chunks == 0 {
            return bad("export.queue_chunks", "must be at least 1");
        }
        if !self.rules.is_empty() && self.pool_bytes_per_worker.0 < 64 << 10 {
            return bad("export.pool_bytes_per_worker", "must be at least 64K");
        }
        if self.pool_bytes_per_worker.0 > u32::MAX as u64 {
            return bad("export.pool_bytes_per_worker", "must be below 4G");
        }
        super::rules::compile(self)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
