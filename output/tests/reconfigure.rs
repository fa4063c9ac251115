//! `LineWriter::reconfigure` (a configuration reload): unchanged sinks keep
//! running and keep their file, a new sink starts and gets the events sent
//! after the change, a removed one ends after delivering what it was given.

use output::event::{StatValue, StatsEvent};
use output::schema::EncodeOptions;
use output::sink::SinkSpec;
use output::writer::{LineWriter, WhenFull};
use output::Volume;

fn stats(n: u64) -> StatsEvent {
    StatsEvent {
        ts_ns: n * 1_000_000_000,
        members: vec![("n".into(), StatValue::Number(n))],
    }
}

fn numbers(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["stats"]["n"].as_u64().expect("n")
        })
        .collect()
}

#[test]
fn sinks_are_kept_added_and_retired_without_losing_events() {
    let dir = std::env::temp_dir().join(format!("flowtap-reconf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let a = dir.join("a.json");
    let b = dir.join("b.json");
    // b.json holds lines of an earlier run: a sink added by a reload appends.
    std::fs::write(&b, "{\"stats\":{\"n\":0}}\n").expect("seed b");
    let spec = |p: &std::path::Path| {
        let mut s = SinkSpec::parse_url(&p.display().to_string()).expect("spec");
        s.when_full = Some(WhenFull::Block);
        s
    };
    let (mut writer, first) = LineWriter::start(
        vec![spec(&a)],
        EncodeOptions::default(),
        Volume::default(),
        WhenFull::Block,
    )
    .expect("start");
    for n in 1..=10 {
        first.submit_stats(&stats(n));
    }
    let (second, changes) = writer
        .reconfigure(
            vec![spec(&a), spec(&b)],
            EncodeOptions::default(),
            Volume::default(),
        )
        .expect("add b");
    assert_eq!(changes.kept.len(), 1, "{changes:?}");
    assert_eq!(changes.started.len(), 1, "{changes:?}");
    assert!(changes.retired.is_empty(), "{changes:?}");
    drop(first);
    for n in 11..=20 {
        second.submit_stats(&stats(n));
    }
    // A sink that cannot be opened: refused, nothing changes.
    let bad = spec(&dir.join("no-such-dir").join("c.json"));
    let e = writer
        .reconfigure(
            vec![spec(&a), spec(&b), bad],
            EncodeOptions::default(),
            Volume::default(),
        )
        .err()
        .expect("a sink in a missing directory is refused");
    assert!(format!("{e:#}").contains("sink"), "{e}");
    for n in 21..=25 {
        second.submit_stats(&stats(n));
    }
    // Remove a: it ends once `second` (made before) is gone.
    let (third, changes) = writer
        .reconfigure(vec![spec(&b)], EncodeOptions::default(), Volume::default())
        .expect("remove a");
    assert_eq!(changes.retired.len(), 1, "{changes:?}");
    assert_eq!(changes.kept.len(), 1, "{changes:?}");
    drop(second);
    for n in 26..=30 {
        third.submit_stats(&stats(n));
    }
    drop(third);
    let snaps = writer.join().expect("join");
    assert_eq!(snaps.len(), 2, "the retired sink is reported too");
    assert_eq!(numbers(&a), (1..=25).collect::<Vec<_>>());
    let mut want_b = vec![0];
    want_b.extend(11..=30);
    assert_eq!(numbers(&b), want_b);
    let _ = std::fs::remove_dir_all(&dir);
}
