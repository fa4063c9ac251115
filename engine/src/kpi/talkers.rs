//! Top talkers: bytes each address sent and received, ranked by volume
//! (counted when a flow record is emitted: a long flow shows up at its
//! interim records and its end).

use std::net::IpAddr;

use dissect::event::FlowRecord;
use output::metrics::{fig, Exposition, Kind};

use super::{list_label, AppMetricsSection, Merge, TopN};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Talker {
    sent: u64,
    received: u64,
}

impl Merge for Talker {
    fn merge(&mut self, o: &Self) {
        self.sent += o.sent;
        self.received += o.received;
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Talkers {
    hosts: TopN<IpAddr, Talker>,
}

impl Talkers {
    pub(super) fn new(cfg: &AppMetricsSection) -> Talkers {
        Talkers {
            hosts: TopN::new(cfg.hosts),
        }
    }

    pub(super) fn observe(&mut self, rec: &FlowRecord) {
        let (to_server, to_client) = (rec.orig.bytes, rec.resp.bytes);
        let total = to_server + to_client;
        let src = self.hosts.entry_weighted(&rec.src_ip, total);
        src.sent += to_server;
        src.received += to_client;
        let dst = self.hosts.entry_weighted(&rec.dst_ip, total);
        dst.sent += to_client;
        dst.received += to_server;
    }

    pub(super) fn rebalance(&mut self) {
        self.hosts.rebalance();
    }

    pub(super) fn list(&self, e: &mut Exposition) {
        e.declare_all(&[("flowtap_host_bytes_total", Kind::Counter, BYTES)]);
        let kept = self.hosts.iter().map(|(ip, t)| (ip.to_string(), t));
        for (host, t) in kept.chain(std::iter::once(("other".to_string(), self.hosts.other()))) {
            if t.sent + t.received == 0 {
                continue;
            }
            for (dir, v) in [("sent", t.sent), ("received", t.received)] {
                let l = [("host", host.as_str()), ("direction", dir)];
                fig(
                    e,
                    "",
                    "flowtap_host_bytes_total",
                    Kind::Counter,
                    BYTES,
                    &l,
                    v,
                );
            }
        }
        list_label(e, "host", &self.hosts);
    }
}

const BYTES: &str = "Bytes each address sent and received (IP layer, counted when flow records are emitted), the heaviest addresses: top talkers.";
