//! The one guard of every test that needs root (namespaces, XDP, mounts).
//! Shared by the engine's and the capture crate's tests (`#[path]`).
//!
//! Under CI (`CI` set to anything but `false`/`0`, as CI systems do) a test
//! that needs root fails when not root: CI runs as root, so a skip there
//! would be a test that passes without testing. Locally it may skip, with a
//! message that cannot be missed.

#![allow(dead_code)]

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Whether this is a CI run.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// True when the test may go on. Not root: panics under CI, else prints a
/// loud SKIPPED line naming the test (or `module`) and `why` and returns false.
pub fn root_or_skip(module: &str, why: &str) -> bool {
    if is_root() {
        return true;
    }
    // The test harness names each test's thread after the test.
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main").unwrap_or(module);
    assert!(
        !under_ci(),
        "{test} needs root ({why}) and CI runs as root: not root here, so it fails rather than skip"
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPED {test}: needs root ({why}); under CI (CI=true) this fails !!!!!\n"
    );
    false
}

/// `return`s from the test unless it may go on (see [`root_or_skip`]).
#[macro_export]
macro_rules! require_root {
    ($why:expr) => {
        if !$crate::root::root_or_skip(module_path!(), $why) {
            return;
        }
    };
}
