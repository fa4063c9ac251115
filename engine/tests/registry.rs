//! The protocol registry's compliance test: walks every registered protocol
//! and checks that it has everything the rest of flowtap expects of one —
//! a fuzz target, a config section that round-trips through
//! `default-config`, an encoding in every schema that parses as JSON and
//! passes that schema's checks, per-type counters and metrics, sampling,
//! event-type sets, export-rule fields that compile, and its fields in
//! `docs/`. A protocol added without one of these fails here, by name.

use std::path::{Path, PathBuf};

use dissect::app::registry::MatchKind;
use dissect::app::{AppEvent, AppProto};
use dissect::event::AppEnvelope;
use engine::config::{default_config_toml, Config};
use engine::stats::{AppEventCounts, Snapshot, WorkerStats};
use output::schema::ecs_check::ecs_problems;
use output::schema::{encode_app, testdata};
use output::{EncodeOptions, EventType, Schema, TypeSet};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_registry_lists_distinct_lower_case_names() {
    assert!(!AppProto::ALL.is_empty());
    for (i, p) in AppProto::ALL.iter().enumerate() {
        let name = p.as_str();
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}: names are event types, config keys and metric labels"
        );
        assert_eq!(p.index(), i);
        assert_eq!(AppProto::parse(name), Some(*p));
        for reserved in ["flow", "stats", "pcap", "enabled"] {
            assert_ne!(name, reserved, "`{name}` is taken");
        }
    }
    let mut names: Vec<&str> = AppProto::ALL.iter().map(|p| p.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), AppProto::COUNT, "duplicate protocol names");
}

#[test]
fn every_protocol_has_a_fuzz_target() {
    let manifest = read("fuzz/Cargo.toml");
    for p in AppProto::ALL {
        let name = p.as_str();
        let target = format!("fuzz/fuzz_targets/{name}.rs");
        let src = read(&target);
        assert!(
            src.contains("fuzz_target!"),
            "{target} is not a fuzz target"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\""))
                && manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
    }
}

#[test]
fn every_config_section_round_trips_through_default_config() {
    let text = default_config_toml();
    let cfg = Config::from_toml(&text, "default-config").expect("default-config parses");
    assert_eq!(cfg, Config::default());
    assert_eq!(
        read("deploy/flowtap.toml"),
        text,
        "deploy/flowtap.toml is not `flowtap default-config` (regenerate it)"
    );
    for p in AppProto::ALL {
        let info = p.info();
        let header = format!("[app.{}]", p.as_str());
        assert!(
            info.config_toml.starts_with(&header),
            "{}: CONFIG_TOML must start with {header}",
            p.as_str()
        );
        assert!(
            text.contains(info.config_toml),
            "{header} not in default-config"
        );
        // The section alone gives the defaults; every line is a key that exists.
        let alone = Config::from_toml(info.config_toml, &header).expect("section parses");
        assert_eq!(
            alone,
            Config::default(),
            "{header} differs from the defaults"
        );
        let keys: Vec<&str> = info
            .config_toml
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with('[') && l.contains('='))
            .filter_map(|l| l.split('=').next())
            .map(str::trim)
            .collect();
        assert!(!keys.is_empty(), "{header} documents no key");
        // A typo is refused with the key's name.
        let typo = format!("{header}\n{}x = 1\n", keys[0]);
        let err = Config::from_toml(&typo, "typo").expect_err("unknown key");
        assert!(err.to_string().contains(&format!("{}x", keys[0])), "{err}");
    }
}

fn encode(schema: Schema, ev: &AppEvent) -> Option<Value> {
    let rec = testdata::flow();
    let env: AppEnvelope<'_> = testdata::envelope(&rec, ev);
    let mut buf = Vec::new();
    if !encode_app(
        schema,
        &EncodeOptions::new("sensor".into(), 64),
        &env,
        &mut buf,
    ) {
        return None;
    }
    assert_eq!(buf.last(), Some(&b'\n'), "{schema:?}: one line per event");
    assert_eq!(
        buf.iter().filter(|&&b| b == b'\n').count(),
        1,
        "{schema:?}: one line per event"
    );
    Some(serde_json::from_slice(&buf).unwrap_or_else(|e| {
        panic!(
            "{schema:?} {}: not JSON ({e}): {}",
            ev.proto().as_str(),
            String::from_utf8_lossy(&buf)
        )
    }))
}

