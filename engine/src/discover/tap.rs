//! Receives a replay's flow records and app events in process (no JSON)
//! and folds them into a shared [`Aggregator`].

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use dissect::app::{AppEvent, DnsEvent};
use dissect::event::{AppEnvelope, FlowRecord};

use super::{Accepted, Aggregator, FlowObs, NameObs};
use crate::flow::RecordSink;

/// A worker's tap: every record and event goes to the shared aggregate
/// (one lock per record; discovery is not the capture hot path).
pub struct DiscoverTap {
    agg: Arc<Mutex<Aggregator>>,
}

impl DiscoverTap {
    pub fn new(agg: Arc<Mutex<Aggregator>>) -> DiscoverTap {
        DiscoverTap { agg }
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
        let obs = flow_obs(rec);
        if let Ok(mut a) = self.agg.lock() {
            a.add_flow(&obs);
        }
    }

    fn app(&mut self, env: &AppEnvelope<'_>) {
        let mut names = Vec::new();
        names_of(env, &mut names);
        if let Ok(mut a) = self.agg.lock() {
            a.add_app_event();
            for n in &names {
                a.add_name(n);
            }
        }
    }
}
