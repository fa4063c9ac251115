//! The rule base as Kubernetes NetworkPolicies (`--format k8s`), for a
//! scope that is a pod CIDR.
//!
//! One policy per scoped endpoint a rule names (a pod address, or a client
//! block of `--group`): its ingress rules are the discovered rules whose
//! server it is (`from` the rule's source as an `ipBlock`, with the port or
//! `port`/`endPort` range), its egress rules those whose client it is (`to`
//! the server's address). A policy cannot name a pod by address, so each
//! selects the pods labelled `flowtap.io/pod-ip=<address>` (`10.244.1.5`,
//! or `10.244.1.0-24` for a block): label the pods so, or replace the
//! selector with their own labels when reviewing. `--direction inbound`
//! writes ingress policies only, `outbound` egress only, `both` both; a
//! policy type with no discovered rule denies that direction, as an allow
//! list does. Descriptions are YAML comments above each rule and
//! annotations (`flowtap.io/ingress-N`, `flowtap.io/egress-N`). Protocols
//! NetworkPolicy cannot express (ICMP, GRE, ...: only TCP, UDP and SCTP have
//! ports there) are listed in the header, not allowed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::render::FirewallOptions;
use super::{Cidr, Direction, Rule, Totals};

/// The label (and policy name part) of a subject: `10.244.1.5`,
/// `10.244.1.0-24`, `fd00--5` (label values hold no `:` or `/`).
pub fn subject_label(c: &Cidr) -> String {
    let a = c.addr.to_string().replace(':', "-");
    let mut v = if c.is_host() {
        a
    } else {
        format!("{a}-{}", c.len)
    };
    // A label value begins and ends with an alphanumeric character.
    if v.starts_with('-') {
        v.insert(0, '0');
    }
    if v.ends_with('-') {
        v.push('0');
    }
    v
}

/// The label key pods are selected by.
pub const POD_LABEL: &str = "flowtap.io/pod-ip";

fn y(s: &str) -> String {
    // A JSON string is a YAML double-quoted scalar.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn host_cidr(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

fn block_cidr(c: &Cidr) -> String {
    format!("{}/{}", c.addr, c.len)
}

#[derive(Default)]
struct Policy<'a> {
    ingress: Vec<&'a Rule>,
    egress: Vec<&'a Rule>,
}

fn in_scope(scope: &[Cidr], c: &Cidr) -> bool {
    scope.iter().any(|s| s.len <= c.len && s.contains(&c.addr))
}

fn ports(out: &mut String, r: &Rule, indent: &str) {
    let proto = match r.ip_proto {
        6 => "TCP",
        17 => "UDP",
        132 => "SCTP",
        _ => return,
    };
    let _ = writeln!(out, "{indent}ports:");
    let _ = writeln!(out, "{indent}- protocol: {proto}");
    if let Some(p) = r.port {
        let _ = writeln!(out, "{indent}  port: {p}");
        if let Some(l) = r.port_last {
            let _ = writeln!(out, "{indent}  endPort: {l}");
        }
    }
}

