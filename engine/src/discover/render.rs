//! The rule base written as a table, CSV, JSON, Markdown, an nftables
//! ruleset or an iptables-restore file.

use std::fmt::Write as _;

use super::{Cidr, Direction, Rule, Totals};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
    Markdown,
    Nftables,
    Iptables,
    /// Kubernetes NetworkPolicies (YAML) for a pod CIDR scope.
    K8s,
}

/// Where the nftables allow list hooks in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Hook {
    /// Routed traffic (a firewall between clients and servers): stateful.
    #[default]
    Forward,
    /// Traffic to this host: stateful.
    Input,
    /// Every frame arriving on `--nft-device`, before routing: stateless
    /// (no conntrack there), so replies are allowed by their own rules.
    Ingress,
}

/// Settings of the firewall outputs.
#[derive(Clone, Debug)]
pub struct FirewallOptions {
    pub table: String,
    pub hook: Hook,
    pub device: Option<String>,
    pub log_prefix: String,
    /// k8s: the scope (the pod CIDR), the direction asked for, the namespace.
    pub scope: Vec<Cidr>,
    pub direction: Direction,
    pub namespace: String,
}

impl Default for FirewallOptions {
    fn default() -> FirewallOptions {
        FirewallOptions {
            table: "flowtap_allow".into(),
            hook: Hook::Forward,
            device: None,
            log_prefix: "flowtap-drop: ".into(),
            scope: Vec::new(),
            direction: Direction::Both,
            namespace: "default".into(),
        }
    }
}

fn port_text(r: &Rule) -> String {
    match (r.port, r.port_last) {
        (Some(p), Some(l)) => format!("{p}-{l}"),
        (Some(p), None) => p.to_string(),
        _ => "-".into(),
    }
}

const HEADER: [&str; 16] = [
    "source",
    "destination",
    "protocol",
    "port",
    "service",
    "direction",
    "flows",
    "records",
    "packets_to_server",
    "bytes_to_server",
    "packets_to_client",
    "bytes_to_client",
    "first_seen",
    "last_seen",
    "review",
    "description",
];

fn row(r: &Rule) -> [String; 16] {
    [
        r.source.clone(),
        r.destination.to_string(),
        r.protocol.clone(),
        port_text(r),
        r.service.unwrap_or("").to_string(),
        r.direction.unwrap_or("").to_string(),
        r.flows.to_string(),
        r.records.to_string(),
        r.packets_to_server.to_string(),
        r.bytes_to_server.to_string(),
        r.packets_to_client.to_string(),
        r.bytes_to_client.to_string(),
        r.first_seen.clone(),
        r.last_seen.clone(),
        if r.review { "yes" } else { "" }.to_string(),
        r.description.clone(),
    ]
}

pub fn render(
    format: Format,
    rules: &[Rule],
    totals: &Totals,
    fw: &FirewallOptions,
    origin: &str,
) -> String {
    match format {
        Format::Table => table(rules),
        Format::Csv => csv(rules),
        Format::Json => json(rules, totals),
        Format::Markdown => markdown(rules),
        Format::Nftables => nftables(rules, totals, fw, origin),
        Format::Iptables => iptables(rules, totals, fw, origin),
        Format::K8s => super::k8s::render(rules, totals, fw, origin),
    }
}

