//! Per-flow and shared files: content read back byte for byte, opened by
//! tshark/capinfos, SHB comments, nanosecond timestamps, sha256, snap length,
//! gzip, classic pcap, per-flow limits and the `pcap` events.

mod pcap_util;

use output::pcap::{ExportAction, FlowLabel, PcapCompression, PcapFormat};
use pcap_util::*;

const T0: u64 = 1_700_000_000_123_456_789;

fn label<'a>(flow_id: u64, cid: &'a str, reason: &'a str) -> FlowLabel<'a> {
    FlowLabel {
        flow_id,
        community_id: cid,
        first_ts_ns: T0 + flow_id,
        linktype: 1,
        worker: 3,
        reason,
    }
}

#[test]
fn per_flow_pcapng_reads_back_byte_identical_in_tshark() {
    let dir = TempDir::new("perflow");
    let h = Harness::start(vec![rule("web", dir.path(), per_flow())], dir.path());
    let mut handle = h.writer.handle();
    let cids = ["1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:b/c+d="];
    let mut sent: Vec<Vec<Frame>> = vec![Vec::new(), Vec::new()];
    let ids: Vec<_> = cids
        .iter()
        .enumerate()
        .map(|(i, c)| handle.open(0, &label(i as u64 + 1, c, "http.host=example.com")))
        .collect();
    for n in 0..300u64 {
        let f = (n % 2) as usize;
        let len = 60 + (n as usize * 37) % 1400;
        let data = frame(n, len);
        let ts = T0 + n * 1_000_003; // odd nanoseconds
        handle.packet(ids[f], ts, len as u32 + 4, &data);
        sent[f].push(Frame {
            ts_ns: ts,
            orig_len: len as u32 + 4,
            data,
        });
        if n % 50 == 0 {
            handle.flush();
        }
    }
    handle.close(ids[0]);
    handle.close(ids[1]);
    drop(handle);
    let (summary, events) = h.finish();
    assert_eq!(summary.files_opened, 2);
    assert_eq!(summary.files_written, 2);
    assert_eq!(summary.packets_written, 300);
    assert_eq!(summary.queue_drops, 0);
    assert_eq!(summary.io_errors, 0);

    let files = finished_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let name0 = "20231114T221320.123456Z_web_1-LQU9qZlK-B5F3KDmev6m5PMibrg.pcapng";
    let name1 = "20231114T221320.123456Z_web_1-b.c-d.pcapng";
    assert!(files.iter().any(|p| p.ends_with(name0)), "{files:?}");
    assert!(files.iter().any(|p| p.ends_with(name1)), "{files:?}");
    assert_eq!(events.len(), 2);
    let mut total_bytes = 0;
    for (i, cid) in cids.iter().enumerate() {
        let path = dir.path().join(if i == 0 { name0 } else { name1 });
        let bytes = std::fs::read(&path).expect("read");
        total_bytes += bytes.len() as u64;
        let ng = read_pcapng(&bytes);
        assert_eq!(ng.frames, sent[i], "file {i} frames");
        assert_eq!(ng.tsresol, 9);
        assert_eq!(ng.linktype, 1);
        let c = &ng.comments[0];
        for want in [
            "rule: web",
            "reason: http.host=example.com",
            &format!("flow_id: {}", i + 1),
            &format!("community_id: {cid}"),
            &format!("flowtap {}", env!("CARGO_PKG_VERSION")),
        ] {
            assert!(c.contains(want), "comment {c:?} lacks {want:?}");
        }

        // tshark opens it and sees the same frames, to the nanosecond.
        let p = path.to_str().expect("utf8");
        let (ok, out, err) = run(
            "tshark",
            &[
                "-r",
                p,
                "-T",
                "fields",
                "-e",
                "frame.time_epoch",
                "-e",
                "frame.len",
                "-e",
                "frame.cap_len",
            ],
        );
        assert!(ok && err.trim().is_empty(), "tshark: {err}");
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), sent[i].len());
        for (row, f) in rows.iter().zip(&sent[i]) {
            let want = format!(
                "{}.{:09}\t{}\t{}",
                f.ts_ns / 1_000_000_000,
                f.ts_ns % 1_000_000_000,
                f.orig_len,
                f.data.len()
            );
            assert_eq!(*row, want);
        }
        // and the same bytes (hex dump)
        let (ok, out, _) = run("tshark", &["-r", p, "-x"]);
        assert!(ok);
        let dumped = hex_dump_frames(&out);
        let want: Vec<Vec<u8>> = sent[i].iter().map(|f| f.data.clone()).collect();
        assert_eq!(dumped, want, "tshark -x bytes of file {i}");

        // capinfos: no error, nanosecond resolution, the SHB comment.
        let (ok, out, err) = run("capinfos", &["-M", p]);
        assert!(ok, "capinfos: {err}");
        assert!(out.contains("pcapng"), "{out}");
        assert!(
            out.contains(&format!("Number of packets:   {}", sent[i].len())),
            "{out}"
        );
        assert!(out.contains("nanoseconds"), "{out}");
        assert!(out.contains("Capture comment:     flowtap"), "{out}");
        assert!(out.contains("rule: web"), "{out}");

        // the event: path, counts and the sha256 of the finished file
        let ev = events
            .iter()
            .find(|e| e["pcap"]["path"] == p)
            .unwrap_or_else(|| panic!("no event for {p}: {events:?}"));
        assert_eq!(ev["event_type"], "pcap");
        assert_eq!(ev["flow_id"], i as u64 + 1);
        assert_eq!(ev["community_id"], *cid);
        let pc = &ev["pcap"];
        assert_eq!(pc["rule"], "web");
        assert_eq!(pc["packets"], sent[i].len() as u64);
        assert_eq!(pc["bytes"], bytes.len() as u64);
        let captured: usize = sent[i].iter().map(|f| f.data.len()).sum();
        assert_eq!(pc["captured_bytes"], captured as u64);
        assert_eq!(pc["dropped_packets"], 0);
        assert_eq!(pc["reason"], "http.host=example.com");
        assert_eq!(pc["worker"], 3);
        assert_eq!(pc["truncated"], false);
        let (ok, out, _) = run("sha256sum", &[p]);
        assert!(ok);
        assert_eq!(
            pc["sha256"].as_str(),
            out.split_whitespace().next(),
            "sha256 of {p}"
        );
    }
    assert_eq!(summary.bytes_written, total_bytes);
}

