//! The container and Kubernetes files under deploy/: the DaemonSet manifest
//! against the Kubernetes API schema (kubernetes-validate from PyPI, which
//! carries the schemas offline; installed by scripts/setup.sh), its
//! ConfigMap's flowtap.toml against flowtap's own config loader, its
//! capabilities against the systemd unit's, and the Dockerfile's runtime
//! packages against the libraries the binary links.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn manifest() -> PathBuf {
    repo().join("deploy/kubernetes/flowtap.yaml")
}

/// `kubernetes-validate --strict FILE`: (success, output).
fn kubernetes_validate(file: &Path) -> (bool, String) {
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.37.0"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubernetes-validate (PyPI, installed by scripts/setup.sh) cannot run: {e}")
        });
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// The manifest's documents, parsed by PyYAML (a dependency of kubernetes-validate).
fn documents() -> Vec<Value> {
    let o = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(manifest())
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "PyYAML: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("documents as JSON")
}

fn kind<'a>(docs: &'a [Value], k: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == k)
        .unwrap_or_else(|| panic!("no {k} in the manifest"))
}

#[test]
fn the_daemonset_manifest_passes_the_kubernetes_schema() {
    let (ok, out) = kubernetes_validate(&manifest());
    assert!(ok, "{out}");
    for k in [
        "namespace/flowtap",
        "configmap/flowtap-config",
        "daemonset/flowtap",
    ] {
        assert!(
            out.contains(&format!("passed for resource {k}")),
            "{k}: {out}"
        );
    }
    // The validator does refuse what the schema does not allow.
    let text = std::fs::read_to_string(manifest()).expect("manifest");
    let dir = std::env::temp_dir().join(format!("flowtap-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    for (what, from, to) in [
        ("an unknown field", "hostNetwork: true", "hostNetwrk: true"),
        (
            "a wrong type",
            "containerPort: 9464",
            "containerPort: \"metrics\"",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, text.replace(from, to)).expect("write");
        let (ok, out) = kubernetes_validate(&bad);
        assert!(!ok, "{what} passed: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_configmap_is_a_valid_config_and_matches_the_daemonset() {
    let docs = documents();
    let toml = kind(&docs, "ConfigMap")["data"]["flowtap.toml"]
        .as_str()
        .expect("flowtap.toml in the ConfigMap");
    let cfg = engine::config::Config::from_toml(toml, "ConfigMap flowtap-config")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.capture.source, engine::config::CaptureSource::AfXdp);
    assert!(!cfg.capture.iface.is_empty());
    let spec = &kind(&docs, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true);
    let c = &spec["containers"][0];
    // The metrics port the config opens is the one the pod declares.
    let port = cfg
        .output
        .metrics_listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u64>().ok())
        .expect("metrics_listen port");
    assert!(cfg.output.metrics_listen.starts_with("0.0.0.0:"));
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(port));
    // The control socket lives on the pod's /run/flowtap volume, which the
    // liveness probe (`flowtap ctl status`) uses.
    assert!(cfg.control.socket.starts_with("/run/flowtap/"));
    let probe: Vec<&str> = c["livenessProbe"]["exec"]["command"]
        .as_array()
        .expect("probe")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(probe.contains(&cfg.control.socket.as_str()), "{probe:?}");
    assert!(c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .any(|m| m["mountPath"] == "/run/flowtap"));
    // The file sink writes where the node's /var/log/flowtap is mounted.
    assert!(cfg.output.sinks[0]
        .url
        .starts_with("file:///var/log/flowtap/"));
    // The config is mounted as a directory, so an edited ConfigMap reaches it.
    let cm = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == "config")
        .expect("config mount");
    assert!(cm.get("subPath").is_none());

    // Capabilities: the unit's, and nothing else.
    let unit =
        std::fs::read_to_string(repo().join("deploy/systemd/flowtap.service")).expect("unit");
    let unit_caps: BTreeSet<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .expect("AmbientCapabilities")
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect();
    let sc = &c["securityContext"];
    let pod_caps: BTreeSet<String> = sc["capabilities"]["add"]
        .as_array()
        .expect("add")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    assert_eq!(pod_caps, unit_caps);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
}

#[test]
fn the_image_installs_every_library_the_binary_links() {
    let docker =
        std::fs::read_to_string(repo().join("deploy/docker/Dockerfile")).expect("Dockerfile");
    let runtime = docker.split("\nFROM ").last().expect("a runtime stage");
    assert!(runtime.starts_with("debian:bookworm-slim"), "{runtime}");
    let o = Command::new("ldd").arg(FLOWTAP).output().expect("ldd");
    let ldd = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut checked = 0;
    for line in ldd.lines() {
        let Some(path) = line
            .split("=>")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        else {
            continue;
        };
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
        let owner = [Path::new(path).to_path_buf(), real]
            .iter()
            .find_map(|p| {
                let o = Command::new("dpkg").arg("-S").arg(p).output().ok()?;
                o.status.success().then(|| {
                    String::from_utf8_lossy(&o.stdout)
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
            })
            .unwrap_or_else(|| panic!("no Debian package owns {path}"));
        // In every Debian image (essential).
        if ["libc6", "libgcc-s1"].contains(&owner.as_str()) {
            continue;
        }
        assert!(
            runtime
                .split_whitespace()
                .any(|w| w == owner || w == owner.trim_end_matches("t64")),
            "{path} is in {owner}, which the runtime stage does not install"
        );
        checked += 1;
    }
    assert!(
        checked >= 4,
        "libelf, zlib, OpenSSL and SASL at least: {ldd}"
    );
}
