//! `flowtap discover` end to end: the real binary on W1 and the corpus.
//!
//! The rule table must fold every flow record exactly once: the test
//! assigns each record of `flowtap run`'s own output to the rules
//! independently (by address, block, protocol and port, in either
//! orientation) and checks each rule's flows, records, packets and bytes
//! per direction and first/last seen against the sum of its records. The
//! same rules must come out of the capture replayed in process and of the
//! flow logs (native, EVE, gzip, zstd); Nutanix lines carry no handshake,
//! app protocol or names, so only their counters are compared. The
//! firewall outputs must load (`nft -c -f`, `iptables-restore --test`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::netpair::Net;
use common::*;

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

fn w1(dir: &Path) -> PathBuf {
    let p = dir.join("w1.pcap");
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen_bench_pcap.py");
    let o = Command::new("python3")
        .arg(&gen)
        .arg("-o")
        .arg(&p)
        .args(["-n", "200000", "--seed", "1"])
        .output()
        .expect("python3 must be installed (scripts/setup.sh)");
    assert!(
        o.status.success(),
        "{} failed: {}",
        gen.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    p
}

fn flowtap(args: &[&str]) -> std::process::Output {
    Command::new(FLOWTAP)
        .args(args)
        .output()
        .expect("run flowtap")
}

/// `flowtap run` writing native, EVE and Nutanix logs into `dir`.
fn logs(pcap: &Path, dir: &Path, tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let n = dir.join(format!("{tag}.native.json"));
    let e = dir.join(format!("{tag}.eve.json"));
    let x = dir.join(format!("{tag}.nutanix.log"));
    let o = flowtap(&[
        "run",
        "--no-progress",
        "-q",
        "--workers",
        "2",
        "--pcap",
        pcap.to_str().unwrap(),
        "-o",
        n.to_str().unwrap(),
        "-o",
        &format!("{}?schema=eve", e.display()),
        "-o",
        &format!("{}?schema=nutanix", x.display()),
    ]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(2),
        "flowtap run {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    (n, e, x)
}

/// `flowtap discover ARGS --format json`: the document.
fn discover(args: &[&str]) -> Value {
    let mut a = vec!["discover", "--format", "json", "-q", "--workers", "2"];
    a.extend_from_slice(args);
    let o = flowtap(&a);
    // 2: a damaged capture, used up to the damage (as `flowtap run` does).
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(2),
        "flowtap {a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("discover --format json is JSON")
}

fn flow_records(native: &Path) -> Vec<Value> {
    std::fs::read_to_string(native)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event_type"] == "flow")
        .collect()
}

fn ip_in(ip: &str, block: &str) -> bool {
    let block = match block.rsplit_once(" (") {
        Some((_, b)) => b.trim_end_matches(')'),
        None => block,
    };
    let (net, len) = match block.split_once('/') {
        Some((n, l)) => (n, l.parse::<u32>().unwrap()),
        None => return ip == block,
    };
    match (
        ip.parse::<std::net::IpAddr>().unwrap(),
        net.parse::<std::net::IpAddr>().unwrap(),
    ) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & m == u32::from(n)
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & m == u128::from(n)
        }
        _ => false,
    }
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Sums {
    flows: u64,
    records: u64,
    pts: u64,
    bts: u64,
    ptc: u64,
    btc: u64,
    first: String,
    last: String,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Assigns every flow record to the rules it can belong to and checks the
/// rules' counters against the sums of their records. Returns the number
/// of rules whose records could also belong to another rule (checked only
/// in total).
fn check_fold(doc: &Value, records: &[Value], what: &str) -> usize {
    let rules = doc["rules"].as_array().expect("rules");
    let mut sums: Vec<Sums> = rules.iter().map(|_| Sums::default()).collect();
    let mut ambiguous = vec![false; rules.len()];
    // Rules by (protocol, destination): a record can only be folded by those
    // of one of its two addresses.
    let mut by_dst: std::collections::HashMap<(u64, String), Vec<usize>> = Default::default();
    for (i, r) in rules.iter().enumerate() {
        let rproto = match r["protocol"].as_str().unwrap() {
            "TCP" => 6,
            "UDP" => 17,
            "ICMP" => 1,
            "IPv6-ICMP" => 58,
            "SCTP" => 132,
            "GRE" => 47,
            "ESP" => 50,
            "AH" => 51,
            n => n.parse().unwrap(),
        };
        by_dst
            .entry((rproto, r["destination"].as_str().unwrap().to_string()))
            .or_default()
            .push(i);
    }
    for rec in records {
        let (s, d) = (
            rec["src_ip"].as_str().unwrap(),
            rec["dest_ip"].as_str().unwrap(),
        );
        let (sp, dp) = (u(&rec["src_port"]), u(&rec["dest_port"]));
        let proto = u(&rec["ip_proto"]);
        let mut cands = Vec::new();
        let near = [(proto, d), (proto, s)];
        let mut seen = std::collections::BTreeSet::new();
        for i in near
            .iter()
            .filter_map(|k| by_dst.get(&(k.0, k.1.to_string())))
            .flatten()
        {
            if !seen.insert(*i) {
                continue;
            }
            let r = &rules[*i];
            let src = r["source"].as_str().unwrap();
            let dst = r["destination"].as_str().unwrap();
            match r["port"].as_u64() {
                Some(p) => {
                    if ip_in(s, src) && d == dst && dp == p {
                        cands.push((*i, true));
                    }
                    if ip_in(d, src) && s == dst && sp == p {
                        cands.push((*i, false));
                    }
                }
                None => {
                    if ip_in(s, src) && d == dst {
                        cands.push((*i, true));
                    }
                }
            }
        }
        assert!(!cands.is_empty(), "{what}: no rule folds {rec}");
        if cands.len() > 1 {
            for (i, _) in &cands {
                ambiguous[*i] = true;
            }
            continue;
        }
        let (i, fwd) = cands[0];
        let f = &rec["flow"];
        let x = &mut sums[i];
        x.records += 1;
        x.flows += u64::from(u(&f["slice"]) == 0);
        let (a, b) = (
            (u(&f["pkts_toserver"]), u(&f["bytes_toserver"])),
            (u(&f["pkts_toclient"]), u(&f["bytes_toclient"])),
        );
        let ((pts, bts), (ptc, btc)) = if fwd { (a, b) } else { (b, a) };
        x.pts += pts;
        x.bts += bts;
        x.ptc += ptc;
        x.btc += btc;
        let (st, en) = (f["start"].as_str().unwrap(), f["end"].as_str().unwrap());
        if x.first.is_empty() || st < x.first.as_str() {
            x.first = st.to_string();
        }
        if en > x.last.as_str() {
            x.last = en.to_string();
        }
    }
    let mut n_amb = 0;
    for (i, r) in rules.iter().enumerate() {
        if ambiguous[i] {
            n_amb += 1;
            continue;
        }
        let got = Sums {
            flows: u(&r["flows"]),
            records: u(&r["records"]),
            pts: u(&r["packets_to_server"]),
            bts: u(&r["bytes_to_server"]),
            ptc: u(&r["packets_to_client"]),
            btc: u(&r["bytes_to_client"]),
            first: r["first_seen"].as_str().unwrap().to_string(),
            last: r["last_seen"].as_str().unwrap().to_string(),
        };
        assert_eq!(got, sums[i], "{what}: rule {r}");
        assert_eq!(r["review"], got.flows <= 1, "{what}: {r}");
    }
    // In total, ambiguous or not: nothing lost, nothing counted twice.
    let total = |k: &str| rules.iter().map(|r| u(&r[k])).sum::<u64>();
    let rec_total = |k: &str| records.iter().map(|r| u(&r["flow"][k])).sum::<u64>();
    assert_eq!(total("records"), records.len() as u64, "{what}");
    assert_eq!(
        total("flows"),
        records
            .iter()
            .filter(|r| u(&r["flow"]["slice"]) == 0)
            .count() as u64,
        "{what}"
    );
    assert_eq!(
        total("packets_to_server") + total("packets_to_client"),
        rec_total("pkts_toserver") + rec_total("pkts_toclient"),
        "{what}"
    );
    assert_eq!(
        total("bytes_to_server") + total("bytes_to_client"),
        rec_total("bytes_toserver") + rec_total("bytes_toclient"),
        "{what}"
    );
    assert_eq!(u(&doc["totals"]["records"]), records.len() as u64);
    assert_eq!(u(&doc["totals"]["folded"]), records.len() as u64);
    // Sorted by volume.
    let vol: Vec<u64> = rules
        .iter()
        .map(|r| u(&r["bytes_to_server"]) + u(&r["bytes_to_client"]))
        .collect();
    assert!(vol.windows(2).all(|w| w[0] >= w[1]), "{what}: not sorted");
    n_amb
}

/// The counters of each rule, for comparing inputs that know less (Nutanix).
fn counters(doc: &Value) -> Vec<Value> {
    doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut c = serde_json::Map::new();
            for k in [
                "source",
                "destination",
                "protocol",
                "port",
                "flows",
                "records",
                "packets_to_server",
                "bytes_to_server",
                "packets_to_client",
                "bytes_to_client",
                "last_seen",
            ] {
                c.insert(k.into(), r[k].clone());
            }
            Value::Object(c)
        })
        .collect()
}

