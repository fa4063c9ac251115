//! I/O errors for real: a full disk (a 256 kB tmpfs mounted by the test) and
//! unusable directories at start. Needs root (mount); tests run as root.

mod pcap_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use output::pcap::{ExportConfig, FlowLabel, PcapError, PcapWriter};
use pcap_util::*;

const T0: u64 = 1_700_000_000_000_000_000;

/// A tmpfs mounted for the test, unmounted on drop (also when it fails).
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(tag: &str, opts: &str) -> Tmpfs {
        let dir = TempDir::new(tag);
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("cannot run mount (util-linux; see scripts/setup.sh)");
        assert!(st.success(), "mount tmpfs failed: these tests need root");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn label(i: u64, cid: &str) -> FlowLabel<'_> {
    FlowLabel {
        flow_id: i,
        community_id: cid,
        first_ts_ns: T0 + i * 1_000_000,
        linktype: 1,
        worker: 0,
        reason: "t",
    }
}

#[test]
fn a_full_disk_abandons_one_file_and_the_others_go_on() {
    let fs = Tmpfs::mount("full", "size=256k");
    let events_dir = TempDir::new("full-events");
    let h = Harness::start(vec![rule("web", fs.path(), per_flow())], events_dir.path());
    let mut handle = h.writer.handle();
    // A (60 kB) fits, B (400 kB) cannot, C (40 kB) fits in what B leaves.
    let sizes = [(60u64, "1:a"), (400, "1:b"), (40, "1:c")];
    let mut n = 0u64;
    for (i, (kb, cid)) in sizes.iter().enumerate() {
        let id = handle.open(0, &label(i as u64, cid));
        for _ in 0..*kb {
            handle.packet(id, T0 + n, 1000, &frame(n, 1000));
            n += 1;
        }
        handle.close(id);
        handle.flush();
    }
    drop(handle);
    let (summary, events) = h.finish();
    assert_eq!(summary.io_errors, 1, "{summary:?}");
    // all of B's frames: those written before the error and those after
    assert_eq!(summary.packets_failed, 400, "{summary:?}");
    assert_eq!(summary.packets_written, 100);
    assert_eq!(summary.files_opened, 3);
    assert_eq!(summary.files_written, 2);
    let files = finished_files(fs.path());
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(String::from))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].ends_with("_web_1-a.pcapng"), "{names:?}");
    assert!(names[1].ends_with("_web_1-c.pcapng"), "{names:?}");
    let a = read_pcapng(&std::fs::read(&files[0]).expect("read"));
    assert_eq!(a.frames.len(), 60);
    let c = read_pcapng(&std::fs::read(&files[1]).expect("read"));
    assert_eq!(c.frames.len(), 40);
    // B's temporary file is gone
    let all: Vec<_> = std::fs::read_dir(fs.path())
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["pcap"]["community_id"] != "1:b"));
}

#[test]
fn a_full_disk_report_is_one_stderr_line() {
    // Run the scenario in a child (this test binary, filtered to the test
    // above) and look at its stderr.
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .args([
            "--exact",
            "a_full_disk_abandons_one_file_and_the_others_go_on",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run child");
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{err}");
    let lines: Vec<&str> = err
        .lines()
        .chain(stdout.lines())
        .filter(|l| l.contains("pcap export"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("rule `web`"), "{}", lines[0]);
    assert!(lines[0].contains("No space left on device"), "{}", lines[0]);
}

fn start_err(dir: PathBuf) -> String {
    let events_dir = TempDir::new("err-events");
    let _ = &events_dir;
    match PcapWriter::start(
        ExportConfig {
            rules: vec![
                rule("fine", &std::env::temp_dir(), per_flow()),
                rule("bad-one", &dir, per_flow()),
            ],
            queue_chunks: 4,
            block_when_full: false,
        },
        None,
    ) {
        Ok(_) => panic!("{} accepted", dir.display()),
        Err(e @ PcapError::Dir { .. }) => {
            let mut s = e.to_string();
            if let Some(src) = std::error::Error::source(&e) {
                s.push_str(&format!(": {src}"));
            }
            s
        }
        Err(e) => panic!("wrong error {e:?}"),
    }
}

#[test]
fn unusable_directories_are_refused_at_start_naming_rule_and_dir() {
    let tmp = TempDir::new("baddirs");
    let missing = tmp.path().join("missing");
    let e = start_err(missing.clone());
    assert!(e.contains("`bad-one`"), "{e}");
    assert!(e.contains(missing.to_str().expect("utf8")), "{e}");
    assert!(e.contains("No such file"), "{e}");

    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let e = start_err(file);
    assert!(
        e.contains("`bad-one`") && e.contains("not a directory"),
        "{e}"
    );

    // root may write anywhere by permission, but not on a read-only mount
    let ro = Tmpfs::mount("ro", "ro,size=64k");
    let e = start_err(ro.path().to_path_buf());
    assert!(
        e.contains("`bad-one`") && e.contains("Read-only file system"),
        "{e}"
    );
}