/// The policies, as a multi-document YAML file.
pub fn render(rules: &[Rule], totals: &Totals, fw: &FirewallOptions, origin: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# flowtap discover: {} rules from {} flow records ({} folded) of {origin}",
        rules.len(),
        totals.records,
        totals.folded
    );
    let _ = writeln!(
        out,
        "# Kubernetes NetworkPolicies for the scope {}: each selects the pods labelled {POD_LABEL}=<address>;",
        fw.scope
            .iter()
            .map(block_cidr)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "# label them (kubectl label pod NAME {POD_LABEL}=ADDRESS) or put their own labels in podSelector."
    );
    let _ = writeln!(
        out,
        "# Review before use: rules marked 'review' were seen once."
    );
    let ingress_on = fw.direction != Direction::Outbound;
    let egress_on = fw.direction != Direction::Inbound;
    let mut policies: BTreeMap<Cidr, Policy<'_>> = BTreeMap::new();
    let mut unexpressible = Vec::new();
    for r in rules {
        if !matches!(r.ip_proto, 6 | 17 | 132) {
            unexpressible.push(r);
            continue;
        }
        let server = Cidr::of(
            r.destination,
            if r.destination.is_ipv4() { 32 } else { 128 },
        );
        if ingress_on && in_scope(&fw.scope, &server) {
            policies.entry(server).or_default().ingress.push(r);
        }
        if egress_on && in_scope(&fw.scope, &r.source_net) {
            policies.entry(r.source_net).or_default().egress.push(r);
        }
    }
    if !unexpressible.is_empty() {
        let _ = writeln!(
            out,
            "# {} rules left out: NetworkPolicy has ports for TCP, UDP and SCTP only:",
            unexpressible.len()
        );
        for r in &unexpressible {
            let _ = writeln!(
                out,
                "#   {} -> {} {}: {}",
                r.source,
                r.destination,
                r.protocol,
                one_line(&r.description)
            );
        }
    }
    for (subject, p) in &policies {
        let label = subject_label(subject);
        let _ = writeln!(out, "---");
        let _ = writeln!(out, "apiVersion: networking.k8s.io/v1");
        let _ = writeln!(out, "kind: NetworkPolicy");
        let _ = writeln!(out, "metadata:");
        let _ = writeln!(out, "  name: {}", y(&format!("flowtap-{label}")));
        let _ = writeln!(out, "  namespace: {}", y(&fw.namespace));
        let _ = writeln!(out, "  labels:");
        let _ = writeln!(out, "    app.kubernetes.io/managed-by: flowtap");
        let _ = writeln!(out, "  annotations:");
        let _ = writeln!(out, "    flowtap.io/subject: {}", y(&subject.to_string()));
        for (kind, list) in [("ingress", &p.ingress), ("egress", &p.egress)] {
            for (i, r) in list.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    flowtap.io/{kind}-{}: {}",
                    i + 1,
                    y(&format!(
                        "{} -> {} {} {}: {}",
                        r.source,
                        r.destination,
                        r.protocol,
                        r.port.map_or("-".into(), |p| match r.port_last {
                            Some(l) => format!("{p}-{l}"),
                            None => p.to_string(),
                        }),
                        r.description
                    ))
                );
            }
        }
        let _ = writeln!(out, "spec:");
        let _ = writeln!(out, "  podSelector:");
        let _ = writeln!(out, "    matchLabels:");
        let _ = writeln!(out, "      {POD_LABEL}: {}", y(&label));
        let _ = writeln!(out, "  policyTypes:");
        if ingress_on {
            let _ = writeln!(out, "  - Ingress");
        }
        if egress_on {
            let _ = writeln!(out, "  - Egress");
        }
        if ingress_on {
            if p.ingress.is_empty() {
                let _ = writeln!(out, "  # no inbound connection seen: all ingress denied");
                let _ = writeln!(out, "  ingress: []");
            } else {
                let _ = writeln!(out, "  ingress:");
            }
            for (i, r) in p.ingress.iter().enumerate() {
                let _ = writeln!(out, "  # ingress-{}: {}", i + 1, one_line(&r.description));
                let _ = writeln!(out, "  - from:");
                let _ = writeln!(out, "    - ipBlock:");
                let _ = writeln!(out, "        cidr: {}", y(&block_cidr(&r.source_net)));
                ports(&mut out, r, "    ");
            }
        }
        if egress_on {
            if p.egress.is_empty() {
                let _ = writeln!(out, "  # no outbound connection seen: all egress denied");
                let _ = writeln!(out, "  egress: []");
            } else {
                let _ = writeln!(out, "  egress:");
            }
            for (i, r) in p.egress.iter().enumerate() {
                let _ = writeln!(out, "  # egress-{}: {}", i + 1, one_line(&r.description));
                let _ = writeln!(out, "  - to:");
                let _ = writeln!(out, "    - ipBlock:");
                let _ = writeln!(out, "        cidr: {}", y(&host_cidr(&r.destination)));
                ports(&mut out, r, "    ");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_valid_label_values() {
        let c = |s: &str| Cidr::parse(s).unwrap();
        assert_eq!(subject_label(&c("10.244.1.5")), "10.244.1.5");
        assert_eq!(subject_label(&c("10.244.1.0/24")), "10.244.1.0-24");
        assert_eq!(subject_label(&c("fd00::5")), "fd00--5");
        assert_eq!(subject_label(&c("::1")), "0--1");
        assert_eq!(subject_label(&c("fd00::/64")), "fd00---64");
    }
}