#[test]
fn every_protocol_is_written_in_every_schema() {
    for &p in AppProto::ALL {
        let name = p.as_str();
        let ev = AppEvent::example(p);
        assert_eq!(ev.proto(), p);
        assert!(
            ev.start_ns().is_some(),
            "{name}: example without a start time"
        );
        for schema in Schema::ALL {
            let t = EventType::App(p);
            let Some(v) = encode(schema, &ev) else {
                assert!(
                    !schema.supports(t),
                    "{schema:?} says it writes {name} but did not"
                );
                continue;
            };
            let obj = |k: &str| v.get(k).is_some_and(Value::is_object);
            match schema {
                Schema::Native => {
                    assert_eq!(v["event_type"], name);
                    assert_eq!(v["app_proto"], name);
                    assert!(obj(name), "native {name}: no `{name}` object: {v}");
                }
                Schema::Ecs => {
                    let problems = ecs_problems(&v);
                    assert!(problems.is_empty(), "ecs {name}: {problems:?}");
                    assert_eq!(v["event"]["dataset"], format!("flowtap.{name}"));
                    assert_eq!(v["event"]["action"], name);
                    assert_eq!(v["network"]["protocol"], name);
                }
                Schema::Eve => {
                    assert_eq!(v["event_type"], name);
                    assert!(obj(name), "eve {name}: no `{name}` object: {v}");
                    for k in ["timestamp", "flow_id", "src_ip", "dest_ip", "proto"] {
                        assert!(v.get(k).is_some(), "eve {name}: no `{k}`");
                    }
                }
                Schema::Gelf => {
                    assert_eq!(v["_event_type"], name);
                    let short = v["short_message"].as_str().unwrap_or("");
                    assert!(short.starts_with(name), "gelf {name}: {short}");
                    let fields = v.as_object().expect("object");
                    for (k, x) in fields {
                        // GELF 1.1: a value is a string or a number (no
                        // booleans, no nesting).
                        assert!(
                            x.is_string() || x.is_number(),
                            "gelf {name}: `{k}` is {x}, not a string or number"
                        );
                        assert!(
                            k.starts_with('_')
                                || ["version", "host", "short_message", "timestamp", "level"]
                                    .contains(&k.as_str()),
                            "gelf {name}: `{k}` is not an additional field"
                        );
                    }
                    assert!(
                        fields.keys().any(|k| k.starts_with(&format!("_{name}_"))),
                        "gelf {name}: no `_{name}_*` field"
                    );
                }
                Schema::Nanocorp => {
                    assert_eq!(v["event_type"], name);
                    assert_eq!(v["network_protocol"], name);
                    assert!(obj(name), "nanocorp {name}: no `{name}` object: {v}");
                }
                Schema::Nutanix => panic!("nutanix writes flows only"),
            }
        }
    }
}

