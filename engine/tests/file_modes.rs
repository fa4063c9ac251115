//! Modes of what flowtap creates (event log, rotated and compressed files,
//! spool, PCAP export): 0640 files and 0750 directories whatever the umask,
//! or the configured `file_mode` and `group`. Runs the real binary under
//! umask 022 and 000.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::tmp_dir;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/samples/mixed-sample.pcap")
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn gid(p: &Path) -> u32 {
    fs::metadata(p).expect("meta").gid()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Replays the sample into a file sink that rotates (plain and gzip), a
/// syslog sink with a spool and a shared PCAP export, with `umask`, and `extra` TOML lines in every sink and rule.
fn replay(tag: &str, umask: &str, extra: &str) -> PathBuf {
    let dir = tmp_dir(tag);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("pcap")).expect("pcap dir");
    // A collector that takes everything: the spool file is made when the
    // sink opens, whether or not it is ever needed (a collector that is
    // down would only make the run wait for it at the end).
    let collector = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = collector.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in collector.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut &c, &mut std::io::sink());
            });
        }
    });
    let d = dir.display();
    let cfg = format!(
        r#"
[output]
[[output.sinks]]
url = "file://{d}/events.json?rotate_bytes=16k"
{extra}
[[output.sinks]]
url = "file://{d}/gz.json?rotate_bytes=16k&compress=gzip"
{extra}
[[output.sinks]]
url = "syslog+tcp://127.0.0.1:{port}"
spool_dir = "{d}/spool/sub"
when_full = "drop"
{extra}
[export]
[[export.rules]]
name = "all"
action = "shared"
dir = "{d}/pcap"
{extra}
"#
    );
    let cfg_path = dir.join("flowtap.toml");
    fs::write(&cfg_path, cfg).expect("config");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_flowtap"))
        .args(["run", "--quiet", "--no-progress", "--pcap"])
        .arg(sample())
        .arg("--config")
        .arg(&cfg_path)
        .output()
        .expect("run flowtap");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "flowtap failed: {stderr}");
    dir
}

fn created(dir: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    let mut gz = Vec::new();
    for e in fs::read_dir(dir).expect("read dir") {
        let n = e.expect("entry").file_name().to_string_lossy().into_owned();
        if n.starts_with("events.json.") {
            rotated.push(dir.join(&n));
        }
        if n.starts_with("gz.json.") && n.ends_with(".gz") {
            gz.push(dir.join(&n));
        }
    }
    assert!(!rotated.is_empty(), "no rotated event log");
    assert!(!gz.is_empty(), "no compressed rotated event log");
    let pcaps: Vec<PathBuf> = fs::read_dir(dir.join("pcap"))
        .expect("pcap dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(!pcaps.is_empty(), "no PCAP export");
    let spool = dir.join("spool/sub");
    let spools: Vec<PathBuf> = fs::read_dir(&spool)
        .expect("spool dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(!spools.is_empty(), "no spool file");
    let mut all = vec![dir.join("events.json"), dir.join("gz.json")];
    all.extend(rotated);
    all.extend(gz);
    all.extend(pcaps);
    all.extend(spools);
    all
}

#[test]
fn files_are_0640_and_directories_0750_whatever_the_umask() {
    for umask in ["022", "000"] {
        let dir = replay(&format!("modes-{umask}"), umask, "");
        for f in created(&dir) {
            assert_eq!(mode(&f), 0o640, "umask {umask}: {}", f.display());
        }
        for d in [dir.join("spool"), dir.join("spool/sub")] {
            assert_eq!(mode(&d), 0o750, "umask {umask}: {}", d.display());
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}

#[test]
fn file_mode_and_group_apply_to_every_file_and_spool_directory() {
    // chown to a group we are not in needs root; without it only the mode is checked.
    let root = is_root();
    let extra = if root {
        "file_mode = \"0660\"\ngroup = \"nogroup\""
    } else {
        "file_mode = \"0660\""
    };
    let nogroup = nix_gid("nogroup");
    // A strict umask would narrow 0660 to 0600: the mode is set exactly.
    for umask in ["077", "000"] {
        let dir = replay(&format!("group-{umask}"), umask, extra);
        let mut paths = created(&dir);
        paths.extend([dir.join("spool"), dir.join("spool/sub")]);
        for f in &paths {
            let want = if f.is_dir() { 0o770 } else { 0o660 };
            assert_eq!(mode(f), want, "umask {umask}: {}", f.display());
            if root {
                assert_eq!(gid(f), nogroup, "{}", f.display());
            }
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}

fn nix_gid(name: &str) -> u32 {
    let o = Command::new("getent")
        .args(["group", name])
        .output()
        .expect("getent");
    String::from_utf8_lossy(&o.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

#[test]
fn a_bad_mode_or_group_is_a_config_error_naming_the_field() {
    let dir = tmp_dir("modes-bad");
    for (body, field) in [
        (
            "[[output.sinks]]\nurl = \"/tmp/x.json\"\nfile_mode = \"0648\"\n",
            "output.sinks[0].file_mode",
        ),
        (
            "[[output.sinks]]\nurl = \"/tmp/x.json\"\ngroup = \"no-such-group-flowtap\"\n",
            "output.sinks[0].group",
        ),
        (
            "[[output.sinks]]\nurl = \"syslog+udp://h:1\"\nfile_mode = \"0600\"\n",
            "output.sinks[0].file_mode",
        ),
        (
            "[[export.rules]]\nname = \"r\"\ndir = \"/tmp\"\ngroup = \"no-such-group-flowtap\"\n",
            "group",
        ),
        (
            "[[export.rules]]\nname = \"r\"\ndir = \"/tmp\"\nfile_mode = \"0400\"\n",
            "file_mode",
        ),
    ] {
        let p = dir.join("bad.toml");
        fs::write(&p, body).expect("write");
        let o = Command::new(env!("CARGO_BIN_EXE_flowtap"))
            .args(["run", "--quiet", "--no-progress", "--pcap"])
            .arg(sample())
            .arg("--config")
            .arg(&p)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{body}");
        assert!(stderr.contains(field), "{body}: {stderr}");
    }
    fs::remove_dir_all(&dir).expect("cleanup");
}