fn table(rules: &[Rule]) -> String {
    let head = [
        "#",
        "Source",
        "Destination",
        "Proto",
        "Port",
        "Flows",
        "Pkts >",
        "Bytes >",
        "Pkts <",
        "Bytes <",
        "First seen",
        "Last seen",
        "Review",
        "Description",
    ];
    let rows: Vec<Vec<String>> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                (i + 1).to_string(),
                r.source.clone(),
                r.destination.to_string(),
                r.protocol.clone(),
                port_text(r),
                r.flows.to_string(),
                r.packets_to_server.to_string(),
                r.bytes_to_server.to_string(),
                r.packets_to_client.to_string(),
                r.bytes_to_client.to_string(),
                r.first_seen.clone(),
                r.last_seen.clone(),
                if r.review { "!" } else { "" }.to_string(),
                r.description.clone(),
            ]
        })
        .collect();
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let numeric = |i: usize| matches!(i, 0 | 4..=9);
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            if i + 1 == cells.len() {
                l.push_str(c);
            } else if numeric(i) {
                let _ = write!(l, "{c:>width$}", width = w[i]);
            } else {
                let _ = write!(l, "{c:<width$}", width = w[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(
        &mut out,
        &head.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    for r in &rows {
        line(&mut out, r);
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(rules: &[Rule]) -> String {
    let mut out = HEADER.join(",");
    out.push('\n');
    for r in rules {
        let cells: Vec<String> = row(r).iter().map(|c| csv_field(c)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn json(rules: &[Rule], totals: &Totals) -> String {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        totals: &'a Totals,
        rules: &'a [Rule],
    }
    let mut s = serde_json::to_string_pretty(&Doc { totals, rules })
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

fn markdown(rules: &[Rule]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = String::from(
        "| # | Source | Destination | Protocol | Port | Flows | Packets (to server / to client) | Bytes (to server / to client) | First seen | Last seen | Review | Description |\n|---:|---|---|---|---:|---:|---:|---:|---|---|---|---|\n",
    );
    for (i, r) in rules.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {} | {} | {} |",
            i + 1,
            esc(&r.source),
            r.destination,
            r.protocol,
            port_text(r),
            r.flows,
            r.packets_to_server,
            r.packets_to_client,
            r.bytes_to_server,
            r.bytes_to_client,
            r.first_seen,
            r.last_seen,
            if r.review { "yes" } else { "" },
            esc(&r.description)
        );
    }
    out
}

/// A comment safe for nft (`"` and `\` removed, at most 128 bytes) or
/// iptables (at most 255).
fn comment(s: &str, max: usize) -> String {
    let mut c: String = s
        .chars()
        .map(|ch| {
            if ch == '"' || ch == '\\' || ch.is_control() || !ch.is_ascii() {
                '\''
            } else {
                ch
            }
        })
        .collect();
    if c.len() > max {
        c.truncate(max - 3);
        c.push_str("...");
    }
    c
}

fn nft_l4(proto: u8, v6: bool) -> String {
    match proto {
        6 => "tcp".into(),
        17 => "udp".into(),
        132 => "sctp".into(),
        1 if !v6 => "ip protocol icmp".into(),
        // The upper-layer protocol after any IPv6 extension headers.
        58 if v6 => "meta l4proto ipv6-icmp".into(),
        n if v6 => format!("meta l4proto {n}"),
        n => format!("ip protocol {n}"),
    }
}

fn nft_rule(r: &Rule, reply: bool) -> String {
    let v6 = !r.destination.is_ipv4();
    let fam = if v6 { "ip6" } else { "ip" };
    let (sa, da) = if reply {
        ("daddr", "saddr")
    } else {
        ("saddr", "daddr")
    };
    let mut s = format!("{fam} {sa} {} {fam} {da} {}", r.source_net, r.destination);
    let l4 = nft_l4(r.ip_proto, v6);
    match r.port {
        Some(_) => {
            let dir = if reply { "sport" } else { "dport" };
            // A range is `A-B` in nft.
            let _ = write!(s, " {l4} {dir} {}", port_text(r));
        }
        None => {
            let _ = write!(s, " {l4}");
        }
    }
    s
}

fn nftables(rules: &[Rule], totals: &Totals, fw: &FirewallOptions, origin: &str) -> String {
    let t = &fw.table;
    let mut out = String::new();
    let _ = writeln!(out, "#!/usr/sbin/nft -f");
    let _ = writeln!(
        out,
        "# flowtap discover: {} rules from {} flow records ({} folded) of {origin}",
        rules.len(),
        totals.records,
        totals.folded
    );
    let _ = writeln!(
        out,
        "# Review before use: rules marked 'review' were seen once."
    );
    // Declaring then deleting makes the file replace an older version of
    // the table, and also load where there is none.
    let _ = writeln!(out, "table inet {t}\ndelete table inet {t}\n");
    let _ = writeln!(out, "table inet {t} {{");
    let _ = writeln!(out, "\tchain allow {{");
    let stateful = fw.hook != Hook::Ingress;
    if stateful {
        let _ = writeln!(out, "\t\tct state established,related accept");
    }
    for r in rules {
        let c = comment(&r.description, 128);
        let ct = if stateful { " ct state new" } else { "" };
        let _ = writeln!(
            out,
            "\t\t{}{ct} counter accept comment \"{c}\"",
            nft_rule(r, false)
        );
        if !stateful {
            let _ = writeln!(
                out,
                "\t\t{} counter accept comment \"reply: {}\"",
                nft_rule(r, true),
                comment(&r.description, 120)
            );
        }
    }
    let _ = writeln!(
        out,
        "\t\tcounter log prefix \"{}\" drop comment \"not in the discovered rule base\"",
        comment(&fw.log_prefix, 64)
    );
    let _ = writeln!(out, "\t}}\n");
    let base = match fw.hook {
        Hook::Forward => "type filter hook forward priority filter; policy accept;".to_string(),
        Hook::Input => "type filter hook input priority filter; policy accept;".to_string(),
        Hook::Ingress => format!(
            "type filter hook ingress device \"{}\" priority filter; policy accept;",
            fw.device.as_deref().unwrap_or("eth0")
        ),
    };
    let name = match fw.hook {
        Hook::Forward => "forward",
        Hook::Input => "input",
        Hook::Ingress => "ingress",
    };
    let _ = writeln!(out, "\tchain {name} {{\n\t\t{base}");
    if fw.hook == Hook::Ingress {
        // Only IP is judged: ARP and the like pass.
        let _ = writeln!(out, "\t\tmeta protocol {{ ip, ip6 }} jump allow");
    } else {
        let _ = writeln!(out, "\t\tjump allow");
    }
    let _ = writeln!(out, "\t}}\n}}");
    out
}

fn ipt_rule(r: &Rule) -> String {
    let mut s = format!("-s {} -d {}/32", cidr_full(r), r.destination);
    // A range is `A:B` in iptables.
    let ports = r.port.map(|p| match r.port_last {
        Some(l) => format!("{p}:{l}"),
        None => p.to_string(),
    });
    match (r.ip_proto, ports) {
        (6, Some(p)) => {
            let _ = write!(s, " -p tcp -m tcp --dport {p}");
        }
        (17, Some(p)) => {
            let _ = write!(s, " -p udp -m udp --dport {p}");
        }
        (132, Some(p)) => {
            let _ = write!(s, " -p sctp -m sctp --dport {p}");
        }
        (1, _) => s.push_str(" -p icmp"),
        (n, _) => {
            let _ = write!(s, " -p {n}");
        }
    }
    s
}

fn cidr_full(r: &Rule) -> String {
    format!("{}/{}", r.source_net.addr, r.source_net.len)
}

fn iptables(rules: &[Rule], totals: &Totals, fw: &FirewallOptions, origin: &str) -> String {
    let chain = "FLOWTAP-ALLOW";
    let builtin = match fw.hook {
        Hook::Input => "INPUT",
        _ => "FORWARD",
    };
    let mut out = String::new();
    let v6 = rules.iter().filter(|r| !r.destination.is_ipv4()).count();
    let _ = writeln!(
        out,
        "# flowtap discover: {} rules from {} flow records ({} folded) of {origin}",
        rules.len(),
        totals.records,
        totals.folded
    );
    let _ = writeln!(out, "# iptables-restore (IPv4); {v6} IPv6 rules are left to ip6tables (use --format nftables for both)");
    let _ = writeln!(out, "*filter");
    let _ = writeln!(
        out,
        ":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]"
    );
    let _ = writeln!(out, ":{chain} - [0:0]");
    let _ = writeln!(out, "-A {builtin} -j {chain}");
    let _ = writeln!(
        out,
        "-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    );
    for r in rules.iter().filter(|r| r.destination.is_ipv4()) {
        let _ = writeln!(
            out,
            "-A {chain} {} -m conntrack --ctstate NEW -m comment --comment \"{}\" -j ACCEPT",
            ipt_rule(r),
            comment(&r.description, 250)
        );
    }
    let _ = writeln!(
        out,
        "-A {chain} -m comment --comment \"not in the discovered rule base\" -j LOG --log-prefix \"{}\"",
        comment(&fw.log_prefix, 29)
    );
    let _ = writeln!(out, "-A {chain} -j DROP");
    let _ = writeln!(out, "COMMIT");
    out
}