#[test]
fn every_protocol_has_its_counters_metrics_sampling_and_type() {
    let mut w = WorkerStats {
        app_by_type: AppEventCounts(std::array::from_fn(|i| 1000 + i as u64)),
        ..WorkerStats::default()
    };
    for (i, a) in w.app_by_proto.iter_mut().enumerate() {
        a.malformed = 500 + i as u64;
    }
    w.app_events = w.app_by_type.0.iter().sum();
    let snap = Snapshot {
        per_worker: vec![w],
        ..Snapshot::default()
    };
    let mut buf = Vec::new();
    snap.encode_stats(0, &mut buf);
    let stats: Value = serde_json::from_slice(&buf).expect("stats json");
    let metrics = snap.exposition();
    for &p in AppProto::ALL {
        let name = p.as_str();
        let want = 1000 + p.index() as u64;
        assert_eq!(
            stats["stats"]["events"][name], want,
            "stats event has no events.{name}"
        );
        let line = format!("flowtap_events_total{{worker=\"0\",type=\"{name}\"}} {want}");
        assert!(metrics.contains(&line), "no metric line `{line}`");
        let malformed = 500 + p.index() as u64;
        assert_eq!(
            stats["stats"]["app"]["by_protocol"][name]["malformed"], malformed,
            "stats event has no app.by_protocol.{name}"
        );
        let line = format!(
            "flowtap_app_parser_total{{worker=\"0\",proto=\"{name}\",counter=\"malformed\"}} {malformed}"
        );
        assert!(metrics.contains(&line), "no metric line `{line}`");

        let t = EventType::App(p);
        assert_eq!(EventType::parse(name), Some(t));
        assert_eq!(EventType::from_index(t.index()), Some(t));
        let set = TypeSet::parse_list(name).expect("type list");
        assert!(set.contains(t) && !set.contains(EventType::Flow));
        assert!(TypeSet::ALL.contains(t));

        let cfg = Config::from_toml(
            &format!("[output]\ntypes = [\"flow\", \"{name}\"]\n[output.sample]\n{name} = 7\n"),
            "sample",
        )
        .expect("sampling config");
        let v = cfg.output.volume().expect("volume");
        assert_eq!(v.sample[t.index()], 7, "output.sample.{name}");
        assert!(v.enabled.contains(t));
    }
    let err = Config::from_toml("[output.sample]\nsmtpx = 2\n", "s")
        .and_then(|c| c.output.volume().map(|_| c))
        .expect_err("unknown protocol");
    assert!(err.to_string().contains("output.sample.smtpx"), "{err}");
}

#[test]
fn every_export_field_compiles_into_a_rule() {
    for &p in AppProto::ALL {
        let name = p.as_str();
        let info = p.info();
        for f in info.export_fields {
            let value = match f.kind {
                MatchKind::Name => "\"*.example.com\"".to_string(),
                MatchKind::Word => "\"x\"".to_string(),
                MatchKind::Hex(n) => format!("\"{}\"", "a".repeat(n)),
                MatchKind::Number(max) => format!("\"0-{max}\""),
            };
            let toml = format!(
                "[[export.rules]]\nname = \"r\"\ndir = \"/tmp\"\nmatch.{name}.{} = {value}\n",
                f.name
            );
            let cfg = Config::from_toml(&toml, "rule").expect("rule parses");
            let rules = engine::export::rules::compile(&cfg.export)
                .unwrap_or_else(|e| panic!("match.{name}.{}: {e}", f.name));
            let r = &rules.rules[0];
            assert!(r.needs_app && r.app_possible(Some(p)));
            assert_eq!(r.early, f.early, "match.{name}.{}", f.name);
            // The same field in the one-line syntax.
            let compact = engine::export::rules::parse_compact(&format!(
                "name=r,dir=/tmp,{name}.{}={}",
                f.name,
                value.trim_matches('"')
            ))
            .expect("compact rule");
            let section = engine::config::ExportSection {
                rules: vec![compact],
                ..cfg.export.clone()
            };
            let from_compact = engine::export::rules::compile(&section).expect("compact compiles");
            assert_eq!(from_compact.rules[0].app, r.app, "{name}.{}", f.name);
        }
        let bad = format!(
            "[[export.rules]]\nname = \"r\"\ndir = \"/tmp\"\nmatch.{name}.nosuchfield = \"a\"\n"
        );
        let err = Config::from_toml(&bad, "rule").expect_err("unknown field");
        assert!(
            err.to_string()
                .contains(&format!("match.{name}.nosuchfield")),
            "{err}"
        );
    }
}

/// Every member of a protocol's native object is documented in
/// `docs/schema-native.md`, and the protocol is named there.
#[test]
fn every_protocol_is_documented() {
    let doc = read("docs/schema-native.md");
    let mut keys = Vec::new();
    for &p in AppProto::ALL {
        let name = p.as_str();
        assert!(doc.contains(&format!("`{name}`")), "docs: `{name}` missing");
        let v = encode(Schema::Native, &AppEvent::example(p)).expect("native");
        keys.clear();
        collect_keys(&v[name], &mut keys);
        assert!(!keys.is_empty());
        for k in &keys {
            assert!(
                doc.contains(&format!("`{k}`")),
                "docs/schema-native.md: `{name}` member `{k}` is not documented"
            );
        }
    }
}

fn collect_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                collect_keys(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_keys(x, out)),
        _ => {}
    }
}