/// Frames' bytes from `tshark -x` (blank-line separated hex dumps).
fn hex_dump_frames(out: &str) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut cur = Vec::new();
    for line in out.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                frames.push(std::mem::take(&mut cur));
            }
            continue;
        }
        // "0000  45 00 00 ...   ascii"
        let rest = &line[line.find("  ").map_or(0, |i| i + 2)..];
        let hex = rest.get(..48).unwrap_or(rest);
        for tok in hex.split_whitespace() {
            cur.push(u8::from_str_radix(tok, 16).expect("hex byte"));
        }
    }
    if !cur.is_empty() {
        frames.push(cur);
    }
    frames
}

#[test]
fn snaplen_gzip_classic_pcap_and_limits() {
    let dir = TempDir::new("variants");
    let mut snap = rule("snap", dir.path(), per_flow());
    snap.snaplen = 64;
    let mut gz = rule("gz", dir.path(), per_flow());
    gz.compression = PcapCompression::Gzip;
    let mut classic = rule("classic", dir.path(), per_flow());
    classic.format = PcapFormat::Pcap;
    let limited = rule(
        "limited",
        dir.path(),
        ExportAction::PerFlow {
            max_packets: Some(5),
            max_bytes: None,
        },
    );
    let h = Harness::start(vec![snap, gz, classic, limited], dir.path());
    let mut handle = h.writer.handle();
    let ids: Vec<_> = (0..4)
        .map(|r| handle.open(r, &label(10 + r as u64, "1:x", "test")))
        .collect();
    let frames: Vec<Vec<u8>> = (0..20u64).map(|n| frame(n + 100, 200)).collect();
    for (n, f) in frames.iter().enumerate() {
        for id in &ids {
            handle.packet(*id, T0 + n as u64, 1500, f);
        }
    }
    for id in &ids {
        handle.close(*id);
    }
    drop(handle);
    let (summary, events) = h.finish();
    assert_eq!(summary.files_written, 4);
    assert_eq!(events.len(), 4);
    let path_of = |rule: &str| {
        let ev = events
            .iter()
            .find(|e| e["pcap"]["rule"] == rule)
            .expect("event");
        std::path::PathBuf::from(ev["pcap"]["path"].as_str().expect("path"))
    };

    // snap length: 64 bytes kept, the wire length stays
    let ng = read_pcapng(&std::fs::read(path_of("snap")).expect("read"));
    assert_eq!(ng.snaplen, 64);
    assert_eq!(ng.frames.len(), 20);
    for (got, want) in ng.frames.iter().zip(&frames) {
        assert_eq!(got.data, want[..64]);
        assert_eq!(got.orig_len, 1500);
    }

    // gzip: a .pcapng.gz that tshark reads; sha256 is of the compressed file
    let gzp = path_of("gz");
    assert!(gzp.to_str().expect("utf8").ends_with(".pcapng.gz"));
    let raw = std::fs::read(&gzp).expect("read");
    let ng = read_pcapng(&gunzip(&raw));
    assert_eq!(ng.frames.len(), 20);
    assert_eq!(ng.frames[7].data, frames[7]);
    let (ok, out, err) = run("capinfos", &["-c", gzp.to_str().expect("utf8")]);
    assert!(ok, "{err}");
    assert!(out.contains("Number of packets:   20"), "{out}");
    let ev = events
        .iter()
        .find(|e| e["pcap"]["rule"] == "gz")
        .expect("ev");
    assert_eq!(ev["pcap"]["compression"], "gzip");
    assert_eq!(ev["pcap"]["bytes"], raw.len() as u64);
    let (_, out, _) = run("sha256sum", &[gzp.to_str().expect("utf8")]);
    assert_eq!(ev["pcap"]["sha256"].as_str(), out.split_whitespace().next());

    // classic pcap, nanosecond magic; tshark prints nanoseconds
    let cp = path_of("classic");
    assert!(cp.to_str().expect("utf8").ends_with(".pcap"));
    let (lt, snaplen, got) = read_pcap(&std::fs::read(&cp).expect("read"));
    assert_eq!((lt, snaplen), (1, 262_144));
    assert_eq!(got.len(), 20);
    assert_eq!(got[19].ts_ns, T0 + 19);
    assert_eq!(got[19].data, frames[19]);
    let (ok, out, err) = run(
        "tshark",
        &[
            "-r",
            cp.to_str().expect("utf8"),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().nth(19), Some("1700000000.123456808"));

    // per-flow limit: 5 packets, then the file is finished (truncated)
    let ng = read_pcapng(&std::fs::read(path_of("limited")).expect("read"));
    assert_eq!(ng.frames.len(), 5);
    let ev = events
        .iter()
        .find(|e| e["pcap"]["rule"] == "limited")
        .expect("ev");
    assert_eq!(ev["pcap"]["truncated"], true);
    assert_eq!(ev["pcap"]["packets"], 5);
}

#[test]
fn shared_files_rotate_by_size_and_packet_age() {
    let dir = TempDir::new("shared");
    let ring = rule(
        "all",
        dir.path(),
        ExportAction::Shared {
            rotate_bytes: 100_000,
            rotate_secs: Some(60),
        },
    );
    let h = Harness::start(vec![ring], dir.path());
    let mut handle = h.writer.handle();
    // 1000 frames of 1000 bytes in the first 10 s, then one frame 2 min later
    for n in 0..1000u64 {
        handle.shared_packet(0, 1, T0 + n * 10_000_000, 1000, &frame(n, 1000));
    }
    handle.shared_packet(0, 1, T0 + 120_000_000_000, 1000, &frame(5000, 1000));
    drop(handle);
    let (summary, events) = h.finish();
    let files = finished_files(dir.path());
    // 1032 bytes per EPB: 96 per 100 kB file → 11 files, then one for the late frame
    assert_eq!(files.len(), 12, "{files:?}");
    assert_eq!(summary.files_written, 12);
    assert_eq!(events.len(), 12);
    let mut frames = 0;
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).expect("read");
        assert!(bytes.len() <= 100_000, "{f:?} {}", bytes.len());
        let ng = read_pcapng(&bytes);
        frames += ng.frames.len();
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name.ends_with(&format!("_all_{:06}.pcapng", i + 1)),
            "{name}"
        );
        assert!(ng.comments[0].contains("rule: all"));
    }
    assert_eq!(frames, 1001);
    let last = read_pcapng(&std::fs::read(&files[11]).expect("read"));
    assert_eq!(last.frames.len(), 1);
    assert_eq!(last.frames[0].ts_ns, T0 + 120_000_000_000);
    assert!(events.iter().all(|e| e.get("flow_id").is_none()));
}

