//! Data flows one way: capture → engine (+ dissect) → output, and inside a
//! crate the top-level modules form no import cycle. Checked from the
//! sources, so a change that reaches back up fails here with the path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::NAME` uses per top-level module of `krate`, comments left out.
fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = repo().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // Tests may look across modules (a packet test building flow keys).
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if module == "lib"
            || module == "main"
            || ["tests.rs", "testutil.rs", "testdata.rs"].contains(&name.as_str())
        {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let deps = g.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module && name.chars().all(|c| !c.is_uppercase()) {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

/// A cycle through `start`, if any (depth-first search).
fn cycle_from(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if g.contains_key(next) && seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(g, start, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    for krate in [
        "engine", "output", "dissect", "capture", "tuning", "jsonline",
    ] {
        let g = module_graph(krate);
        assert!(
            !g.is_empty() || krate == "jsonline",
            "{krate}: no modules found"
        );
        for m in g.keys() {
            if let Some(c) = cycle_from(&g, m) {
                panic!("{krate}: import cycle {}", c.join(" -> "));
            }
        }
    }
}

#[test]
fn crates_depend_one_way() {
    // crate -> the workspace crates it must not depend on
    let forbidden = [
        (
            "jsonline",
            &["dissect", "capture", "engine", "output", "tuning"][..],
        ),
        ("dissect", &["capture", "engine", "output", "tuning"][..]),
        ("tuning", &["dissect", "capture", "engine", "output"][..]),
        ("capture", &["dissect", "engine", "output"][..]),
        ("output", &["capture", "engine", "tuning"][..]),
    ];
    for (krate, bad) in forbidden {
        let manifest =
            std::fs::read_to_string(repo().join(krate).join("Cargo.toml")).expect("manifest");
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .map(|s| s.split("\n[").next().unwrap_or(s))
            .unwrap_or("");
        for b in bad {
            assert!(
                !deps
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{b} "))
                        || l.trim_start().starts_with(&format!("{b}."))),
                "{krate} depends on {b}: data flows capture -> engine (+ dissect) -> output"
            );
        }
    }
}
