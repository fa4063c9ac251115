//! A batch of encoded events: their bytes back to back (one line each) and,
//! per event, where it ends, its type, time and key. Batches travel from a
//! worker to a sink thread and back again empty, so their vectors are reused.

use crate::event::EventType;

/// Longest key kept (a Community ID is 30 bytes).
pub const MAX_KEY: usize = 32;

/// What a sink needs to know about one event besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventMeta {
    /// Offset in `Batch::bytes` just past this event's line.
    pub end: u32,
    pub kind: EventType,
    pub ts_ns: u64,
    key: [u8; MAX_KEY],
    key_len: u8,
}

impl EventMeta {
    pub fn new(end: u32, kind: EventType, ts_ns: u64, key: &[u8]) -> EventMeta {
        let mut k = [0u8; MAX_KEY];
        let n = key.len().min(MAX_KEY);
        k[..n].copy_from_slice(&key[..n]);
        EventMeta {
            end,
            kind,
            ts_ns,
            key: k,
            key_len: n as u8,
        }
    }

    /// The partition key (the flow's Community ID; empty for stats).
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len as usize]
    }
}

/// Encoded events on their way to one sink.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub meta: Vec<EventMeta>,
}

impl Batch {
    pub fn with_capacity(bytes: usize, events: usize) -> Batch {
        Batch {
            bytes: Vec::with_capacity(bytes),
            meta: Vec::with_capacity(events),
        }
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.meta.clear();
    }

    /// Records that the bytes appended since the previous event form one
    /// event. Lines past 4 GiB of batch cannot be recorded (never happens
    /// with the byte limits a sink has).
    pub fn commit(&mut self, kind: EventType, ts_ns: u64, key: &[u8]) {
        let end = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        self.meta.push(EventMeta::new(end, kind, ts_ns, key));
    }

    /// Event `i`: its meta and its line without the trailing newline.
    pub fn event(&self, i: usize) -> Option<(&EventMeta, &[u8])> {
        let m = self.meta.get(i)?;
        let start = if i == 0 {
            0
        } else {
            self.meta.get(i - 1).map_or(0, |p| p.end as usize)
        };
        let line = self.bytes.get(start..m.end as usize)?;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        Some((m, line))
    }

    /// Every event in order.
    pub fn events(&self) -> impl Iterator<Item = (&EventMeta, &[u8])> {
        (0..self.meta.len()).filter_map(move |i| self.event(i))
    }

    /// Bytes of events `from..` (whole lines, newlines kept).
    pub fn bytes_from(&self, from: usize) -> &[u8] {
        let start = if from == 0 {
            0
        } else {
            self.meta.get(from - 1).map_or(0, |p| p.end as usize)
        };
        self.bytes.get(start..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_meta() {
        let mut b = Batch::default();
        b.bytes.extend_from_slice(b"{\"a\":1}\n");
        b.commit(EventType::Flow, 1, b"1:abc");
        b.bytes.extend_from_slice(b"{\"b\":2}\n");
        b.commit(EventType::App(dissect::app::AppProto::Dns), 2, b"");
        let ev: Vec<_> = b.events().map(|(m, l)| (m.kind, l.to_vec())).collect();
        assert_eq!(
            ev,
            vec![
                (EventType::Flow, b"{\"a\":1}".to_vec()),
                (
                    EventType::App(dissect::app::AppProto::Dns),
                    b"{\"b\":2}".to_vec()
                )
            ]
        );
        assert_eq!(
            b.event(0).map(|(m, _)| m.key().to_vec()),
            Some(b"1:abc".to_vec())
        );
        assert_eq!(b.bytes_from(1), b"{\"b\":2}\n");
    }
}