fn compress(src: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    // First half of the lines gzip'ed, second half zstd'ed: one log, rotated.
    let text = std::fs::read_to_string(src).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() / 2;
    let a = lines[..half].join("\n") + "\n";
    let b = lines[half..].join("\n") + "\n";
    let gz = dir.join("flows.json.20260706T120000Z-000001.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(a.as_bytes()).unwrap();
    enc.finish().unwrap();
    let zs = dir.join("flows.json.20260706T120100Z-000002.zst");
    std::fs::write(&zs, zstd::encode_all(b.as_bytes(), 3).unwrap()).unwrap();
    (gz, zs)
}

#[test]
fn w1_rules_fold_every_flow_record_from_every_input() {
    let dir = tmp_dir("discover-w1");
    let pcap = w1(&dir);
    let (native, eve, nutanix) = logs(&pcap, &dir, "w1");
    let records = flow_records(&native);
    assert_eq!(records.len(), 11_402, "W1's flow count (README)");

    let from_pcap = discover(&["--pcap", pcap.to_str().unwrap()]);
    let amb = check_fold(&from_pcap, &records, "w1 --pcap");
    assert_eq!(amb, 0, "W1's rules are all distinct");
    let rules = from_pcap["rules"].as_array().unwrap();
    // What W1 holds: clients 10.1.x.x, DNS at 10.0.0.53/54, HTTP and TLS servers.
    assert!(rules.len() > 1000, "{}", rules.len());
    assert!(rules
        .iter()
        .all(|r| r["source"].as_str().unwrap().starts_with("10.1.")));
    let dns = rules
        .iter()
        .find(|r| r["destination"] == "10.0.0.53" && r["port"] == 53)
        .expect("a DNS rule");
    assert_eq!(dns["service"], "domain");
    assert_eq!(dns["app_protos"], serde_json::json!(["dns"]));
    let tls = rules
        .iter()
        .find(|r| r["port"] == 443 && !r["tls_sni"].as_array().unwrap().is_empty())
        .expect("a TLS rule with its SNI");
    assert!(tls["description"].as_str().unwrap().contains("sni "));
    assert!(tls["by_handshake"].as_u64().unwrap() > 0);
    assert!(rules
        .iter()
        .any(|r| !r["http_hosts"].as_array().unwrap().is_empty()));

    // The same rules from the logs as from the capture.
    let from_native = discover(&["--flows", native.to_str().unwrap()]);
    assert_eq!(from_native["rules"], from_pcap["rules"]);
    let from_eve = discover(&["--flows", eve.to_str().unwrap()]);
    assert_eq!(from_eve["rules"], from_pcap["rules"]);
    let (gz, zs) = compress(&native, &dir);
    let from_rotated = discover(&["--flows", gz.to_str().unwrap(), zs.to_str().unwrap()]);
    assert_eq!(from_rotated["rules"], from_pcap["rules"]);
    // Nutanix lines: same counters (servers found by their ports), the end time only.
    let from_nutanix = discover(&["--flows", nutanix.to_str().unwrap()]);
    assert_eq!(counters(&from_nutanix), counters(&from_pcap));

    // Grouped by /24: still every record once.
    let grouped = discover(&["--pcap", pcap.to_str().unwrap(), "--group", "/24"]);
    check_fold(&grouped, &records, "w1 --group /24");
    assert!(grouped["rules"].as_array().unwrap().len() < rules.len());
    // Scope: only the resolver 10.0.0.53, as a server.
    let scoped = discover(&[
        "--flows",
        native.to_str().unwrap(),
        "--host",
        "10.0.0.53",
        "--direction",
        "inbound",
        "--group-map",
        "clients=10.1.0.0/16",
    ]);
    let sr = scoped["rules"].as_array().unwrap();
    let to_53: Vec<Value> = records
        .iter()
        .filter(|r| r["dest_ip"] == "10.0.0.53")
        .cloned()
        .collect();
    assert_eq!(sr.len(), 1, "{sr:?}");
    assert_eq!(sr[0]["source"], "clients (10.1.0.0/16)");
    assert_eq!(sr[0]["direction"], "inbound");
    assert_eq!(u(&sr[0]["records"]), to_53.len() as u64);
    assert_eq!(
        u(&scoped["totals"]["out_of_scope"]),
        (records.len() - to_53.len()) as u64
    );

    // --max-rules: the largest rules, the others counted as pruned.
    let top = discover(&["--flows", native.to_str().unwrap(), "--max-rules", "100"]);
    let tr = top["rules"].as_array().unwrap();
    assert_eq!(tr.len(), 100);
    let t = &top["totals"];
    let sum = |k: &str| tr.iter().map(|r| u(&r[k])).sum::<u64>();
    assert_eq!(
        sum("records") + u(&t["pruned_records"]),
        records.len() as u64
    );
    assert_eq!(
        sum("bytes_to_server") + sum("bytes_to_client") + u(&t["pruned_bytes"]),
        u(&from_pcap["totals"]["bytes"])
    );
    assert_eq!(
        sum("packets_to_server") + sum("packets_to_client") + u(&t["pruned_packets"]),
        u(&from_pcap["totals"]["packets"])
    );
    // Evictions: a rule evicted then seen again is evicted again.
    assert!(u(&t["pruned_rules"]) + 100 >= rules.len() as u64);
    // The largest rule of all is kept.
    assert_eq!(tr[0], from_native["rules"][0]);

    // Drift: with a baseline made from the first half of the log, the new
    // rules of the whole log are exactly those the first half lacks.
    let text = std::fs::read_to_string(&native).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = dir.join("half.json");
    std::fs::write(&half, lines[..lines.len() / 2].join("\n") + "\n").unwrap();
    let base_doc = discover(&["--flows", half.to_str().unwrap()]);
    let base = dir.join("base.json");
    std::fs::write(&base, base_doc.to_string()).unwrap();
    let drift = discover(&[
        "--flows",
        native.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
    ]);
    let keys = |d: &Value| -> std::collections::BTreeSet<String> {
        d["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r["source"], r["destination"], r["protocol"], r["port"]
                )
            })
            .collect()
    };
    let want: std::collections::BTreeSet<String> = keys(&from_native)
        .difference(&keys(&base_doc))
        .cloned()
        .collect();
    assert!(!want.is_empty() && want.len() < rules.len());
    assert_eq!(keys(&drift), want);
    // A grouped baseline allows every client in its blocks: nothing is new.
    let grouped_base = dir.join("grouped.json");
    std::fs::write(&grouped_base, grouped.to_string()).unwrap();
    let none = discover(&[
        "--flows",
        native.to_str().unwrap(),
        "--baseline",
        grouped_base.to_str().unwrap(),
    ]);
    assert_eq!(none["rules"], serde_json::json!([]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corpus_rules_fold_every_flow_record() {
    let corpus = corpus();
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).unwrap();
    let dir = tmp_dir("discover-corpus");
    let mut checked = 0;
    let mut with_records = 0;
    for line in manifest.lines().skip(1) {
        let rel = line.split('\t').next().unwrap();
        let pcap = corpus.join(rel);
        if !pcap.exists() {
            continue;
        }
        let tag = rel.replace('/', "_");
        let (native, eve, _) = logs(&pcap, &dir, &tag);
        let records = flow_records(&native);
        let from_pcap = discover(&["--pcap", pcap.to_str().unwrap()]);
        check_fold(&from_pcap, &records, rel);
        let from_native = discover(&["--flows", native.to_str().unwrap()]);
        assert_eq!(from_native["rules"], from_pcap["rules"], "{rel}");
        let from_eve = discover(&["--flows", eve.to_str().unwrap()]);
        assert_eq!(counters(&from_eve), counters(&from_pcap), "{rel}: eve");
        if rel == "mixed/ndpi-1kxun.pcap" {
            // DNS answers seen in the capture name the servers they resolved to.
            let r = from_pcap["rules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["destination"] == "106.187.35.246" && r["port"] == 80)
                .expect("the pic.1kxun.com rule");
            assert_eq!(r["dns_names"], serde_json::json!(["pic.1kxun.com"]));
            assert_eq!(r["http_hosts"], serde_json::json!(["pic.1kxun.com"]));
            assert_eq!(
                r["description"],
                "http; host pic.1kxun.com; dns pic.1kxun.com"
            );
        }
        checked += 1;
        with_records += usize::from(!records.is_empty());
    }
    assert!(checked >= 70, "only {checked} corpus captures");
    assert!(with_records >= 60, "{with_records}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tool(name: &str) -> PathBuf {
    for d in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(d).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: run scripts/setup.sh (packages nftables, iptables)");
}

#[test]
fn firewall_outputs_load() {
    let dir = tmp_dir("discover-fw");
    let pcap = w1(&dir);
    let corpus = corpus();
    let inputs = [
        pcap.clone(),
        corpus.join("ipv6/sv-community-id-ipv6--input.pcap"),
        corpus.join("icmp/sv-bug-4663-02--icmp.pcap"),
        // ICMPv6 (meta l4proto ipv6-icmp)
        corpus.join("tunnels/sv-decode-teredo-01--input.pcap"),
        corpus.join("mixed/ndpi-1kxun.pcap"),
    ];
    let nft = tool("nft");
    let ipt = tool("iptables-restore");
    for input in &inputs {
        let doc = discover(&["--pcap", input.to_str().unwrap()]);
        for (fmt, extra) in [
            ("nftables", vec!["--group", "/24"]),
            ("nftables", vec!["--hook", "ingress", "--device", "lo"]),
            ("nftables", vec!["--hook", "input"]),
            ("iptables", vec!["--group", "/24"]),
        ] {
            let out = dir.join(format!("rules.{fmt}"));
            let mut a = vec![
                "discover",
                "-q",
                "--pcap",
                input.to_str().unwrap(),
                "--format",
                fmt,
                "-o",
                out.to_str().unwrap(),
            ];
            a.extend(extra.iter().copied());
            let o = flowtap(&a);
            assert!(
                o.status.success(),
                "{a:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let text = std::fs::read_to_string(&out).unwrap();
            let (checker, args): (&Path, Vec<&str>) = if fmt == "nftables" {
                assert!(text.contains("counter log prefix \"flowtap-drop: \" drop"));
                (&nft, vec!["-c", "-f"])
            } else {
                assert!(text.contains("-A FLOWTAP-ALLOW -j DROP"));
                (&ipt, vec!["--test"])
            };
            let c = Command::new(checker)
                .args(&args)
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                c.status.success(),
                "{} {args:?} rejects the {fmt} output of {} ({extra:?}): {}",
                checker.display(),
                input.display(),
                String::from_utf8_lossy(&c.stderr)
            );
            // Every rule of the JSON output is there.
            let n = doc["rules"].as_array().unwrap().len();
            let accepts = text
                .lines()
                .filter(|l| {
                    (l.contains("counter accept comment") && !l.contains("\"reply: "))
                        || l.contains("--ctstate NEW")
                })
                .count();
            if !extra.contains(&"--group") {
                let v4 = doc["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| !r["destination"].as_str().unwrap().contains(':'))
                    .count();
                assert_eq!(accepts, if fmt == "iptables" { v4 } else { n }, "{fmt}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_named_not_a_panic() {
    let dir = tmp_dir("discover-bad");
    let f = dir.join("week.log");
    std::fs::write(
        &f,
        "2026-07-06T12:00:00Z SRC=10.0.0.1 DST=10.0.0.2 PROTO=TCP SPORT=40000 DPORT=22 ORIG: PKTS=1 BYTES=60 REPLY: PKTS=1 BYTES=60\n\n{\"event_type\":\"flow\",\"src_ip\":\n",
    )
    .unwrap();
    let fs = f.to_str().unwrap();
    let o = flowtap(&["discover", "--flows", fs]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{fs}:3: bad JSON event")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let o = flowtap(&["discover", "--flows", fs, "--skip-bad", "--format", "csv"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("bad 1 (first: "), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
    // `-` reads stdin; the error names it too.
    let mut child = Command::new(FLOWTAP)
        .args(["discover", "--flows", "-", "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&f).unwrap())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("-:3: bad JSON event"), "{err}");
    for (args, want) in [
        (
            vec!["--flows", "/nonexistent/flows.json"],
            "cannot open /nonexistent/flows.json",
        ),
        (
            vec!["--flows", fs, "--cidr", "10.0.0.0/40"],
            "invalid --cidr \"10.0.0.0/40\"",
        ),
        (
            vec!["--flows", fs, "--direction", "inbound"],
            "relative to --host or --cidr",
        ),
        (
            vec!["--flows", fs, "--group-map", "web"],
            "expected NAME=CIDR",
        ),
        (vec!["--pcap", fs], "cannot replay"),
        (
            vec!["--flows", fs, "--baseline", fs],
            "not a `--format json` rule base",
        ),
    ] {
        let mut a = vec!["discover"];
        a.extend(args.iter().copied());
        let o = flowtap(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{a:?}: {err}");
        assert!(err.contains(want), "{a:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn sh(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (packets, bytes) of each counter of the allow chain in `net`'s B side, in order.
fn nft_counters(net: &Net) -> Vec<(u64, u64)> {
    let text = sh(&[
        "ip",
        "netns",
        "exec",
        &net.ns_b,
        "nft",
        "list",
        "chain",
        "inet",
        "flowtap_allow",
        "allow",
    ]);
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "packets")?;
            Some((w[i + 1].parse().ok()?, w[i + 3].parse().ok()?))
        })
        .collect()
}

/// The nftables rule base applied in a namespace: replaying the capture it
/// came from, every packet passes and each rule counts exactly its flows'
/// packets per direction; a capture of other traffic is dropped and counted
/// by the final rule.
#[test]
fn nftables_rule_base_applied_in_a_namespace() {
    assert!(
        is_root(),
        "applying a rule base needs root and network namespaces (CI runs as root)"
    );
    tool("nft");
    let corpus = corpus();
    let dir = tmp_dir("discover-ns");
    let other =
        corpus.join("dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap");
    let other_doc = discover(&["--pcap", other.to_str().unwrap()]);
    let other_pkts: u64 = other_doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| u(&r["packets_to_server"]) + u(&r["packets_to_client"]))
        .sum();
    assert!(other_pkts > 0);
    for rel in [
        "http/sv-http-all-headers--input.pcap",
        "mail-ftp-ssh/sv-ssh-hassh--input.pcap",
        "tls/ndpi-443-curl.pcap",
    ] {
        let pcap = corpus.join(rel);
        let net = Net::new("d");
        let doc = discover(&["--pcap", pcap.to_str().unwrap()]);
        let rules = doc["rules"].as_array().unwrap();
        let nft = dir.join("ns.nft");
        let o = flowtap(&[
            "discover",
            "-q",
            "--pcap",
            pcap.to_str().unwrap(),
            "--format",
            "nftables",
            "--hook",
            "ingress",
            "--device",
            &net.b,
            "-o",
            nft.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        sh(&[
            "ip",
            "netns",
            "exec",
            &net.ns_b,
            "nft",
            "-f",
            nft.to_str().unwrap(),
        ]);
        let before = nft_counters(&net);
        assert_eq!(before.len(), 2 * rules.len() + 1, "{rel}");
        assert!(before.iter().all(|c| *c == (0, 0)));

        net.gen(&pcap);
        let after = nft_counters(&net);
        for (i, r) in rules.iter().enumerate() {
            let (to_s, to_c) = (after[2 * i], after[2 * i + 1]);
            assert_eq!(
                (to_s.0, to_c.0),
                (u(&r["packets_to_server"]), u(&r["packets_to_client"])),
                "{rel}: rule {r}"
            );
            // nft counts from the IP header: the 14-byte Ethernet header is not in it.
            assert_eq!(
                (to_s.1, to_c.1),
                (
                    u(&r["bytes_to_server"]) - 14 * to_s.0,
                    u(&r["bytes_to_client"]) - 14 * to_c.0
                ),
                "{rel}: rule {r}"
            );
        }
        assert_eq!(
            after[after.len() - 1],
            (0, 0),
            "{rel}: a packet of the capture was dropped"
        );

        // Traffic the rule base never saw: dropped and counted by the last rule.
        net.gen(&other);
        let end = nft_counters(&net);
        assert_eq!(end[..end.len() - 1], after[..after.len() - 1], "{rel}");
        assert_eq!(end[end.len() - 1].0, other_pkts, "{rel}: drop counter");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One flow of a synthetic capture.
#[derive(Clone, Copy)]
struct Synth {
    client: [u8; 4],
    cport: u16,
    server: [u8; 4],
    sport: u16,
    /// 6 or 17.
    proto: u8,
}

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for p in parts {
        for c in p.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4 frame with a TCP (flags, seq, ack) or UDP header and
/// `len` payload bytes, checksums right.
#[allow(clippy::too_many_arguments)]
fn frame(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    proto: u8,
    flags: u8,
    seq: u32,
    ack: u32,
    len: usize,
) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&ack.to_be_bytes());
        l4.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        l4.extend_from_slice(&((8 + len) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
    }
    l4.extend(std::iter::repeat_n(b'x', len));
    let l4_len = l4.len() as u16;
    let pseudo = [&src[..], &dst[..], &[0, proto], &l4_len.to_be_bytes()[..]].concat();
    let c = checksum(&[&pseudo, &l4]);
    let at = if proto == 6 { 16 } else { 6 };
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&(20 + l4_len).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![
        0x02, 0, 0, 0, 0, dst[3], 0x02, 0, 0, 0, 0, src[3], 0x08, 0x00,
    ];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

/// Writes a capture of `flows`, one after the other: TCP with handshake,
/// 100 bytes up, 200 down and both FINs (7 frames: 4 to the server, 3 to
/// the client); UDP a 50-byte request and an 80-byte answer.
fn synth_pcap(path: &Path, flows: &[Synth]) {
    use output::pcap::format::{pcap_header, pcap_record};
    let mut out = Vec::new();
    pcap_header(&mut out, 1, 0);
    let mut ts = 1_783_339_200_000_000_000u64;
    for f in flows {
        let up = |flags, seq, ack, len| {
            frame(
                f.client, f.cport, f.server, f.sport, f.proto, flags, seq, ack, len,
            )
        };
        let down = |flags, seq, ack, len| {
            frame(
                f.server, f.sport, f.client, f.cport, f.proto, flags, seq, ack, len,
            )
        };
        let frames = if f.proto == 6 {
            vec![
                up(0x02, 1000, 0, 0),
                down(0x12, 5000, 1001, 0),
                up(0x18, 1001, 5001, 100),
                down(0x18, 5001, 1101, 200),
                up(0x11, 1101, 5201, 0),
                down(0x11, 5201, 1102, 0),
                up(0x10, 1102, 5202, 0),
            ]
        } else {
            vec![up(0, 0, 0, 50), down(0, 0, 0, 80)]
        };
        for d in frames {
            pcap_record(&mut out, ts, d.len() as u32, &d);
            ts += 10_000;
        }
        ts += 1_000_000;
    }
    std::fs::write(path, out).unwrap();
}

const CLIENT: [u8; 4] = [10, 9, 0, 1];
const SERVER: [u8; 4] = [10, 9, 0, 2];
const PHONE: [u8; 4] = [10, 9, 0, 3];

/// FTP control and 40 passive data connections (ports 50000-50273, 7
/// apart), 30 RTP-like UDP streams (16384-16442, 2 apart), two lone high
/// ports (60000, 61000): 73 flows.
fn ranges_flows() -> Vec<Synth> {
    let mut v = vec![Synth {
        client: CLIENT,
        cport: 40000,
        server: SERVER,
        sport: 21,
        proto: 6,
    }];
    for i in 0..40u16 {
        v.push(Synth {
            client: CLIENT,
            cport: 41000 + i,
            server: SERVER,
            sport: 50000 + 7 * i,
            proto: 6,
        });
    }
    for i in 0..30u16 {
        v.push(Synth {
            client: PHONE,
            cport: 49152 + 2 * i,
            server: SERVER,
            sport: 16384 + 2 * i,
            proto: 17,
        });
    }
    for (i, p) in [60000u16, 61000].into_iter().enumerate() {
        v.push(Synth {
            client: CLIENT,
            cport: 42000 + i as u16,
            server: SERVER,
            sport: p,
            proto: 6,
        });
    }
    v
}

fn find_rule<'a>(doc: &'a Value, proto: &str, port: u64) -> &'a Value {
    doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["protocol"] == proto && r["port"] == port)
        .unwrap_or_else(|| panic!("no {proto} rule for port {port}: {doc}"))
}

#[test]
fn port_ranges_fold_adjacent_ports() {
    let dir = tmp_dir("discover-ranges");
    let pcap = dir.join("ranges.pcap");
    let flows = ranges_flows();
    synth_pcap(&pcap, &flows);
    let p = pcap.to_str().unwrap();

    // Without --port-ranges: a rule per port.
    let plain = discover(&["--pcap", p]);
    assert_eq!(plain["rules"].as_array().unwrap().len(), 73, "{plain}");
    let records = {
        let (native, _, _) = logs(&pcap, &dir, "ranges");
        flow_records(&native)
    };
    assert_eq!(records.len(), 73);
    check_fold(&plain, &records, "ranges, no folding");

    let doc = discover(&["--pcap", p, "--port-ranges", "5"]);
    let rules = doc["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5, "{doc}");
    let ftp_data = find_rule(&doc, "TCP", 50000);
    assert_eq!(ftp_data["port_last"], 50273);
    assert_eq!(ftp_data["ports_seen"], 40);
    assert_eq!(ftp_data["source"], "10.9.0.1");
    assert_eq!(ftp_data["destination"], "10.9.0.2");
    assert_eq!(
        (u(&ftp_data["flows"]), u(&ftp_data["packets_to_server"])),
        (40, 160)
    );
    assert_eq!(
        (
            u(&ftp_data["bytes_to_server"]),
            u(&ftp_data["bytes_to_client"])
        ),
        (40 * (4 * 54 + 100), 40 * (3 * 54 + 200))
    );
    assert_eq!(ftp_data["by_handshake"], 40);
    assert_eq!(ftp_data["review"], false);
    assert!(ftp_data.get("service").is_none());
    assert!(ftp_data["description"]
        .as_str()
        .unwrap()
        .starts_with("tcp/50000-50273 (40 ports)"));
    let rtp = find_rule(&doc, "UDP", 16384);
    assert_eq!(
        (rtp["port_last"].clone(), rtp["ports_seen"].clone()),
        (16442.into(), 30.into())
    );
    assert_eq!(rtp["source"], "10.9.0.3");
    assert_eq!(
        (u(&rtp["flows"]), u(&rtp["bytes_to_server"])),
        (30, 30 * (42 + 50))
    );
    // System ports are never folded; lone high ports stay alone.
    for port in [21, 60000, 61000] {
        let r = find_rule(&doc, "TCP", port);
        assert!(r.get("port_last").is_none(), "{r}");
        assert_eq!(r["flows"], 1);
        assert_eq!(r["review"], true);
    }
    // Folding loses nothing: the totals are those of the unfolded rules.
    let sum = |d: &Value, k: &str| {
        d["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| u(&r[k]))
            .sum::<u64>()
    };
    for k in [
        "flows",
        "records",
        "packets_to_server",
        "bytes_to_server",
        "packets_to_client",
        "bytes_to_client",
    ] {
        assert_eq!(sum(&doc, k), sum(&plain, k), "{k}");
    }
    // Runs shorter than --port-ranges stay per port.
    let high = discover(&["--pcap", p, "--port-ranges", "41"]);
    assert_eq!(high["rules"].as_array().unwrap().len(), 73);
    let mid = discover(&["--pcap", p, "--port-ranges", "31"]);
    assert_eq!(mid["rules"].as_array().unwrap().len(), 1 + 1 + 30 + 2);
    // A gap smaller than the TCP ports' spacing (7) folds only the UDP run (2).
    let tight = discover(&["--pcap", p, "--port-ranges", "5", "--port-gap", "6"]);
    assert_eq!(tight["rules"].as_array().unwrap().len(), 1 + 40 + 1 + 2);

    // A range baseline allows every port of it: nothing new.
    let base = dir.join("ranges.json");
    std::fs::write(&base, doc.to_string()).unwrap();
    let drift = discover(&["--pcap", p, "--baseline", base.to_str().unwrap()]);
    assert_eq!(drift["rules"], serde_json::json!([]));
    // Without the UDP range in the baseline, its 30 ports are new.
    let mut partial = doc.clone();
    partial["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["protocol"] != "UDP");
    std::fs::write(&base, partial.to_string()).unwrap();
    let drift = discover(&["--pcap", p, "--baseline", base.to_str().unwrap()]);
    let new = drift["rules"].as_array().unwrap();
    assert_eq!(new.len(), 30);
    assert!(new.iter().all(|r| r["protocol"] == "UDP"));

    // Firewall outputs use range syntax and load.
    let nft_out = dir.join("ranges.nft");
    let o = flowtap(&[
        "discover",
        "-q",
        "--pcap",
        p,
        "--port-ranges",
        "5",
        "-f",
        "nftables",
        "-o",
        nft_out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&nft_out).unwrap();
    assert!(
        text.contains(
            "ip saddr 10.9.0.1 ip daddr 10.9.0.2 tcp dport 50000-50273 ct state new counter accept"
        ),
        "{text}"
    );
    assert!(
        text.contains("udp dport 16384-16442 ct state new"),
        "{text}"
    );
    let c = Command::new(tool("nft"))
        .args(["-c", "-f"])
        .arg(&nft_out)
        .output()
        .unwrap();
    assert!(
        c.status.success(),
        "nft -c: {}",
        String::from_utf8_lossy(&c.stderr)
    );
    let ipt_out = dir.join("ranges.rules");
    let o = flowtap(&[
        "discover",
        "-q",
        "--pcap",
        p,
        "--port-ranges",
        "5",
        "-f",
        "iptables",
        "-o",
        ipt_out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(&ipt_out).unwrap();
    assert!(
        text.contains("-s 10.9.0.1/32 -d 10.9.0.2/32 -p tcp -m tcp --dport 50000:50273 -m conntrack --ctstate NEW"),
        "{text}"
    );
    assert!(text.contains("-p udp -m udp --dport 16384:16442"), "{text}");
    let c = Command::new(tool("iptables-restore"))
        .arg("--test")
        .arg(&ipt_out)
        .output()
        .unwrap();
    assert!(
        c.status.success(),
        "iptables-restore --test: {}",
        String::from_utf8_lossy(&c.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The range rules applied in a namespace: each range counts exactly its
/// flows' packets, nothing reaches the final drop rule.
#[test]
fn port_range_rules_applied_in_a_namespace() {
    assert!(
        is_root(),
        "applying a rule base needs root and network namespaces"
    );
    tool("nft");
    let dir = tmp_dir("discover-ranges-ns");
    let pcap = dir.join("ranges.pcap");
    synth_pcap(&pcap, &ranges_flows());
    let p = pcap.to_str().unwrap();
    let doc = discover(&["--pcap", p, "--port-ranges", "5"]);
    let rules = doc["rules"].as_array().unwrap();
    let net = Net::new("d");
    let nft = dir.join("ns.nft");
    let o = flowtap(&[
        "discover",
        "-q",
        "--pcap",
        p,
        "--port-ranges",
        "5",
        "-f",
        "nftables",
        "--hook",
        "ingress",
        "--device",
        &net.b,
        "-o",
        nft.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    sh(&[
        "ip",
        "netns",
        "exec",
        &net.ns_b,
        "nft",
        "-f",
        nft.to_str().unwrap(),
    ]);
    net.gen(&pcap);
    let after = nft_counters(&net);
    assert_eq!(after.len(), 2 * rules.len() + 1);
    for (i, r) in rules.iter().enumerate() {
        assert_eq!(
            (after[2 * i].0, after[2 * i + 1].0),
            (u(&r["packets_to_server"]), u(&r["packets_to_client"])),
            "rule {r}"
        );
    }
    assert_eq!(after[after.len() - 1], (0, 0), "a packet was dropped");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Counters of each rule without the times (a live capture stamps frames
/// with the wall clock).
fn counters_untimed(doc: &Value) -> Vec<Value> {
    let mut v = counters(doc);
    for c in &mut v {
        c.as_object_mut().unwrap().remove("last_seen");
    }
    v.sort_by_key(|c| c.to_string());
    v
}

/// `flowtap discover --iface`: the capture sent through a veth pair gives
/// the rules of the same capture replayed (one rule per flow sent, then
/// folded into ranges).
#[test]
fn discover_from_a_live_interface() {
    assert!(is_root(), "live capture needs root and network namespaces");
    let dir = tmp_dir("discover-live");
    let pcap = dir.join("ranges.pcap");
    let flows = ranges_flows();
    synth_pcap(&pcap, &flows);
    let net = Net::new("d");
    for (extra, want_rules) in [(vec![], flows.len()), (vec!["--port-ranges", "5"], 5)] {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", &net.ns_b, FLOWTAP, "discover", "--iface", &net.b,
            ])
            .args([
                "--duration",
                "4",
                "--capture",
                "afpacket",
                "--workers",
                "1",
                "-f",
                "json",
            ])
            .args(&extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let err = StderrLog::collect(&mut child);
        let t0 = std::time::Instant::now();
        while !err.text().contains("capturing on") {
            assert!(t0.elapsed().as_secs() < 20, "not ready: {}", err.text());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        net.gen(&pcap);
        let o = child.wait_with_output().unwrap();
        let text = err.text();
        assert!(o.status.success(), "{text}");
        assert!(
            text.contains(&format!("captured {} packets", 40 * 7 + 3 * 7 + 30 * 2)),
            "{text}"
        );
        let live: Value = serde_json::from_slice(&o.stdout).unwrap();
        let rules = live["rules"].as_array().unwrap();
        assert_eq!(rules.len(), want_rules, "{live}");
        let flows_in_rules: u64 = rules.iter().map(|r| u(&r["flows"])).sum();
        assert_eq!(flows_in_rules, flows.len() as u64, "every flow sent, once");
        assert_eq!(u(&live["totals"]["records"]), flows.len() as u64);
        let mut a = vec!["--pcap", pcap.to_str().unwrap()];
        a.extend(extra.iter().copied());
        let replay = discover(&a);
        assert_eq!(counters_untimed(&live), counters_untimed(&replay));
    }
    // --duration without --iface is refused, naming it.
    let o = flowtap(&[
        "discover",
        "--pcap",
        pcap.to_str().unwrap(),
        "--duration",
        "3",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("invalid --duration \"\": is for a live capture: give --iface IF"),
        "{err}"
    );
    let o = flowtap(&[
        "discover",
        "--iface",
        "ft-nope0",
        "--duration",
        "1",
        "--capture",
        "afpacket",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot capture on ft-nope0"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// YAML documents as JSON values (PyYAML, which kubernetes-validate needs).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let o = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "PyYAML: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// kubernetes-validate (PyPI, schemas shipped in the package) in strict mode.
fn k8s_validate(path: &Path) {
    let o = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "--no-warn"])
        .arg(path)
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !text.contains("No module named"),
        "kubernetes-validate is missing: run scripts/setup.sh: {text}"
    );
    assert!(o.status.success(), "{}: {text}", path.display());
    assert!(
        text.contains("passed for resource networkpolicy/"),
        "{text}"
    );
}

#[test]
fn k8s_network_policies_validate_and_hold_the_rules() {
    let dir = tmp_dir("discover-k8s");
    let pcap = dir.join("ranges.pcap");
    synth_pcap(&pcap, &ranges_flows());
    let p = pcap.to_str().unwrap();
    let out = dir.join("policies.yaml");
    let o = flowtap(&[
        "discover",
        "-q",
        "--pcap",
        p,
        "--cidr",
        "10.9.0.0/24",
        "--port-ranges",
        "5",
        "-f",
        "k8s",
        "--k8s-namespace",
        "shop",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    k8s_validate(&out);
    let docs = yaml_docs(&out);
    // The server's ingress policy and the two clients' egress policies.
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["flowtap-10.9.0.1", "flowtap-10.9.0.2", "flowtap-10.9.0.3"]
    );
    for d in &docs {
        assert_eq!(d["kind"], "NetworkPolicy");
        assert_eq!(d["metadata"]["namespace"], "shop");
        assert_eq!(
            d["spec"]["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
    }
    let server = &docs[1];
    assert_eq!(
        server["spec"]["podSelector"]["matchLabels"]["flowtap.io/pod-ip"],
        "10.9.0.2"
    );
    let ingress = server["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 5);
    let rule_of = |port: u64| {
        ingress
            .iter()
            .find(|r| r["ports"][0]["port"] == port)
            .unwrap_or_else(|| panic!("no ingress rule for {port}: {server}"))
    };
    let ftp_data = rule_of(50000);
    assert_eq!(
        ftp_data["from"],
        serde_json::json!([{"ipBlock": {"cidr": "10.9.0.1/32"}}])
    );
    assert_eq!(
        ftp_data["ports"],
        serde_json::json!([{"protocol": "TCP", "port": 50000, "endPort": 50273}])
    );
    let rtp = rule_of(16384);
    assert_eq!(rtp["from"][0]["ipBlock"]["cidr"], "10.9.0.3/32");
    assert_eq!(
        rtp["ports"],
        serde_json::json!([{"protocol": "UDP", "port": 16384, "endPort": 16442}])
    );
    assert_eq!(
        rule_of(21)["ports"],
        serde_json::json!([{"protocol": "TCP", "port": 21}])
    );
    // Descriptions as annotations, one per rule.
    let ann = server["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(
        ann.keys()
            .filter(|k| k.starts_with("flowtap.io/ingress-"))
            .count(),
        5
    );
    assert!(ann
        .values()
        .any(|v| v.as_str().unwrap().contains("tcp/50000-50273 (40 ports)")));
    // ... and as comments above each rule.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("  # ingress-"), "{text}");
    assert!(text.contains("  # no outbound connection seen: all egress denied"));
    assert_eq!(server["spec"]["egress"], serde_json::json!([]));
    // A client's egress: to the server, its ports.
    let phone = &docs[2];
    assert_eq!(phone["spec"]["ingress"], serde_json::json!([]));
    assert_eq!(
        phone["spec"]["egress"],
        serde_json::json!([{"to": [{"ipBlock": {"cidr": "10.9.0.2/32"}}], "ports": [{"protocol": "UDP", "port": 16384, "endPort": 16442}]}])
    );

    // --direction inbound: ingress policies only, for the server.
    let o = flowtap(&[
        "discover",
        "-q",
        "--pcap",
        p,
        "--cidr",
        "10.9.0.2",
        "--direction",
        "inbound",
        "-f",
        "k8s",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    k8s_validate(&out);
    let docs = yaml_docs(&out);
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0]["spec"]["policyTypes"],
        serde_json::json!(["Ingress"])
    );
    assert_eq!(docs[0]["spec"]["ingress"].as_array().unwrap().len(), 73);
    assert!(docs[0]["spec"].get("egress").is_none());

    // Real traffic: W1's clients grouped into /24 blocks (block subjects),
    // and a capture with ICMP, which NetworkPolicy cannot express.
    let w1 = w1(&dir);
    let o = flowtap(&[
        "discover",
        "-q",
        "--pcap",
        w1.to_str().unwrap(),
        "--cidr",
        "10.0.0.0/8",
        "--group",
        "/24",
        "-f",
        "k8s",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    k8s_validate(&out);
    let docs = yaml_docs(&out);
    let json = discover(&[
        "--pcap",
        w1.to_str().unwrap(),
        "--cidr",
        "10.0.0.0/8",
        "--group",
        "/24",
    ]);
    let n_rules = json["rules"].as_array().unwrap().len();
    // Every rule is one ingress rule of its server (if in the scope) and
    // one egress rule of its client block (in the scope: 10.1.x.0/24).
    let n_egress: usize = docs
        .iter()
        .map(|d| d["spec"]["egress"].as_array().map_or(0, |a| a.len()))
        .sum();
    assert_eq!(n_egress, n_rules);
    assert!(docs.iter().any(
        |d| d["spec"]["podSelector"]["matchLabels"]["flowtap.io/pod-ip"]
            .as_str()
            .unwrap()
            .ends_with(".0-24")
    ));
    let icmp = corpus().join("icmp/sv-bug-4663-02--icmp.pcap");
    let icmp_json = discover(&["--pcap", icmp.to_str().unwrap(), "--cidr", "0.0.0.0/0"]);
    let n_icmp = icmp_json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["protocol"] == "ICMP")
        .count();
    assert!(n_icmp > 0);
    let o = flowtap(&[
        "discover",
        "-q",
        "--pcap",
        icmp.to_str().unwrap(),
        "--cidr",
        "0.0.0.0/0",
        "-f",
        "k8s",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains(&format!(
            "# {n_icmp} rules left out: NetworkPolicy has ports for TCP, UDP and SCTP only"
        )),
        "{text}"
    );

    // k8s without a scope, or with a bad namespace: named.
    for (args, want) in [
        (vec!["-f", "k8s"], "give it with --cidr"),
        (
            vec![
                "-f",
                "k8s",
                "--cidr",
                "10.9.0.0/24",
                "--k8s-namespace",
                "Shop_1",
            ],
            "--k8s-namespace",
        ),
    ] {
        let mut a = vec!["discover", "--pcap", p];
        a.extend(args);
        let o = flowtap(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The discovery sink during `flowtap run --iface`: the rule file is written
/// at the start (empty), rewritten while the capture runs, and at exit;
/// the drift report lists what the baseline lacks; the Nutanix lines of the
/// same run carry ACTION=MONITOR and DIRECTION relative to the scope.
#[test]
fn discovery_sink_rewrites_its_rule_file_during_a_live_run() {
    assert!(is_root(), "live capture needs root and network namespaces");
    let dir = tmp_dir("discover-sink");
    let pcap = dir.join("ranges.pcap");
    let flows = ranges_flows();
    synth_pcap(&pcap, &flows);
    let p = pcap.to_str().unwrap();
    let want = discover(&["--pcap", p, "--port-ranges", "5", "--host", "10.9.0.2"]);
    let mut base = want.clone();
    base["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["protocol"] != "UDP");
    let base_path = dir.join("reviewed.json");
    std::fs::write(&base_path, base.to_string()).unwrap();
    let rules_path = dir.join("rules.json");
    let cfg = dir.join("flowtap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[flow.timeouts]\ntcp_closed = 1\nudp = 1\n\n[discover]\nscope = [\"10.9.0.2\"]\npath = \"{}\"\nformat = \"json\"\ninterval_minutes = 0.02\nmax_rules = 1000\nport_ranges = 5\nbaseline = \"{}\"\n",
            rules_path.display(),
            base_path.display()
        ),
    )
    .unwrap();
    let nutanix = dir.join("hits.log");
    let net = Net::new("d");
    let mut child = Command::new("ip")
        .args([
            "netns", "exec", &net.ns_b, FLOWTAP, "run", "--iface", &net.b,
        ])
        .args(["--capture", "afpacket", "--workers", "1", "--config"])
        .arg(&cfg)
        .arg("-o")
        .arg(format!("{}?schema=nutanix", nutanix.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = StderrLog::collect(&mut child);
    let t0 = std::time::Instant::now();
    while !err.text().contains("capturing on") {
        assert!(t0.elapsed().as_secs() < 20, "not ready: {}", err.text());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    // Written at the start: no rule yet.
    let first = read(&rules_path);
    assert_eq!(first["rules"], serde_json::json!([]));
    net.gen(&pcap);
    // Rewritten during the run (every 1.2 s; flows end 1 s after their
    // last packet): all the rules, while flowtap still runs.
    let t0 = std::time::Instant::now();
    loop {
        let doc = read(&rules_path);
        if doc["rules"].as_array().unwrap().len() == 5 && u(&doc["totals"]["records"]) == 73 {
            break;
        }
        assert!(t0.elapsed().as_secs() < 20, "not rewritten: {doc}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run is still going"
    );
    sh(&["kill", "-TERM", &child.id().to_string()]);
    let st = child.wait().unwrap();
    let text = err.all();
    assert!(st.success(), "{text}");
    assert!(
        text.contains("discover: 5 rules from 73 flow records in"),
        "{text}"
    );
    assert!(text.contains("1 new since the baseline in"), "{text}");
    let last = read(&rules_path);
    assert_eq!(counters_untimed(&last), counters_untimed(&want));
    assert_eq!(last["totals"]["folded"], 73);
    // The drift report: the UDP range the baseline lacks.
    let drift = read(&dir.join("rules.drift.json"));
    let new = drift["rules"].as_array().unwrap();
    assert_eq!(new.len(), 1, "{drift}");
    assert_eq!(
        (
            new[0]["protocol"].as_str(),
            u(&new[0]["port"]),
            u(&new[0]["port_last"])
        ),
        (Some("UDP"), 16384, 16442)
    );
    // No temporary file is left beside them.
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Monitor-mode hit log: one line per flow, inbound to the scope.
    let lines = std::fs::read_to_string(&nutanix).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 73);
    for l in &lines {
        assert!(l.contains(" DST=10.9.0.2 "), "{l}");
        assert!(l.ends_with(" ACTION=MONITOR DIRECTION=inbound"), "{l}");
    }
    // The hit log is discovery input too: its rules are the same.
    let from_log = discover(&[
        "--flows",
        nutanix.to_str().unwrap(),
        "--port-ranges",
        "5",
        "--host",
        "10.9.0.2",
    ]);
    assert_eq!(from_log["rules"].as_array().unwrap().len(), 5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn discovery_sink_during_a_replay_and_bad_settings() {
    let dir = tmp_dir("discover-sink-replay");
    let pcap = w1(&dir);
    let rules_path = dir.join("rules.csv");
    let cfg = dir.join("flowtap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[discover]\nscope = [\"10.0.0.0/8\"]\npath = \"{}\"\nformat = \"csv\"\nmax_rules = 10000\ngroup = [\"/24\"]\n",
            rules_path.display()
        ),
    )
    .unwrap();
    let o = flowtap(&[
        "run",
        "--no-progress",
        "--workers",
        "2",
        "--pcap",
        pcap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "-o",
        "/dev/null",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let want = discover(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--cidr",
        "10.0.0.0/8",
        "--group",
        "/24",
    ]);
    let n = want["rules"].as_array().unwrap().len();
    assert!(n < 10_000, "no eviction in this run: {n}");
    assert!(
        err.contains(&format!("discover: {n} rules from 11402 flow records in")),
        "{err}"
    );
    let csv = std::fs::read_to_string(&rules_path).unwrap();
    assert_eq!(csv.lines().count(), n + 1);
    // Same rules, same order, as `flowtap discover --format csv`.
    let o = flowtap(&[
        "discover",
        "-q",
        "--pcap",
        pcap.to_str().unwrap(),
        "--cidr",
        "10.0.0.0/8",
        "--group",
        "/24",
        "-f",
        "csv",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), csv);

    // max_rules smaller than the rules: the largest, the rest counted.
    std::fs::write(
        &cfg,
        format!(
            "[discover]\npath = \"{}\"\nmax_rules = 50\n",
            dir.join("top.json").display()
        ),
    )
    .unwrap();
    let o = flowtap(&[
        "run",
        "--no-progress",
        "-q",
        "--workers",
        "1",
        "--pcap",
        pcap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "-o",
        "/dev/null",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let top: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("top.json")).unwrap()).unwrap();
    let tr = top["rules"].as_array().unwrap();
    assert_eq!(tr.len(), 50);
    let sum: u64 = tr.iter().map(|r| u(&r["records"])).sum();
    assert_eq!(sum + u(&top["totals"]["pruned_records"]), 11_402);

    // Bad settings name their field; nothing is captured or replayed.
    for (toml, want) in [
        (
            "[discover]\npath = \"x.json\"\nformat = \"yaml\"\n",
            "discover.format",
        ),
        (
            "[discover]\npath = \"x.json\"\ninterval_minutes = 0\n",
            "discover.interval_minutes",
        ),
        ("[discover]\nscope = [\"10.0.0.0/33\"]\n", "discover.scope"),
        (
            "[discover]\npath = \"x.json\"\ndirection = \"inbound\"\n",
            "discover.direction",
        ),
        (
            "[discover]\npath = \"x.yaml\"\nformat = \"k8s\"\n",
            "discover.scope",
        ),
        (
            "[discover]\npath = \"/nonexistent/dir/rules.json\"\n",
            "cannot write /nonexistent/dir/rules.json",
        ),
        (
            "[discover]\npath = \"x.json\"\nbaseline = \"/nonexistent.json\"\n",
            "cannot open /nonexistent.json",
        ),
        ("[discover]\npaht = \"x.json\"\n", "paht"),
    ] {
        std::fs::write(&cfg, toml).unwrap();
        let o = flowtap(&[
            "run",
            "--no-progress",
            "--pcap",
            pcap.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "-o",
            "/dev/null",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{toml}: {err}");
        assert!(err.contains(want), "{toml}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
