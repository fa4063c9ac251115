use std::net::IpAddr;

use super::input::{parse_line, read_stream, Parsed, ReadStats};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[allow(clippy::too_many_arguments)]
fn flow(o: &str, op: u16, r: &str, rp: u16, proto: u8, acc: Accepted, pk: (u64, u64)) -> FlowObs {
    FlowObs {
        orig_ip: ip(o),
        resp_ip: ip(r),
        orig_port: op,
        resp_port: rp,
        proto,
        start_ns: 1_000,
        end_ns: 2_000,
        orig_pkts: pk.0,
        orig_bytes: pk.0 * 100,
        resp_pkts: pk.1,
        resp_bytes: pk.1 * 1000,
        accepted: acc,
        app_proto: None,
        first_slice: true,
    }
}

#[test]
fn server_is_the_syn_ack_sender() {
    // The originator sent the SYN-ACK (capture began after the SYN): it is the server.
    let f = flow(
        "10.0.0.5",
        443,
        "10.0.0.9",
        50000,
        6,
        Accepted::Originator,
        (3, 4),
    );
    assert_eq!(
        server_side(&f),
        (ip("10.0.0.9"), ip("10.0.0.5"), 443, false)
    );
    // The handshake beats the ports: a server on a high port.
    let f = flow(
        "10.0.0.9",
        80,
        "10.0.0.5",
        40000,
        6,
        Accepted::Responder,
        (3, 4),
    );
    assert_eq!(
        server_side(&f),
        (ip("10.0.0.9"), ip("10.0.0.5"), 40000, true)
    );
}

#[test]
fn udp_server_by_port_then_request_response() {
    // DNS reply seen as the first packet: the named port wins.
    let f = flow(
        "10.0.0.53",
        53,
        "10.0.0.7",
        41000,
        17,
        Accepted::Unknown,
        (1, 1),
    );
    assert_eq!(
        server_side(&f),
        (ip("10.0.0.7"), ip("10.0.0.53"), 53, false)
    );
    // A registered port against an ephemeral one.
    let f = flow(
        "10.0.0.7",
        45000,
        "10.0.0.8",
        8125,
        17,
        Accepted::Unknown,
        (1, 0),
    );
    assert_eq!(server_side(&f).2, 8125);
    // Both alike: the responder answered a request.
    let f = flow(
        "10.0.0.7",
        45000,
        "10.0.0.8",
        46000,
        17,
        Accepted::Unknown,
        (1, 1),
    );
    assert_eq!(
        server_side(&f),
        (ip("10.0.0.7"), ip("10.0.0.8"), 46000, true)
    );
    // No ports (ICMP): responder, port none.
    let f = flow("10.0.0.7", 8, "10.0.0.8", 0, 1, Accepted::Unknown, (1, 1));
    assert_eq!(server_side(&f).2, 0);
}

#[test]
fn ephemeral_ports_collapse_and_counts_add_up() {
    let mut a = Aggregator::new(Options::default());
    for sp in [40001, 40002, 40003] {
        a.add_flow(&flow(
            "10.1.1.1",
            sp,
            "10.2.2.2",
            443,
            6,
            Accepted::Responder,
            (2, 3),
        ));
    }
    // The reverse orientation of the same service folds into the same rule.
    a.add_flow(&flow(
        "10.2.2.2",
        443,
        "10.1.1.1",
        40009,
        6,
        Accepted::Originator,
        (5, 7),
    ));
    let r = a.rules();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!((r.source.as_str(), r.port), ("10.1.1.1", Some(443)));
    assert_eq!(r.flows, 4);
    assert_eq!(r.packets_to_server, 2 * 3 + 7);
    assert_eq!(r.packets_to_client, 3 * 3 + 5);
    assert_eq!(r.bytes_to_server, 200 * 3 + 7000);
    assert_eq!(r.bytes_to_client, 3000 * 3 + 500);
    assert_eq!(r.service, Some("https"));
    assert_eq!(r.by_handshake, 4);
    assert!(!r.review);
    assert_eq!(a.totals.folded, 4);
    assert_eq!(a.totals.packets, r.packets());
}

