//! Retention (a ring that never exceeds its limits while files are written,
//! counting an earlier run's files) and atomic appearance of finished files.

mod pcap_util;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use output::pcap::{ExportAction, FlowLabel};
use pcap_util::*;

const T0: u64 = 1_700_000_000_000_000_000;

/// Name → size of every entry of `dir` whose name contains `part`.
fn listing(dir: &Path, part: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    let len = e.metadata().ok()?.len();
                    name.contains(part).then_some((name, len))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn ring_stays_within_limits_while_writing_and_removes_oldest_first() {
    let dir = TempDir::new("ring");
    let d = dir.path();
    // An earlier run of the same rule left three files and a partial one;
    // a rule whose name extends this one's has a file too.
    let old: Vec<String> = (1..=3)
        .map(|i| format!("20200101T00000{i}.000000Z_all_{i:06}.pcapng"))
        .collect();
    for (i, n) in old.iter().enumerate() {
        std::fs::write(d.join(n), vec![0u8; 50_000]).expect("write");
        let f = std::fs::File::options()
            .write(true)
            .open(d.join(n))
            .expect("open");
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i as u64))
            .expect("mtime");
    }
    let other = "20200101T000001.000000Z_all_x_000001.pcapng";
    std::fs::write(d.join(other), vec![0u8; 10_000]).expect("write");
    let leftover = ".20200101T000009.000000Z_all_000009.pcapng.7.tmp";
    std::fs::write(d.join(leftover), vec![0u8; 1_000]).expect("write");

    let mut r = rule(
        "all",
        d,
        ExportAction::Shared {
            rotate_bytes: 64 * 1024,
            rotate_secs: None,
        },
    );
    r.retain_files = Some(4);
    r.retain_bytes = Some(300_000);
    let events_dir = TempDir::new("ring-events");
    let h = Harness::start(vec![r], events_dir.path());

    // At start: the leftover tmp is gone, the earlier files count (150 kB,
    // 3 files: within limits, so all kept for now).
    let start = listing(d, "_all_");
    assert!(!start.iter().any(|(n, _)| n == leftover), "{start:?}");
    assert_eq!(start.len(), 4, "{start:?}"); // 3 old + the other rule's

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        let d = d.to_path_buf();
        std::thread::spawn(move || {
            let (mut stable, mut max_files, mut max_bytes) = (0u32, 0usize, 0u64);
            while !stop.load(Ordering::Relaxed) {
                // Only a listing seen twice in a row is a consistent state.
                let a = listing(&d, "_all_");
                let b = listing(&d, "_all_");
                if a != b {
                    continue;
                }
                stable += 1;
                let mine: Vec<&(String, u64)> =
                    a.iter().filter(|(n, _)| !n.contains("_all_x_")).collect();
                let finished = mine.iter().filter(|(n, _)| !n.starts_with('.')).count();
                let bytes: u64 = mine.iter().map(|(_, s)| s).sum();
                max_files = max_files.max(finished);
                max_bytes = max_bytes.max(bytes);
                std::thread::sleep(Duration::from_micros(200));
            }
            (stable, max_files, max_bytes)
        })
    };

    let mut handle = h.writer.handle();
    let frames = 3000u64;
    for n in 0..frames {
        handle.shared_packet(0, 1, T0 + n * 1_000_000, 1000, &frame(n, 1000));
        if n % 10 == 9 {
            handle.flush();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    drop(handle);
    let writer_counters = h.writer.counters();
    let (summary, events) = h.finish();
    stop.store(true, Ordering::Relaxed);
    let (stable, max_files, max_bytes) = watcher.join().expect("watcher");
    assert!(stable > 10, "watcher saw only {stable} consistent listings");
    assert!(max_files <= 4, "{max_files} finished files seen");
    assert!(max_bytes <= 300_000, "{max_bytes} bytes seen");
    assert_eq!(
        writer_counters.files_written.load(Ordering::Relaxed),
        summary.files_written
    );

    let end = listing(d, "_all_");
    let mine: Vec<&(String, u64)> = end.iter().filter(|(n, _)| !n.contains("_all_x_")).collect();
    assert!(mine.len() <= 4 && !mine.is_empty(), "{end:?}");
    assert!(mine.iter().all(|(n, _)| !n.starts_with('.')), "{end:?}");
    assert!(mine.iter().map(|(_, s)| s).sum::<u64>() <= 300_000);
    // the earlier run's files went first; the other rule's file stayed
    for n in &old {
        assert!(!d.join(n).exists(), "{n} should have been removed");
    }
    assert!(d.join(other).exists());
    // what is left is the newest: the last frame is in the last file
    let last = read_pcapng(&std::fs::read(d.join(&mine[mine.len() - 1].0)).expect("read"));
    assert_eq!(
        last.frames.last().map(|f| f.ts_ns),
        Some(T0 + (frames - 1) * 1_000_000)
    );
    // counters: every removal counted, 3 of them the earlier run's
    let written = summary.files_written;
    assert_eq!(events.len() as u64, written);
    assert_eq!(
        summary.files_removed_by_retention,
        written + 3 - mine.len() as u64
    );
    let removed_new: u64 = events
        .iter()
        .filter(|e| {
            let p = e["pcap"]["path"].as_str().unwrap_or("");
            !Path::new(p).exists()
        })
        .map(|e| e["pcap"]["bytes"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(summary.bytes_removed, removed_new + 150_000);
    assert_eq!(summary.packets_written, frames);
    assert_eq!(summary.io_errors, 0);
}

#[test]
fn finished_files_appear_whole_under_their_final_name() {
    let dir = TempDir::new("atomic");
    let d = dir.path().to_path_buf();
    let events_dir = TempDir::new("atomic-events");
    // Live mode: a full queue drops (and counts) rather than waits.
    let h = Harness::start_with_queue(vec![rule("web", &d, per_flow())], events_dir.path(), 64);
    let flows = 120u64;
    let expected = |i: u64| 1 + (i % 7) * 25; // up to 151 frames of 500 bytes
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        let d = d.clone();
        std::thread::spawn(move || {
            let mut checked: HashMap<String, usize> = HashMap::new();
            loop {
                let done = stop.load(Ordering::Relaxed);
                for p in finished_files(&d) {
                    let name = p.file_name().and_then(|n| n.to_str()).expect("name");
                    if checked.contains_key(name) {
                        continue;
                    }
                    // Read it the moment it shows up: it must be complete.
                    let ng = read_pcapng(&std::fs::read(&p).expect("read"));
                    checked.insert(name.to_string(), ng.frames.len());
                }
                if done {
                    return checked;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
        })
    };
    let mut handle = h.writer.handle();
    let cids: Vec<String> = (0..flows).map(|i| format!("1:flow{i}")).collect();
    let mut open = Vec::new();
    let mut next = 0u64;
    let mut n = 0u64;
    // Keep ~10 flows open at once, interleaving their frames.
    while next < flows || !open.is_empty() {
        while open.len() < 10 && next < flows {
            let l = FlowLabel {
                flow_id: next,
                community_id: &cids[next as usize],
                first_ts_ns: T0 + next,
                linktype: 1,
                worker: 0,
                reason: "t",
            };
            open.push((handle.open(0, &l), next, 0u64));
            next += 1;
        }
        let k = (n as usize) % open.len();
        let (id, i, sent) = &mut open[k];
        handle.packet(*id, T0 + n, 500, &frame(n, 500));
        *sent += 1;
        n += 1;
        if *sent == expected(*i) {
            handle.close(*id);
            open.swap_remove(k);
            handle.flush();
        }
        if n.is_multiple_of(100) {
            handle.flush();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    drop(handle);
    let (summary, events) = h.finish();
    stop.store(true, Ordering::Relaxed);
    let checked = watcher.join().expect("watcher");
    assert_eq!(summary.files_written, flows);
    assert_eq!(events.len() as u64, flows);
    assert_eq!(checked.len() as u64, flows, "every file seen");
    let dropped: u64 = events
        .iter()
        .map(|e| e["pcap"]["dropped_packets"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(summary.queue_drops, dropped);
    assert_eq!(summary.packets_written + dropped, n);
    for i in 0..flows {
        let (name, frames) = checked
            .iter()
            .find(|(name, _)| name.contains(&format!("_web_1-flow{i}.")))
            .unwrap_or_else(|| panic!("no file for flow {i}"));
        let ev = events
            .iter()
            .find(|e| {
                e["pcap"]["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(name.as_str()))
            })
            .expect("event");
        // Frames the full queue dropped are counted in the file's event.
        let dropped = ev["pcap"]["dropped_packets"].as_u64().expect("dropped");
        assert_eq!(*frames as u64 + dropped, expected(i), "{name} {ev}");
        assert_eq!(ev["pcap"]["packets"], *frames as u64);
    }
    // no temporary file is left
    let hidden: Vec<_> = std::fs::read_dir(&d)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}
