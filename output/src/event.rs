//! Event types and sets of them (a sink's `types=` filter).

use std::fmt;

pub use dissect::app::AppProto;

/// The kinds of event flowtap emits: flow records, one type per registered
/// application protocol, `stats` and finished `pcap` export files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Flow,
    /// An application-layer transaction of a registered protocol.
    App(AppProto),
    Stats,
    /// A finished pcap export file.
    Pcap,
}

impl EventType {
    /// How many event types there are (for per-type arrays).
    pub const COUNT: usize = AppProto::COUNT + 3;

    /// Every event type, in [`EventType::index`] order.
    pub fn all() -> impl Iterator<Item = EventType> + Clone {
        std::iter::once(EventType::Flow)
            .chain(AppProto::ALL.iter().map(|&p| EventType::App(p)))
            .chain([EventType::Stats, EventType::Pcap])
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Flow => "flow",
            EventType::App(p) => p.as_str(),
            EventType::Stats => "stats",
            EventType::Pcap => "pcap",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::all().find(|t| t.as_str() == s)
    }

    /// Position in [`EventType::all`].
    pub fn index(self) -> usize {
        match self {
            EventType::Flow => 0,
            EventType::App(p) => 1 + p.index(),
            EventType::Stats => 1 + AppProto::COUNT,
            EventType::Pcap => 2 + AppProto::COUNT,
        }
    }

    /// The type at `i` in [`EventType::all`].
    pub fn from_index(i: usize) -> Option<EventType> {
        EventType::all().nth(i)
    }

    fn bit(self) -> u64 {
        1 << self.index()
    }
}

// A TypeSet is one bit per type.
const _: () = assert!(
    EventType::COUNT <= 64,
    "TypeSet holds at most 64 event types"
);

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of event types.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TypeSet(u64);

impl TypeSet {
    pub const EMPTY: TypeSet = TypeSet(0);
    pub const ALL: TypeSet = TypeSet(u64::MAX >> (64 - EventType::COUNT));

    pub fn of(types: &[EventType]) -> TypeSet {
        TypeSet(types.iter().fold(0, |a, t| a | t.bit()))
    }

    pub fn contains(self, t: EventType) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn insert(&mut self, t: EventType) {
        self.0 |= t.bit();
    }

    pub fn remove(&mut self, t: EventType) {
        self.0 &= !t.bit();
    }

    pub fn intersect(self, o: TypeSet) -> TypeSet {
        TypeSet(self.0 & o.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::all().filter(move |t| self.contains(*t))
    }

    /// Parses `flow,http,dns` (also `all`); names the unknown type.
    pub fn parse_list(s: &str) -> Result<TypeSet, String> {
        let mut set = TypeSet::EMPTY;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                return Ok(TypeSet::ALL);
            }
            match EventType::parse(part) {
                Some(t) => set.insert(t),
                None => {
                    let names: Vec<&str> = EventType::all().map(EventType::as_str).collect();
                    return Err(format!(
                        "unknown event type `{part}` (expected {} or all)",
                        names.join(", ")
                    ));
                }
            }
        }
        if set.is_empty() {
            return Err("empty event type list".into());
        }
        Ok(set)
    }
}

impl fmt::Debug for TypeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for TypeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(t.as_str())?;
        }
        Ok(())
    }
}

/// A finished file, as the `pcap` event reports it (see
/// `docs/schema-native.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapEvent<'a> {
    /// The event's time: the file's last frame (or when it opened, if empty).
    pub ts_ns: u64,
    pub path: &'a str,
    pub rule: &'a str,
    /// Per-flow files: the flow.
    pub flow_id: Option<u64>,
    pub community_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub worker: Option<u16>,
    /// `pcapng` or `pcap`.
    pub format: &'static str,
    /// `gzip`, or None.
    pub compression: Option<&'static str>,
    pub packets: u64,
    /// Sum of the captured (stored) frame lengths.
    pub captured_bytes: u64,
    /// Size of the file on disk (what `sha256` covers).
    pub file_bytes: u64,
    /// Frames of this file dropped at a full queue.
    pub dropped_packets: u64,
    /// Lower-case hex.
    pub sha256: &'a str,
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: Option<u64>,
    /// Finished early by a per-flow limit or retention.
    pub truncated: bool,
}

/// A `stats` event: every counter at one moment, as named members in the
/// order the counters are listed (see `metrics::Listing`). Each schema
/// writes it its own way; nothing parses JSON back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsEvent {
    pub ts_ns: u64,
    pub members: Vec<(String, StatValue)>,
}

/// One value of a [`StatsEvent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatValue {
    Number(u64),
    Flag(bool),
    Text(String),
    Object(Vec<(String, StatValue)>),
}

/// IANA protocol names as Suricata spells them.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        1 => "ICMP",
        6 => "TCP",
        17 => "UDP",
        58 => "IPv6-ICMP",
        132 => "SCTP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lists() {
        let s = TypeSet::parse_list("flow, dns").expect("ok");
        assert!(s.contains(EventType::Flow) && s.contains(EventType::App(AppProto::Dns)));
        assert!(!s.contains(EventType::App(AppProto::Http)));
        assert_eq!(s.to_string(), "flow,dns");
        assert_eq!(TypeSet::parse_list("all").expect("ok"), TypeSet::ALL);
        let e = TypeSet::parse_list("flow,htp").expect_err("bad");
        assert!(e.contains("htp"), "{e}");
    }
}