#[test]
fn grouping_and_group_map() {
    let opts = Options {
        group_v4: Some(24),
        group_map: vec![
            ("web".into(), Cidr::parse("10.9.0.0/16").unwrap()),
            ("web-admin".into(), Cidr::parse("10.9.9.0/24").unwrap()),
        ],
        ..Options::default()
    };
    let mut a = Aggregator::new(opts);
    a.add_flow(&flow(
        "10.1.1.1",
        40000,
        "10.2.2.2",
        22,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    a.add_flow(&flow(
        "10.1.1.77",
        40000,
        "10.2.2.2",
        22,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    a.add_flow(&flow(
        "10.9.1.1",
        40000,
        "10.2.2.2",
        22,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    a.add_flow(&flow(
        "10.9.9.1",
        40000,
        "10.2.2.2",
        22,
        6,
        Accepted::Responder,
        (30, 1),
    ));
    let r = a.rules();
    let srcs: Vec<(&str, u64)> = r.iter().map(|r| (r.source.as_str(), r.flows)).collect();
    assert_eq!(
        srcs,
        vec![
            ("web-admin (10.9.9.0/24)", 1),
            ("10.1.1.0/24", 2),
            ("web (10.9.0.0/16)", 1)
        ]
    );
    assert_eq!(r[0].source_group.as_deref(), Some("web-admin"));
    assert!(r[2].review && !r[1].review);
}

#[test]
fn scope_direction_and_exclusions() {
    let opts = |d| Options {
        scope: vec![Cidr::parse("10.48.52.240").unwrap()],
        direction: d,
        exclude: vec![Cidr::parse("192.168.0.0/16").unwrap()],
        ..Options::default()
    };
    let flows = [
        // inbound: a client reaches the host's service
        flow(
            "10.1.1.1",
            40000,
            "10.48.52.240",
            443,
            6,
            Accepted::Responder,
            (1, 1),
        ),
        // outbound: the host asks DNS
        flow(
            "10.48.52.240",
            40000,
            "10.0.0.53",
            53,
            17,
            Accepted::Unknown,
            (1, 1),
        ),
        // not the host's
        flow(
            "10.1.1.1",
            40000,
            "10.0.0.53",
            53,
            17,
            Accepted::Unknown,
            (1, 1),
        ),
        // excluded
        flow(
            "192.168.1.1",
            40000,
            "10.48.52.240",
            22,
            6,
            Accepted::Responder,
            (1, 1),
        ),
    ];
    for (d, want) in [
        (Direction::Both, vec![("inbound", 443), ("outbound", 53)]),
        (Direction::Inbound, vec![("inbound", 443)]),
        (Direction::Outbound, vec![("outbound", 53)]),
    ] {
        let mut a = Aggregator::new(opts(d));
        for f in &flows {
            a.add_flow(f);
        }
        let mut got: Vec<(&str, u16)> = a
            .rules()
            .iter()
            .map(|r| (r.direction.unwrap(), r.port.unwrap()))
            .collect();
        got.sort();
        assert_eq!(got, want, "{d:?}");
        assert_eq!(a.totals.excluded, 1);
        assert_eq!(
            a.totals.folded + a.totals.out_of_scope + a.totals.excluded,
            4
        );
    }
}

#[test]
fn names_describe_the_rule() {
    let mut a = Aggregator::new(Options::default());
    let mut f = flow(
        "10.1.1.1",
        40000,
        "10.2.2.2",
        443,
        6,
        Accepted::Responder,
        (1, 1),
    );
    f.app_proto = Some("tls".into());
    a.add_flow(&f);
    a.add_name(&NameObs::Dns {
        addr: ip("10.2.2.2"),
        name: "API.example.com".into(),
    });
    a.add_name(&NameObs::Sni {
        server: ip("10.2.2.2"),
        proto: 6,
        port: 443,
        name: "api.example.com".into(),
    });
    // Another port's SNI is not this rule's.
    a.add_name(&NameObs::Sni {
        server: ip("10.2.2.2"),
        proto: 6,
        port: 8443,
        name: "admin.example.com".into(),
    });
    let r = &a.rules()[0];
    assert_eq!(r.dns_names, vec!["api.example.com"]);
    assert_eq!(r.tls_sni, vec!["api.example.com"]);
    assert_eq!(
        r.description,
        "tls (https); sni api.example.com; dns api.example.com; seen once: review"
    );
}

const NATIVE: &str = r#"{"timestamp":"2026-07-06T12:00:00.147655Z","event_type":"flow","flow_id":1,"src_ip":"10.1.3.1","src_port":56450,"dest_ip":"198.51.100.112","dest_port":80,"proto":"TCP","ip_proto":6,"app_proto":"http","flow":{"start":"2026-07-06T12:00:00.071407Z","end":"2026-07-06T12:00:00.147655Z","duration_us":76248,"pkts_toserver":6,"bytes_toserver":591,"pkts_toclient":3,"bytes_toclient":332,"reason":"fin","slice":0},"tcp":{"tcp_flags_ts":"1b","tcp_flags_tc":"1b","state":"SF","history":"ShADdFf"}}"#;
const EVE: &str = r#"{"timestamp":"2026-07-06T12:00:00.147655+0000","flow_id":1,"event_type":"flow","src_ip":"10.1.3.1","src_port":56450,"dest_ip":"198.51.100.112","dest_port":80,"ip_v":4,"proto":"TCP","app_proto":"http","flow":{"pkts_toserver":6,"pkts_toclient":3,"bytes_toserver":591,"bytes_toclient":332,"start":"2026-07-06T12:00:00.071407+0000","end":"2026-07-06T12:00:00.147655+0000","age":0,"state":"closed","reason":"timeout","alerted":false},"tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}"#;
const NUTANIX: &str = "2026-07-06T12:00:00.147655Z SRC=10.1.3.1 DST=198.51.100.112 PROTO=TCP SPORT=56450 DPORT=80 ORIG: PKTS=6 BYTES=591 REPLY: PKTS=3 BYTES=332";

#[test]
fn the_three_line_formats_read_alike() {
    let mut names = Vec::new();
    let Parsed::Flow(n) = parse_line(NATIVE, &mut names).unwrap() else {
        panic!("native flow")
    };
    let Parsed::Flow(e) = parse_line(EVE, &mut names).unwrap() else {
        panic!("eve flow")
    };
    // A syslog header in front changes nothing.
    let Parsed::Flow(s) = parse_line(
        &format!("<134>1 2026-07-06T12:00:00Z probe flowtap 7 flow - {NATIVE}"),
        &mut names,
    )
    .unwrap() else {
        panic!("syslog flow")
    };
    let Parsed::Flow(x) = parse_line(NUTANIX, &mut names).unwrap() else {
        panic!("nutanix flow")
    };
    assert_eq!(n, e);
    assert_eq!(n, s);
    assert_eq!(n.accepted, Accepted::Responder);
    assert_eq!((n.orig_pkts, n.resp_bytes, n.resp_port), (6, 332, 80));
    assert_eq!(
        n.start_ns,
        net::parse_time_ns("2026-07-06T12:00:00.071407Z").unwrap()
    );
    assert_eq!((x.orig_ip, x.resp_ip, x.proto), (n.orig_ip, n.resp_ip, 6));
    assert_eq!(
        (x.orig_pkts, x.orig_bytes, x.resp_pkts, x.resp_bytes),
        (6, 591, 3, 332)
    );
    assert_eq!(x.end_ns, n.end_ns);
    assert!(names.is_empty());
}

#[test]
fn app_lines_teach_names() {
    let mut names = Vec::new();
    let dns = r#"{"timestamp":"2026-07-06T12:00:00.053203Z","flow_id":2,"event_type":"dns","src_ip":"10.1.5.87","src_port":34881,"dest_ip":"10.0.0.54","dest_port":53,"proto":"UDP","dns":{"queries":[{"rrname":"www.example","rrtype":"A","rrclass":1}],"answers":[{"rrname":"www.example","rrtype":"CNAME","ttl":300,"rdata":"edge.example"},{"rrname":"edge.example","rrtype":"A","ttl":300,"rdata":"3.58.78.106"}]}}"#;
    assert_eq!(parse_line(dns, &mut names).unwrap(), Parsed::App);
    assert_eq!(
        names,
        vec![
            NameObs::Dns {
                addr: ip("3.58.78.106"),
                name: "www.example".into()
            },
            NameObs::Dns {
                addr: ip("3.58.78.106"),
                name: "edge.example".into()
            }
        ]
    );
    names.clear();
    let eve_http = r#"{"event_type":"http","src_ip":"10.1.7.111","src_port":35513,"dest_ip":"198.51.100.151","dest_port":80,"proto":"TCP","http":{"hostname":"india68.co.uk"}}"#;
    assert_eq!(parse_line(eve_http, &mut names).unwrap(), Parsed::App);
    assert_eq!(
        names,
        vec![NameObs::Host {
            server: ip("198.51.100.151"),
            proto: 6,
            port: 80,
            name: "india68.co.uk".into()
        }]
    );
    assert_eq!(
        parse_line(r#"{"event_type":"stats","stats":{}}"#, &mut names).unwrap(),
        Parsed::Other
    );
    assert_eq!(parse_line("   ", &mut names).unwrap(), Parsed::Blank);
}

#[test]
fn bad_lines_name_file_and_line() {
    let text = format!("{NATIVE}\n{NUTANIX}\n{{\"event_type\":\"flow\",\"src_ip\":\"nope\"}}\n");
    let mut a = Aggregator::new(Options::default());
    let mut st = ReadStats::default();
    let e = read_stream(text.as_bytes(), "week.log", &mut a, false, &mut st).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("week.log:3: "), "{msg}");
    assert_eq!(a.totals.records, 2);
    for (bad, why) in [
        ("hello world", "neither a JSON event"),
        ("2026-07-06T12:00:00Z SRC=10.0.0.1 DST=10.0.0.2 PROTO=XYZ", "unknown PROTO"),
        ("{\"event_type\":\"flow\"", "bad JSON"),
        ("{\"event_type\":\"flow\",\"src_ip\":\"10.0.0.1\",\"dest_ip\":\"10.0.0.2\",\"proto\":\"TCP\"}", "without its flow object"),
    ] {
        let err = parse_line(bad, &mut Vec::new()).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
    // Skipping: counted, the first one named, the rest read.
    let text = format!("garbage\n{NATIVE}\n\u{0}\u{1}\n{EVE}\n");
    let mut a = Aggregator::new(Options::default());
    let mut st = ReadStats::default();
    read_stream(text.as_bytes(), "w.log", &mut a, true, &mut st).unwrap();
    assert_eq!((st.bad, a.totals.records, st.lines), (2, 2, 4));
    assert!(st.first_bad.unwrap().starts_with("w.log:1: "));
}

#[test]
fn firewall_outputs_hold_every_rule() {
    use super::render::{render, FirewallOptions, Format, Hook};
    let mut a = Aggregator::new(Options {
        group_v4: Some(24),
        ..Options::default()
    });
    a.add_flow(&flow(
        "10.1.1.1",
        40000,
        "10.2.2.2",
        443,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    a.add_flow(&flow(
        "10.1.1.9",
        40000,
        "10.0.0.53",
        53,
        17,
        Accepted::Unknown,
        (1, 1),
    ));
    a.add_flow(&flow(
        "2001:db8::1",
        40000,
        "2001:db8::2",
        22,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    a.add_flow(&flow(
        "10.1.1.1",
        0,
        "10.2.2.2",
        0,
        1,
        Accepted::Unknown,
        (1, 1),
    ));
    a.add_flow(&flow(
        "2001:db8::1",
        128,
        "2001:db8::2",
        0,
        58,
        Accepted::Unknown,
        (1, 1),
    ));
    let rules = a.rules();
    let fw = FirewallOptions::default();
    let nft = render(Format::Nftables, &rules, &a.totals, &fw, "t");
    for want in [
        "ip saddr 10.1.1.0/24 ip daddr 10.2.2.2 tcp dport 443 ct state new counter accept comment \"tls",
        "ip saddr 10.1.1.0/24 ip daddr 10.0.0.53 udp dport 53 ct state new counter accept",
        "ip6 saddr 2001:db8::1 ip6 daddr 2001:db8::2 tcp dport 22 ct state new counter accept",
        "ip saddr 10.1.1.0/24 ip daddr 10.2.2.2 ip protocol icmp ct state new counter accept",
        "ip6 saddr 2001:db8::1 ip6 daddr 2001:db8::2 meta l4proto ipv6-icmp ct state new counter accept",
        "counter log prefix \"flowtap-drop: \" drop",
        "type filter hook forward priority filter; policy accept;",
    ] {
        assert!(nft.contains(want.trim_end_matches("\"tls")), "{want}\n{nft}");
    }
    let ing = render(
        Format::Nftables,
        &rules,
        &a.totals,
        &FirewallOptions {
            hook: Hook::Ingress,
            device: Some("veth9".into()),
            ..FirewallOptions::default()
        },
        "t",
    );
    assert!(ing.contains("ip daddr 10.1.1.0/24 ip saddr 10.2.2.2 tcp sport 443 counter accept"));
    assert!(ing.contains("hook ingress device \"veth9\""));
    assert!(!ing.contains("ct state"));
    let ipt = render(Format::Iptables, &rules, &a.totals, &fw, "t");
    assert!(ipt.contains("-A FLOWTAP-ALLOW -s 10.1.1.0/24 -d 10.2.2.2/32 -p tcp -m tcp --dport 443 -m conntrack --ctstate NEW"));
    assert!(ipt.contains("-A FLOWTAP-ALLOW -j DROP\nCOMMIT\n"));
    assert!(!ipt.contains("2001:db8"));
    let csv = render(Format::Csv, &rules, &a.totals, &fw, "t");
    assert_eq!(csv.lines().count(), rules.len() + 1);
    let md = render(Format::Markdown, &rules, &a.totals, &fw, "t");
    assert_eq!(md.lines().count(), rules.len() + 2);
    let js: serde_json::Value =
        serde_json::from_str(&render(Format::Json, &rules, &a.totals, &fw, "t")).unwrap();
    assert_eq!(js["rules"].as_array().unwrap().len(), 5);
    assert_eq!(js["totals"]["folded"], 5);
}

#[test]
fn name_sets_do_not_depend_on_arrival_order() {
    let names: Vec<String> = (0..100)
        .map(|i| format!("h{:03}.example", (i * 37) % 100))
        .collect();
    let mut a = NameSet::default();
    let mut b = NameSet::default();
    for n in &names {
        a.add(n);
    }
    for n in names.iter().rev() {
        b.add(&n.to_uppercase());
        b.add(n);
    }
    assert_eq!(a, b);
    assert_eq!(a.names.len(), KEEP_NAMES);
    assert!(a.overflow);
    let l = a.list();
    assert_eq!(l[0], "h000.example");
    assert_eq!(l[MAX_NAMES], "(+56+ more)");
    let mut c = NameSet::default();
    c.add("b.example");
    c.add("A.example");
    c.add("b.example");
    assert_eq!(c.list(), vec!["a.example", "b.example"]);
}

#[test]
fn a_baseline_allows_its_blocks() {
    use super::baseline::{drift, Allowed};
    let mut a = Aggregator::new(Options::default());
    a.add_flow(&flow(
        "10.1.1.1",
        40000,
        "10.2.2.2",
        443,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    a.add_flow(&flow(
        "10.9.1.1",
        40000,
        "10.2.2.2",
        443,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    a.add_flow(&flow(
        "10.1.1.1",
        40000,
        "10.2.2.2",
        8443,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    a.add_flow(&flow(
        "10.1.1.1",
        40000,
        "10.2.2.2",
        443,
        17,
        Accepted::Unknown,
        (1, 1),
    ));
    let base = [Allowed {
        source: Cidr::parse("10.1.0.0/16").unwrap(),
        destination: ip("10.2.2.2"),
        proto: 6,
        port: Some(443),
        port_last: None,
    }];
    let mut rules = a.rules();
    assert_eq!(drift(&mut rules, &base), 1);
    let mut left: Vec<(String, u8, Option<u16>)> = rules
        .iter()
        .map(|r| (r.source.clone(), r.ip_proto, r.port))
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            ("10.1.1.1".to_string(), 6, Some(8443)),
            ("10.1.1.1".to_string(), 17, Some(443)),
            ("10.9.1.1".to_string(), 6, Some(443)),
        ]
    );
    // A host baseline does not allow the block around it.
    let mut g = Aggregator::new(Options {
        group_v4: Some(24),
        ..Options::default()
    });
    g.add_flow(&flow(
        "10.1.1.1",
        40000,
        "10.2.2.2",
        443,
        6,
        Accepted::Responder,
        (1, 1),
    ));
    let mut rules = g.rules();
    let host = [Allowed {
        source: Cidr::parse("10.1.1.1").unwrap(),
        ..base[0].clone()
    }];
    assert_eq!(drift(&mut rules, &host), 0);
    assert_eq!(rules.len(), 1);
}

#[test]
fn max_rules_keeps_the_largest_and_counts_the_rest() {
    let mut a = Aggregator::new(Options {
        max_rules: Some(10),
        ..Options::default()
    });
    let mut expect_bytes = 0;
    for i in 0..1000u64 {
        // Client i sends i+1 packets: the largest rules are the last clients.
        let c = format!("10.1.{}.{}", i / 250, i % 250 + 1);
        let f = flow(
            &c,
            40000,
            "10.2.2.2",
            443,
            6,
            Accepted::Responder,
            (i + 1, 0),
        );
        expect_bytes += f.orig_bytes;
        a.add_flow(&f);
        assert!(a.len() <= 21, "{}", a.len());
    }
    a.finish();
    let r = a.rules();
    assert_eq!(r.len(), 10);
    assert_eq!(r[0].packets_to_server, 1000);
    assert_eq!(r[9].packets_to_server, 991);
    let t = &a.totals;
    assert_eq!(t.pruned_rules, 990);
    assert_eq!(
        r.iter().map(|r| r.records).sum::<u64>() + t.pruned_records,
        1000
    );
    assert_eq!(
        r.iter().map(|r| r.bytes()).sum::<u64>() + t.pruned_bytes,
        expect_bytes
    );
    assert_eq!(t.bytes, expect_bytes);
}
