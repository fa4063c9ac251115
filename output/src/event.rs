//! Event types and sets of them (a sink's `types=` filter).

use std::fmt;

/// The kinds of event flowtap emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Flow,
    Http,
    Dns,
    Tls,
    Stats,
    /// A finished pcap export file.
    Pcap,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Flow,
        EventType::Http,
        EventType::Dns,
        EventType::Tls,
        EventType::Stats,
        EventType::Pcap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Flow => "flow",
            EventType::Http => "http",
            EventType::Dns => "dns",
            EventType::Tls => "tls",
            EventType::Stats => "stats",
            EventType::Pcap => "pcap",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of event types.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TypeSet(u8);

impl TypeSet {
    pub const EMPTY: TypeSet = TypeSet(0);
    pub const ALL: TypeSet = TypeSet(0b11_1111);

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
        EventType::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
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
                    return Err(format!(
                        "unknown event type `{part}` (expected flow, http, dns, tls, stats, pcap or all)"
                    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lists() {
        let s = TypeSet::parse_list("flow, dns").expect("ok");
        assert!(s.contains(EventType::Flow) && s.contains(EventType::Dns));
        assert!(!s.contains(EventType::Http));
        assert_eq!(s.to_string(), "flow,dns");
        assert_eq!(TypeSet::parse_list("all").expect("ok"), TypeSet::ALL);
        let e = TypeSet::parse_list("flow,htp").expect_err("bad");
        assert!(e.contains("htp"), "{e}");
    }
}