#[test]
fn blocking_handles_lose_nothing_with_a_one_chunk_queue() {
    let dir = TempDir::new("block");
    let h = Harness::start_with(
        vec![rule("web", dir.path(), per_flow())],
        dir.path(),
        1,
        true,
    );
    let mut handles: Vec<_> = (0..3).map(|_| h.writer.handle()).collect();
    let ids: Vec<_> = handles
        .iter_mut()
        .enumerate()
        .map(|(i, hd)| hd.open(0, &label(i as u64, "1:x", "t")))
        .collect();
    let threads: Vec<_> = handles
        .into_iter()
        .zip(ids)
        .map(|(mut hd, id)| {
            std::thread::spawn(move || {
                for n in 0..2000u64 {
                    hd.packet(id, T0 + n, 900, &frame(n, 900));
                    hd.flush(); // one chunk per frame: the queue is full often
                }
                hd.close(id);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker");
    }
    let (summary, events) = h.finish();
    assert_eq!(summary.queue_drops, 0);
    assert_eq!(summary.packets_written, 6000);
    assert_eq!(events.len(), 3);
    for e in &events {
        assert_eq!(e["pcap"]["packets"], 2000);
        assert_eq!(e["pcap"]["dropped_packets"], 0);
    }
}

#[test]
fn a_quiet_shared_file_is_finished_by_wall_clock_age() {
    let dir = TempDir::new("age");
    let ring = rule(
        "quiet",
        dir.path(),
        ExportAction::Shared {
            rotate_bytes: 1 << 30,
            rotate_secs: Some(1),
        },
    );
    let h = Harness::start(vec![ring], dir.path());
    let mut handle = h.writer.handle();
    handle.shared_packet(0, 1, T0, 100, &frame(1, 100));
    handle.flush();
    // No more frames: the writer finishes the file on its own after ~1 s.
    let start = std::time::Instant::now();
    while finished_files(dir.path()).is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "not rotated"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(start.elapsed() >= std::time::Duration::from_millis(700));
    handle.shared_packet(0, 1, T0 + 1, 100, &frame(2, 100));
    drop(handle);
    let (summary, events) = h.finish();
    assert_eq!(summary.files_written, 2);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["pcap"]["packets"] == 1));
}

#[test]
fn big_gzip_files_are_many_members_that_tools_read_whole() {
    let dir = TempDir::new("gzbig");
    let mut per = rule("gzf", dir.path(), per_flow());
    per.compression = PcapCompression::Gzip;
    let mut shared = rule(
        "gzs",
        dir.path(),
        ExportAction::Shared {
            rotate_bytes: 1 << 30,
            rotate_secs: None,
        },
    );
    shared.compression = PcapCompression::Gzip;
    shared.format = PcapFormat::Pcap;
    let h = Harness::start(vec![per, shared], dir.path());
    let mut handle = h.writer.handle();
    let id = handle.open(0, &label(1, "1:gz", "t"));
    let sent: Vec<Vec<u8>> = (0..400u64).map(|n| frame(n, 1000)).collect();
    for (n, f) in sent.iter().enumerate() {
        handle.packet(id, T0 + n as u64, 1000, f);
        handle.shared_packet(1, 1, T0 + n as u64, 1000, f);
    }
    handle.close(id);
    drop(handle);
    let (summary, events) = h.finish();
    assert_eq!(summary.files_written, 2);
    for e in &events {
        let p = e["pcap"]["path"].as_str().expect("path");
        let raw = std::fs::read(p).expect("read");
        // more than one gzip member
        let members = raw.windows(4).filter(|w| w == &[0x1f, 0x8b, 8, 0]).count();
        assert!(members >= 2, "{p}: {members} members");
        let (ok, _, err) = run("gzip", &["-t", p]);
        assert!(ok, "gzip -t {p}: {err}");
        let frames = if p.ends_with(".pcapng.gz") {
            read_pcapng(&gunzip(&raw)).frames
        } else {
            read_pcap(&gunzip(&raw)).2
        };
        assert_eq!(frames.len(), 400);
        assert!(frames.iter().zip(&sent).all(|(g, s)| g.data == *s));
        // Wireshark reads every member
        let (ok, out, err) = run("capinfos", &["-c", p]);
        assert!(ok, "{err}");
        assert!(out.contains("Number of packets:   400"), "{out}");
        let (ok, out, err) = run("tshark", &["-r", p, "-T", "fields", "-e", "frame.cap_len"]);
        assert!(ok && err.trim().is_empty(), "{err}");
        assert_eq!(out.lines().filter(|l| *l == "1000").count(), 400);
        let (_, out, _) = run("sha256sum", &[p]);
        assert_eq!(e["pcap"]["sha256"].as_str(), out.split_whitespace().next());
        assert_eq!(e["pcap"]["bytes"], raw.len() as u64);
    }
}
