//! Receives the workers' flow records and app events in process (no JSON),
//! from a replay or a live capture, and folds them into a shared
//! [`Aggregator`].

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use dissect::app::{AppEvent, DnsEvent};
use dissect::event::{AppEnvelope, FlowRecord};

use super::{Accepted, Aggregator, FlowObs, NameObs};
use crate::flow::RecordSink;

/// A worker's tap: every record and event goes to the shared aggregate.
/// They wait in a small buffer while another thread holds the aggregate
/// (the discovery sink renders its rule file under the lock), so a live
/// worker never waits for that; a full buffer, and the tap's end (the
/// worker's), hand them over whatever it takes.
pub struct DiscoverTap {
    agg: Arc<Mutex<Aggregator>>,
    flows: Vec<FlowObs>,
    names: Vec<NameObs>,
    events: u64,
}

/// Records and names a tap holds at most before it waits for the lock.
const TAP_BUFFER: usize = 4096;

impl DiscoverTap {
    pub fn new(agg: Arc<Mutex<Aggregator>>) -> DiscoverTap {
        DiscoverTap {
            agg,
            flows: Vec::new(),
            names: Vec::new(),
            events: 0,
        }
    }

    fn hand_over(&mut self, wait: bool) {
        let full = self.flows.len() + self.names.len() >= TAP_BUFFER;
        let guard = if wait || full {
            self.agg.lock().ok()
        } else {
            self.agg.try_lock().ok()
        };
        let Some(mut a) = guard else {
            return;
        };
        for f in self.flows.drain(..) {
            a.add_flow(&f);
        }
        for _ in 0..self.events {
            a.add_app_event();
        }
        self.events = 0;
        for n in self.names.drain(..) {
            a.add_name(&n);
        }
    }
}

impl Drop for DiscoverTap {
    fn drop(&mut self) {
        self.hand_over(true);
    }
}

/// Who accepted a TCP connection, from the Zeek-style history (`h`: the
/// responder sent a SYN-ACK, `H`: the originator did).
pub fn accepted_from_history(history: &str) -> Accepted {
    if history.contains('h') {
        Accepted::Responder
    } else if history.contains('H') {
        Accepted::Originator
    } else {
        Accepted::Unknown
    }
}

pub fn flow_obs(rec: &FlowRecord) -> FlowObs {
    FlowObs {
        orig_ip: rec.src_ip,
        resp_ip: rec.dst_ip,
        orig_port: rec.src_port,
        resp_port: rec.dst_port,
        proto: rec.proto,
        start_ns: rec.start_ns,
        end_ns: rec.end_ns,
        orig_pkts: rec.orig.packets,
        orig_bytes: rec.orig.bytes,
        resp_pkts: rec.resp.packets,
        resp_bytes: rec.resp.bytes,
        accepted: if rec.proto == 6 {
            accepted_from_history(rec.history)
        } else {
            Accepted::Unknown
        },
        app_proto: rec.app_proto.map(Cow::Borrowed),
        first_slice: rec.slice == 0,
    }
}

/// The names an app event teaches (DNS answers, SNI, HTTP Host).
pub fn names_of(env: &AppEnvelope<'_>, out: &mut Vec<NameObs>) {
    match env.event {
        AppEvent::Dns(d) => dns_names(d, out),
        AppEvent::Tls(t) => {
            if let Some(sni) = &t.sni {
                out.push(NameObs::Sni {
                    server: env.dst_ip,
                    proto: env.proto,
                    port: env.dst_port,
                    name: sni.clone(),
                });
            }
        }
        AppEvent::Http(h) => {
            if let Some(host) = &h.host {
                out.push(NameObs::Host {
                    server: env.dst_ip,
                    proto: env.proto,
                    port: env.dst_port,
                    name: host.clone(),
                });
            }
        }
        // The other protocols name no server (a new protocol need not come here).
        _ => {}
    }
}

fn dns_names(d: &DnsEvent, out: &mut Vec<NameObs>) {
    use dissect::app::dns::event::DnsRdata;
    for a in &d.answers {
        let addr = match &a.data {
            DnsRdata::A(v4) => std::net::IpAddr::V4(*v4),
            DnsRdata::Aaaa(v6) => std::net::IpAddr::V6(*v6),
            _ => continue,
        };
        // The name asked for (the CNAME chain's head) and the record's own.
        if let Some(q) = d.queries.first() {
            if !q.name.eq_ignore_ascii_case(&a.name) {
                out.push(NameObs::Dns {
                    addr,
                    name: q.name.clone(),
                });
            }
        }
        out.push(NameObs::Dns {
            addr,
            name: a.name.clone(),
        });
    }
}

impl RecordSink for DiscoverTap {
    fn flow(&mut self, rec: &FlowRecord) {
        self.flows.push(flow_obs(rec));
        self.hand_over(false);
    }

    fn app(&mut self, env: &AppEnvelope<'_>) {
        names_of(env, &mut self.names);
        self.events += 1;
        self.hand_over(false);
    }
}
