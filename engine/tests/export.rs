//! PCAP export end to end (issue #6): the real `flowtap` binary runs export
//! rules over corpus captures, and every file it writes is read back with
//! tshark and compared, frame by frame (bytes and timestamps), with tshark
//! reading the ORIGINAL capture filtered on the same flow (tshark's own
//! Community ID). So a file holds exactly its flow's packets, those before
//! the match (the handshake) included.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use common::*;
use serde_json::Value;

struct Export {
    events: Vec<Value>,
    stderr: String,
    status: ExitStatus,
}

impl Export {
    fn of_type(&self, t: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event_type"] == t)
            .collect()
    }

    fn stats(&self) -> &Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["event_type"] == "stats")
            .unwrap_or_else(|| panic!("no stats event; stderr: {}", self.stderr))
    }
}

fn fresh_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = tmp_dir("export").join(format!("{tag}-{}", N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// `flowtap <cmd> --pcap CAPTURE` + `args`, every event type to a file.
fn flowtap(cmd: &str, capture: &Path, args: &[&str]) -> Export {
    let out = fresh_dir("events").join("events.json");
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtap"));
    c.arg(cmd);
    if cmd == "run" {
        c.arg("--no-progress");
    }
    let o = c
        .arg("--pcap")
        .arg(capture)
        .arg("--output")
        .arg(&out)
        .args(args)
        .output()
        .expect("run flowtap");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    Export {
        events: text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
            .collect(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        status: o.status,
    }
}

fn export(capture: &Path, dir: &Path, rules: &[&str], workers: usize) -> Export {
    let mut args = vec![
        "--dir".to_string(),
        dir.display().to_string(),
        "--workers".into(),
        workers.to_string(),
    ];
    for r in rules {
        args.push("--rule".into());
        args.push(r.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = flowtap("export", capture, &args);
    assert!(
        run.status.success(),
        "flowtap export failed: {}",
        run.stderr
    );
    run
}

fn tshark(args: &[&str], path: &Path) -> std::process::Output {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(args)
        .output()
        .expect("tshark must be installed (scripts/setup.sh installs it)");
    assert!(
        o.status.success(),
        "tshark -r {} {args:?}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// (epoch time as tshark prints it, frame bytes in hex, wire length) of
/// every frame tshark reads from `path` (passing `filter`).
fn frames(path: &Path, filter: Option<&str>) -> Vec<(String, String, String)> {
    let mut args = vec![
        "--enable-protocol",
        "communityid",
        "-T",
        "json",
        "-x",
        "-j",
        "frame",
    ];
    if let Some(f) = filter {
        args.extend(["-Y", f]);
    }
    let o = tshark(&args, path);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Array(Vec::new()));
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let l = &p["_source"]["layers"];
                    (
                        l["frame"]["frame.time_epoch"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        l["frame_raw"][0].as_str().unwrap_or("").to_string(),
                        l["frame"]["frame.len"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

type Frame = (String, String, String);

/// Every frame of `capture`, grouped by the Community ID tshark computes
/// for it (two tshark passes instead of one per flow).
fn frames_by_flow(capture: &Path) -> BTreeMap<String, Vec<Frame>> {
    let all = frames(capture, None);
    let o = tshark(
        &[
            "--enable-protocol",
            "communityid",
            "-T",
            "fields",
            "-e",
            "communityid",
        ],
        capture,
    );
    let cids: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(cids.len(), all.len(), "one line per frame");
    let mut by = BTreeMap::<String, Vec<Frame>>::new();
    for (cid, f) in cids.into_iter().zip(all) {
        if !cid.is_empty() {
            by.entry(cid).or_default().push(f);
        }
    }
    by
}

fn sha256sum(path: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The Section Header Block comment, as capinfos shows it.
fn capture_comment(path: &Path) -> String {
    let o = Command::new("capinfos")
        .arg(path)
        .output()
        .expect("capinfos (scripts/setup.sh installs it with tshark)");
    assert!(o.status.success(), "capinfos {}: {:?}", path.display(), o);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Capture comment:"))
        .map(|s| s.trim().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every `pcap` event names a file that exists, whose sha256 and packet
/// count are the event's, that carries the rule and the flow's community
/// id in its comment, and that holds exactly the frames tshark finds for
/// that flow in the original capture. Returns the events' community ids.
fn check_files_against_original(run: &Export, original: &Path, rule: &str) -> BTreeSet<String> {
    let by_flow = frames_by_flow(original);
    let mut cids = BTreeSet::new();
    let events = run.of_type("pcap");
    for e in events.iter().filter(|e| e["pcap"]["rule"] == rule) {
        let p = &e["pcap"];
        let path = PathBuf::from(p["path"].as_str().expect("path"));
        assert!(path.exists(), "{} missing", path.display());
        assert_eq!(p["sha256"].as_str(), Some(sha256sum(&path).as_str()), "{e}");
        assert_eq!(p["dropped_packets"], 0, "{e}");
        let cid = p["community_id"]
            .as_str()
            .expect("per-flow file")
            .to_string();
        let got = frames(&path, None);
        assert_eq!(p["packets"].as_u64(), Some(got.len() as u64), "{e}");
        let want = by_flow.get(&cid).cloned().unwrap_or_default();
        assert!(!want.is_empty(), "tshark finds no frame of {cid}");
        assert_eq!(
            got.len(),
            want.len(),
            "{}: {} frames, the original has {} for {cid}",
            path.display(),
            got.len(),
            want.len()
        );
        assert_eq!(
            got,
            want,
            "{}: frames differ from the original",
            path.display()
        );
        if p["format"] == "pcapng" {
            let comment = capture_comment(&path);
            assert!(
                comment.contains(rule) && comment.contains(&cid),
                "comment of {}: {comment:?}",
                path.display()
            );
        }
        cids.insert(cid);
    }
    assert_eq!(
        cids.len(),
        events.iter().filter(|e| e["pcap"]["rule"] == rule).count()
    );
    cids
}

fn app_cids(run: &Export, ty: &str, pick: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    run.of_type(ty)
        .into_iter()
        .filter(|e| pick(&e[ty]))
        .map(|e| e["community_id"].as_str().expect("cid").to_string())
        .collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    v
}

#[test]
fn http_host_rule_exports_exactly_the_matching_flows_with_their_handshake() {
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    let dir = fresh_dir("http");
    let run = export(&cap, &dir, &["name=pic,http.host=pic.1kxun.com"], 2);
    let want = app_cids(&run, "http", |h| h["host"] == "pic.1kxun.com");
    assert!(
        want.len() >= 2,
        "the capture has several such flows: {want:?}"
    );
    let got = check_files_against_original(&run, &cap, "pic");
    assert_eq!(got, want);
    // The match came after the HTTP response, yet the files of the flows
    // whose handshake is in the capture start with their SYN: the buffer
    // kept it (the others were picked up mid-stream by the capture itself;
    // the comparison above shows their files start where the flow does).
    let syn_first = files_in(&dir)
        .iter()
        .filter(|f| {
            let o = tshark(&["-T", "fields", "-e", "tcp.flags", "-c", "1"], f);
            String::from_utf8_lossy(&o.stdout).trim() == "0x0002"
        })
        .count();
    assert!(syn_first >= 5, "{syn_first} files start with a SYN");
    let ex = &run.stats()["stats"]["export"];
    assert_eq!(ex["matches"].as_u64(), Some(want.len() as u64), "{ex}");
    assert_eq!(ex["packets_missed"], 0, "{ex}");
    assert_eq!(
        ex["writer"]["files_written"].as_u64(),
        Some(want.len() as u64)
    );
    assert!(
        ex["released_early"].as_u64() > Some(0),
        "DNS flows cannot match: {ex}"
    );
    // HTTP flows to other hosts stop buffering at their first request.
    assert!(ex["buffers_dropped_on_miss"].as_u64() > Some(0), "{ex}");
    assert_eq!(files_in(&dir).len(), want.len());
}

#[test]
fn dns_query_rule_exports_the_matching_queries_only() {
    let cap = corpus().join("mixed/sv-ethernet-eve--test.pcap");
    let dir = fresh_dir("dns");
    let run = export(
        &cap,
        &dir,
        &[
            "name=dropbox,dns.query=*.dropbox.com",
            "name=dropbox-all,dns.query=*.dropbox.com,action=shared",
        ],
        1,
    );
    let want = app_cids(&run, "dns", |d| {
        d["queries"].as_array().is_some_and(|q| {
            q.iter().any(|q| {
                q["rrname"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(".dropbox.com"))
            })
        })
    });
    assert_eq!(want.len(), 3, "three dropbox lookups in the capture");
    assert_eq!(check_files_against_original(&run, &cap, "dropbox"), want);
    // The shared rule's file holds the same frames as the per-flow files.
    let mut per_flow: Vec<_> = run
        .of_type("pcap")
        .iter()
        .filter(|e| e["pcap"]["rule"] == "dropbox")
        .flat_map(|e| frames(Path::new(e["pcap"]["path"].as_str().unwrap_or("")), None))
        .collect();
    let shared: Vec<_> = run
        .of_type("pcap")
        .iter()
        .filter(|e| e["pcap"]["rule"] == "dropbox-all")
        .flat_map(|e| frames(Path::new(e["pcap"]["path"].as_str().unwrap_or("")), None))
        .collect();
    per_flow.sort();
    assert_eq!(per_flow.len(), 6);
    assert_eq!(
        shared, per_flow,
        "one worker: the shared file is in time order"
    );
    for e in run
        .of_type("pcap")
        .into_iter()
        .filter(|e| e["pcap"]["rule"] == "dropbox")
    {
        let reason = e["pcap"]["reason"].as_str().unwrap_or("");
        assert!(
            reason.starts_with("dns.query=") && reason.ends_with(".dropbox.com"),
            "{e}"
        );
    }
}

#[test]
fn tls_sni_rule_exports_one_flow_of_a_merged_capture() {
    let dir = fresh_dir("tls");
    let merged = dir.join("merged.pcapng");
    let o = Command::new("mergecap")
        .arg("-w")
        .arg(&merged)
        .arg(corpus().join("tls/ndpi-443-firefox.pcap"))
        .arg(corpus().join("tls/sv-community-id-ipv4--input.pcap"))
        .arg(corpus().join("mixed/sv-ethernet-eve--test.pcap"))
        .output()
        .expect("mergecap (installed with tshark by scripts/setup.sh)");
    assert!(o.status.success(), "{o:?}");
    let out = dir.join("files");
    std::fs::create_dir_all(&out).expect("dir");
    let run = export(
        &merged,
        &out,
        &["name=ntop,tls.sni=*.ntop.org,format=pcapng"],
        2,
    );
    let want = app_cids(&run, "tls", |t| t["sni"] == "www.ntop.org");
    assert_eq!(want.len(), 1);
    assert_eq!(check_files_against_original(&run, &merged, "ntop"), want);
    let e = run.of_type("pcap")[0];
    assert_eq!(e["pcap"]["reason"], "tls.sni=www.ntop.org");
    assert!(e["pcap"]["packets"].as_u64() > Some(600), "{e}");
}

#[test]
fn kpi_and_port_rules_from_the_config_file_in_flowtap_run() {
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    let dir = fresh_dir("kpi");
    let cfg = dir.join("export.toml");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("dir");
    std::fs::write(
        &cfg,
        format!(
            "[[export.rules]]\nname = \"big\"\ndir = \"{d}\"\nmatch.flow_packets = 40\n\n\
             [[export.rules]]\nname = \"dns53\"\ndir = \"{d}\"\nformat = \"pcap\"\n\
             match.proto = \"udp\"\nmatch.dst_port = 53\nmatch.cidr = \"192.168.0.0/16\"\n",
            d = files.display()
        ),
    )
    .expect("write");
    let run = flowtap(
        "run",
        &cap,
        &["--config", cfg.to_str().expect("path"), "--workers", "2"],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let flows = run.of_type("flow");
    let big: BTreeSet<String> = flows
        .iter()
        .filter(|f| {
            f["flow"]["pkts_toserver"].as_u64().unwrap_or(0)
                + f["flow"]["pkts_toclient"].as_u64().unwrap_or(0)
                >= 40
        })
        .map(|f| f["community_id"].as_str().expect("cid").to_string())
        .collect();
    assert!(big.len() >= 5, "{big:?}");
    assert_eq!(check_files_against_original(&run, &cap, "big"), big);
    let dns53: BTreeSet<String> = flows
        .iter()
        .filter(|f| {
            f["proto"] == "UDP"
                && f["dest_port"] == 53
                && [&f["src_ip"], &f["dest_ip"]]
                    .iter()
                    .any(|ip| ip.as_str().is_some_and(|s| s.starts_with("192.168.")))
        })
        .map(|f| f["community_id"].as_str().expect("cid").to_string())
        .collect();
    assert!(dns53.len() >= 5, "{dns53:?}");
    assert_eq!(check_files_against_original(&run, &cap, "dns53"), dns53);
    // Classic pcap with nanosecond timestamps.
    let one = run
        .of_type("pcap")
        .into_iter()
        .find(|e| e["pcap"]["rule"] == "dns53")
        .expect("a dns53 file");
    let bytes = std::fs::read(one["pcap"]["path"].as_str().expect("path")).expect("read");
    assert_eq!(bytes[..4], 0xa1b2_3c4du32.to_le_bytes());
    // Flow records are all still there.
    assert_eq!(
        run.stats()["stats"]["flows"]["records"].as_u64(),
        Some(flows.len() as u64)
    );
}

#[test]
fn everything_rule_captures_every_frame_into_a_ring() {
    let cap = corpus().join("mixed/sv-ethernet-eve--test.pcap");
    let dir = fresh_dir("ring");
    let run = export(&cap, &dir, &["name=everything,action=shared"], 2);
    let files = files_in(&dir);
    assert!(!files.is_empty());
    let mut got: Vec<(String, String, String)> =
        files.iter().flat_map(|f| frames(f, None)).collect();
    let mut want = frames(&cap, None);
    assert_eq!(want.len(), 132);
    // Workers write in their own order: compare as sets of frames.
    got.sort();
    want.sort();
    assert_eq!(got, want, "ARP frames included");
    let sum: u64 = run
        .of_type("pcap")
        .iter()
        .map(|e| e["pcap"]["packets"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sum, 132);
}

#[test]
fn retention_keeps_the_directory_within_its_limits() {
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    let dir = fresh_dir("retain");
    let run = export(&cap, &dir, &["name=web,app_proto=http,retain_files=3"], 2);
    let ex = &run.stats()["stats"]["export"];
    let written = ex["writer"]["files_written"].as_u64().unwrap_or(0);
    assert!(written > 10, "{ex}");
    let left = files_in(&dir);
    assert_eq!(left.len(), 3, "{left:?}");
    assert_eq!(
        ex["writer"]["files_removed_by_retention"].as_u64(),
        Some(written - 3)
    );
    // The files kept are the newest (their events came last).
    let newest: BTreeSet<PathBuf> = run
        .of_type("pcap")
        .iter()
        .rev()
        .take(3)
        .map(|e| PathBuf::from(e["pcap"]["path"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(left.iter().cloned().collect::<BTreeSet<_>>(), newest);

    let dir = fresh_dir("retain-bytes");
    let limit = 40_000u64;
    let run = export(
        &cap,
        &dir,
        &[&format!("name=web,app_proto=http,retain_bytes={limit}")],
        2,
    );
    let total: u64 = files_in(&dir)
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(total <= limit, "{total} bytes left, limit {limit}");
    assert!(total > 0);
    assert!(
        run.stats()["stats"]["export"]["writer"]["files_removed_by_retention"].as_u64() > Some(0)
    );
}

#[test]
fn fragmented_datagrams_export_every_fragment_frame() {
    let cap = corpus().join("ip-fragments/ndpi-dns_fragmented.pcap");
    let dir = fresh_dir("frag");
    let run = export(&cap, &dir, &["name=dnskey,dns.query=weberlab.de"], 1);
    let events = run.of_type("pcap");
    assert!(!events.is_empty());
    // The first lookup: query (1 frame) and a response in two IPv4 fragments.
    let e = events
        .iter()
        .find(|e| e["pcap"]["community_id"] == "1:etx70Tqlb6Ov07ddZqz/XMUvk3o=")
        .expect("the first DNSKEY lookup");
    let path = PathBuf::from(e["pcap"]["path"].as_str().expect("path"));
    let got = frames(&path, None);
    let want = frames(
        &cap,
        Some("ip.addr == 172.217.40.76 && ip.addr == 193.24.227.238"),
    );
    assert_eq!(want.len(), 3);
    assert_eq!(got, want);
}

#[test]
fn bad_rules_and_directories_are_clear_errors_before_any_packet() {
    let cap = corpus().join("dns/sv-cond-log-dns-dig--input.pcap");
    let dir = fresh_dir("bad");
    let d = dir.display().to_string();
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["--dir", &d, "--rule", "name=evil,cidr=10.0.0.0/99"],
            &["name=evil", "cidr", "prefix"],
        ),
        (
            &["--dir", &d, "--rule", "name=evil,htp.host=x"],
            &["htp.host", "unknown key"],
        ),
        (
            &["--dir", &d, "--rule", "name=a b,port=80"],
            &["name", "A-Z"],
        ),
        (
            &[
                "--dir",
                "/nonexistent/flowtap",
                "--rule",
                "name=gone,port=53",
            ],
            &["gone", "/nonexistent/flowtap"],
        ),
        (&["--rule", "name=nodir,port=53"], &["nodir", "dir"]),
    ];
    for (args, want) in cases {
        let run = flowtap("export", &cap, args);
        assert_eq!(run.status.code(), Some(1), "{args:?}: {}", run.stderr);
        for w in want {
            assert!(
                run.stderr.contains(w),
                "{args:?}: {w:?} not in {}",
                run.stderr
            );
        }
        assert!(run.of_type("flow").is_empty(), "nothing was read");
    }
    // A file where the directory should be.
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    let f = file.display().to_string();
    let run = flowtap(
        "export",
        &cap,
        &["--dir", &f, "--rule", "name=notdir,port=53"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("notdir") && run.stderr.contains(&f),
        "{}",
        run.stderr
    );
    // In the config file: the rule's index, name and field.
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        format!("[[export.rules]]\nname = \"x\"\ndir = \"{d}\"\nmatch.port = 70000\n"),
    )
    .expect("write");
    let run = flowtap("run", &cap, &["--config", cfg.to_str().expect("path")]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        run.stderr.contains("export.rules[0] `x`") && run.stderr.contains("match.port"),
        "{}",
        run.stderr
    );
}

#[test]
fn full_disk_counts_io_errors_and_capture_goes_on() {
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    let plain = flowtap("run", &cap, &["--workers", "2"]);
    assert!(plain.status.success());
    let dir = fresh_dir("full");
    let mnt = dir.join("mnt");
    let _fs = Tmpfs::mount(&mnt, "64k");
    let m = mnt.display().to_string();
    let events_file = dir.join("events.json");
    let o = Command::new(env!("CARGO_BIN_EXE_flowtap"))
        .args(["export", "--pcap"])
        .arg(&cap)
        .args([
            "--dir",
            &m,
            "--rule",
            "name=web,app_proto=http",
            "--workers",
            "2",
            "-o",
        ])
        .arg(&events_file)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events: Vec<Value> = std::fs::read_to_string(&events_file)
        .expect("events")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let stats = events
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .expect("stats");
    let w = &stats["stats"]["export"]["writer"];
    assert!(w["io_errors"].as_u64() > Some(0), "{w}");
    assert_eq!(stats["stats"]["packets"]["accounted"], true);
    let flows = |evs: &[Value]| {
        let mut v: Vec<String> = evs
            .iter()
            .filter(|e| e["event_type"] == "flow")
            .map(|e| format!("{} {}", e["community_id"], e["flow_id"]))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        flows(&events),
        flows(&plain.events),
        "every flow record is written"
    );
    // What was written is whole: every finished file in the mount reads
    // back with its event's hash.
    let by_path: BTreeMap<String, &Value> = events
        .iter()
        .filter(|e| e["event_type"] == "pcap")
        .map(|e| (e["pcap"]["path"].as_str().unwrap_or("").to_string(), e))
        .collect();
    for f in files_in(&mnt) {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(!name.starts_with('.'), "temporary file left: {name}");
        if let Some(e) = by_path.get(&f.display().to_string()) {
            assert_eq!(e["pcap"]["sha256"].as_str(), Some(sha256sum(&f).as_str()));
        }
    }
}

#[test]
fn a_full_pool_evicts_the_oldest_candidates_and_files_stay_exact_from_the_match() {
    // http.status is only known with the response, so every HTTP flow
    // buffers until then; a 64K pool cannot hold them all.
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    let dir = fresh_dir("evict");
    let cfg = dir.join("small.toml");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("dir");
    std::fs::write(
        &cfg,
        format!(
            "[export]\npool_bytes_per_worker = \"64K\"\n\n[[export.rules]]\nname = \"ok\"\n\
             dir = \"{}\"\nmatch.http.status = 200\n",
            files.display()
        ),
    )
    .expect("write");
    let run = flowtap(
        "run",
        &cap,
        &["--config", cfg.to_str().expect("path"), "--workers", "1"],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let ex = &run.stats()["stats"]["export"];
    assert!(ex["pool_evictions"].as_u64() > Some(0), "{ex}");
    assert!(ex["packets_missed"].as_u64() > Some(0), "{ex}");
    assert!(ex["pool_bytes_held"].as_u64() <= Some(64 << 10), "{ex}");
    let want = app_cids(&run, "http", |h| h["status"] == 200);
    let events = run.of_type("pcap");
    let got: BTreeSet<String> = events
        .iter()
        .map(|e| e["pcap"]["community_id"].as_str().unwrap_or("").to_string())
        .collect();
    // Every matching flow gets its file, unless it matched only as it
    // ended with its buffer gone (then it is counted, and has no file).
    assert!(got.is_subset(&want));
    assert_eq!(
        (want.len() - got.len()) as u64,
        ex["matches_without_packets"].as_u64().unwrap_or(0),
        "{ex}"
    );
    assert_eq!(ex["matches"].as_u64(), Some(want.len() as u64), "{ex}");
    assert!(got.len() * 2 > want.len(), "most still have a file: {ex}");
    // Each file is the flow's packets from some point on (what was evicted
    // is missing at the start only), in order and byte for byte.
    let by_flow = frames_by_flow(&cap);
    let mut shorter = 0;
    for e in &events {
        let p = &e["pcap"];
        let path = PathBuf::from(p["path"].as_str().expect("path"));
        let cid = p["community_id"].as_str().expect("cid");
        let got = frames(&path, None);
        let all = by_flow.get(cid).cloned().unwrap_or_default();
        assert!(
            !got.is_empty() && got.len() <= all.len(),
            "{e}: {} frames, the flow has {}",
            got.len(),
            all.len()
        );
        assert_eq!(got[..], all[all.len() - got.len()..], "{}", path.display());
        if got.len() < all.len() {
            shorter += 1;
        }
    }
    assert!(shorter > 0, "some files lost their start to evictions");
}
