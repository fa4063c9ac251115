//! PostgreSQL against a real server: Debian's `postgresql` (a throw-away
//! cluster made with `initdb`, SCRAM passwords, SSL off) runs inside a
//! network namespace on its loopback, on a port that is not 5432 (so the
//! protocol is found by content); the real `flowtap` binary captures that
//! loopback live (AF_PACKET) while `psql` runs a script with statements
//! that succeed, fail, and COPY both ways. Every statement of the script
//! must appear exactly once as a `pgsql` event with its command tag, row
//! count or SQLSTATE; the connection's SSLRequest (refused), startup,
//! SCRAM exchange and Terminate must be there too. A login with a wrong
//! password ends in an error event (28P01). Then `pgbench -M
//! prepared` drives the extended protocol (one Parse per statement, then
//! Bind/Execute/Sync per run): one `execute` event per execution, each
//! with the statement's text and name.
//!
//! Needs root (namespaces; the cluster runs as the `postgres` user); without
//! root it prints a loud SKIPPED banner, like `live.rs`. The packages come
//! from `scripts/setup.sh`.

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::*;
use live::{run, sh, Flowtap, Netns};

const PORT: u16 = 5499;

/// The directory of Debian's PostgreSQL server programs (`initdb`, `pg_ctl`).
fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .expect("PostgreSQL server not installed: run scripts/setup.sh (postgresql)")
}

/// A cluster in `dir`, started inside the namespace; stopped on drop.
struct Cluster {
    pg_ctl: PathBuf,
    data: PathBuf,
    ns: String,
}

impl Cluster {
    fn start(ns: &Netns, dir: &Path) -> Cluster {
        let bin = pg_bin();
        let data = dir.join("data");
        let sock = dir.join("sock");
        let pwfile = dir.join("pw");
        std::fs::create_dir_all(&sock).expect("socket dir");
        std::fs::write(&pwfile, "s3cret\n").expect("password file");
        sh(&["chown", "-R", "postgres:postgres", dir.to_str().unwrap()]);
        // initdb refuses root; the cluster belongs to `postgres`.
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args([
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-U",
                "postgres",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("-D")
            .arg(&data));
        let opts = format!(
            "-k {} -p {PORT} -c listen_addresses=127.0.0.1 -c ssl=off -c fsync=off",
            sock.display()
        );
        run(ns
            .cmd("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-o", &opts, "-w", "-t", "60", "start"]));
        Cluster {
            pg_ctl: bin.join("pg_ctl"),
            data,
            ns: ns.0.clone(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.ns, "runuser", "-u", "postgres", "--"])
            .arg(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .status();
    }
}

/// The script psql runs: (statement as psql sends it, expected outcome).
enum Want {
    Tag(&'static str),
    Error(&'static str),
}

const SCRIPT: &[(&str, Want)] = &[
    (
        "CREATE TABLE items (id int PRIMARY KEY, name text);",
        Want::Tag("CREATE TABLE"),
    ),
    (
        "INSERT INTO items VALUES (1, 'apple'), (2, 'pear'), (3, 'plum');",
        Want::Tag("INSERT 0 3"),
    ),
    (
        "SELECT id, name FROM items ORDER BY id;",
        Want::Tag("SELECT 3"),
    ),
    ("SELECT 1/0;", Want::Error("22012")),
    (
        "UPDATE items SET name = 'fig' WHERE id >= 2;",
        Want::Tag("UPDATE 2"),
    ),
    ("SELECT * FROM no_such_table;", Want::Error("42P01")),
    (
        "INSERT INTO items VALUES (1, 'again');",
        Want::Error("23505"),
    ),
    ("COPY items (id, name) FROM STDIN;", Want::Tag("COPY 2")),
    ("COPY items TO STDOUT;", Want::Tag("COPY 5")),
];

/// pgbench's statements (`-M prepared`: Parse once, Bind/Execute each time).
const BENCH_SELECT: &str = "SELECT name FROM items WHERE id = 4";
const BENCH_UPDATE: &str = "UPDATE items SET name = name WHERE id <= 2";

/// The COPY FROM STDIN data psql sends after its statement.
const COPY_IN: &str = "4\tkiwi\n5\tlime\n";

fn script_text() -> String {
    let mut s = String::new();
    for (stmt, _) in SCRIPT {
        s.push_str(stmt);
        s.push('\n');
        if stmt.contains("FROM STDIN") {
            s.push_str(COPY_IN);
            s.push_str("\\.\n");
        }
    }
    s
}

#[test]
fn psql_against_a_real_server_every_statement_once() {
    require_root!("network namespaces and a real server");
    let psql = pg_bin().join("psql");
    let dir = tmp_dir("pgsql-live");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let ns = Netns::new("ftpg");
    let cluster = Cluster::start(&ns, &dir.join("pg"));

    let cfg = dir.join("flowtap.toml");
    std::fs::write(&cfg, "[output]\ntypes = [\"flow\", \"pgsql\"]\n").expect("config");
    let output = dir.join("events.json");
    let mut flowtap = Flowtap::start(&ns, &output, &cfg);

    let script = dir.join("script.sql");
    std::fs::write(&script, script_text()).expect("script");
    // sslmode=prefer: psql asks for TLS first and the server (ssl=off) refuses.
    let conninfo = format!(
        "host=127.0.0.1 port={PORT} user=postgres dbname=postgres sslmode=prefer gssencmode=disable application_name=flowtap-test"
    );
    let out = ns
        .cmd(psql.to_str().unwrap())
        .env("PGPASSWORD", "s3cret")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=0", "-d", &conninfo, "-f"])
        .arg(&script)
        .output()
        .expect("psql");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // psql reports the errors the script provokes, and COPY TO STDOUT's rows.
    assert!(stderr.contains("division by zero"), "psql: {stderr}");
    assert!(stdout.contains("5\tlime"), "psql: {stdout}");

    // A wrong password: the SCRAM exchange ends with an ErrorResponse.
    let bad = ns
        .cmd(psql.to_str().unwrap())
        .env("PGPASSWORD", "wrong")
        .args(["-X", "-q", "-c", "SELECT 1", "-d"])
        .arg(conninfo.replace("flowtap-test", "flowtap-badpw"))
        .output()
        .expect("psql");
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // The extended protocol: pgbench with prepared statements parses each
    // statement once and then binds and executes it per transaction.
    let bench = dir.join("bench.sql");
    std::fs::write(&bench, format!("{BENCH_SELECT};\n{BENCH_UPDATE};\n")).expect("bench script");
    run(ns
        .cmd(pg_bin().join("pgbench").to_str().unwrap())
        .env("PGPASSWORD", "s3cret")
        .env("PGSSLMODE", "disable")
        .env("PGGSSENCMODE", "disable")
        .args([
            "-n",
            "-M",
            "prepared",
            "-t",
            "3",
            "-h",
            "127.0.0.1",
            "-p",
            &PORT.to_string(),
        ])
        .args(["-U", "postgres", "-f"])
        .arg(&bench)
        .arg("postgres"));

    // Let the last packets reach the capture, then stop it (flows end at shutdown).
    std::thread::sleep(Duration::from_millis(500));
    flowtap.stop();
    drop(cluster);

    let text = std::fs::read_to_string(&output).expect("events");
    let events: Vec<Value> = text
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect();
    // One connection per client: its events are those of its client port
    // (the SSLRequest comes before the session's names are known).
    let of_client = |app: &str| -> Vec<&Value> {
        let port = events
            .iter()
            .find(|e| e["event_type"] == "pgsql" && e["pgsql"]["application_name"] == app)
            .map(|e| e["src_port"].clone())
            .unwrap_or_else(|| panic!("no {app} connection: {text}"));
        events
            .iter()
            .filter(|e| e["event_type"] == "pgsql" && e["src_port"] == port)
            .map(|e| &e["pgsql"])
            .collect()
    };
    let pg = of_client("flowtap-test");
    let dump = || {
        pg.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        events.iter().any(|e| e["event_type"] == "flow"
            && e["app_proto"] == "pgsql"
            && e["dest_port"] == PORT),
        "the flow on port {PORT} is pgsql (found by content): {}",
        flowtap.stderr()
    );
    let of = |req: &str| {
        pg.iter()
            .copied()
            .filter(|e| e["request"] == req)
            .collect::<Vec<_>>()
    };

    // The connection: SSL refused, startup, SCRAM, Terminate.
    let ssl = of("ssl_request");
    assert_eq!(ssl.len(), 1, "{}", dump());
    assert_eq!(ssl[0]["ssl_accepted"], false);
    let st = of("startup");
    assert_eq!(st.len(), 1, "{}", dump());
    assert_eq!(st[0]["user"], "postgres");
    assert_eq!(st[0]["database"], "postgres");
    assert_eq!(st[0]["application_name"], "flowtap-test");
    assert_eq!(st[0]["protocol_version"], "3.0");
    assert_eq!(st[0]["auth_method"], "sasl");
    let init = of("sasl_initial_response");
    assert_eq!(init.len(), 1, "{}", dump());
    assert_eq!(init[0]["sasl_mechanism"], "SCRAM-SHA-256");
    let fin = of("sasl_response");
    assert_eq!(fin.len(), 1, "{}", dump());
    assert_eq!(fin[0]["auth_ok"], true);
    assert!(fin[0]["parameter_status"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    assert!(!text.contains("s3cret"), "the password is never written");
    assert_eq!(of("terminate").len(), 1, "{}", dump());

    // Every statement exactly once, with its outcome; nothing else.
    let queries = of("simple_query");
    assert_eq!(queries.len(), SCRIPT.len(), "{}", dump());
    for (stmt, want) in SCRIPT {
        let hits: Vec<&&Value> = queries.iter().filter(|e| e["statement"] == *stmt).collect();
        assert_eq!(hits.len(), 1, "{stmt}: {}", dump());
        let e = hits[0];
        assert_eq!(e["user"], "postgres");
        assert!(
            e["latency_us"].is_u64() && e["request_bytes"].as_u64() > Some(5),
            "{e}"
        );
        assert_eq!(e["unanswered"], false, "{e}");
        match want {
            Want::Tag(tag) => {
                assert_eq!(e["status"], "ok", "{e}");
                assert_eq!(e["command_tag"], *tag, "{e}");
                assert!(e.get("error").is_none(), "{e}");
            }
            Want::Error(code) => {
                assert_eq!(e["status"], "error", "{e}");
                assert_eq!(e["error"]["code"], *code, "{e}");
                assert_eq!(e["error"]["severity_non_localizable"], "ERROR", "{e}");
                assert!(e.get("command_tag").is_none(), "{e}");
            }
        }
    }
    let q = |stmt: &str| *queries.iter().find(|e| e["statement"] == stmt).expect(stmt);
    let select = q(SCRIPT[2].0);
    assert_eq!(
        (select["rows"].as_u64(), select["data_rows"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(select["field_count"], 2);
    // "1" "apple" "2" "pear" "3" "plum": the column value bytes.
    assert_eq!(select["data_size"], 16);
    assert_eq!(q(SCRIPT[4].0)["rows"], 2);
    // psql forwards the rows, and (psql up to 17) the `\.` end line as data too.
    let copy_in = q(SCRIPT[7].0)["copy_in_bytes"].as_u64().unwrap_or(0) as usize;
    assert!(
        copy_in == COPY_IN.len() || copy_in == COPY_IN.len() + "\\.\n".len(),
        "copy_in_bytes {copy_in}"
    );
    // "1\tapple\n2\tfig\n3\tfig\n4\tkiwi\n5\tlime\n"
    assert_eq!(q(SCRIPT[8].0)["copy_out_bytes"], 34);
    let err = q(SCRIPT[6].0);
    assert_eq!(err["error"]["constraint_name"], "items_pkey", "{err}");

    // The failed login: its last exchange is an error, nothing ran.
    let failed = of_client("flowtap-badpw");
    let last = failed.last().expect("events of the failed login");
    assert_eq!(last["request"], "sasl_response", "{last}");
    assert_eq!(last["status"], "error", "{last}");
    assert_eq!(last["error"]["code"], "28P01", "{last}");
    assert!(last.get("auth_ok").is_none(), "{last}");
    assert!(failed.iter().all(|e| e["request"] != "simple_query"));

    // pgbench: one execute event per execution, each with its statement's
    // text from the one Parse of that prepared statement.
    // (pgbench connects twice: a check, then the run.)
    let executes: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "pgsql")
        .map(|e| &e["pgsql"])
        .filter(|e| e["application_name"] == "pgbench" && e["request"] == "execute")
        .collect();
    let bench_dump = executes
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for (stmt, tag) in [(BENCH_SELECT, "SELECT 1"), (BENCH_UPDATE, "UPDATE 2")] {
        let runs: Vec<&&Value> = executes
            .iter()
            .filter(|e| e["statement"].as_str().is_some_and(|s| s.starts_with(stmt)))
            .collect();
        assert_eq!(runs.len(), 3, "{stmt}: {bench_dump}");
        let name = &runs[0]["statement_name"];
        assert!(name.is_string(), "a named prepared statement: {bench_dump}");
        for e in &runs {
            assert_eq!(e["statement_name"], *name, "{e}");
            assert_eq!(e["command_tag"], tag, "{e}");
            assert_eq!(e["status"], "ok", "{e}");
            assert!(e["latency_us"].is_u64(), "{e}");
        }
    }
    assert_eq!(executes.len(), 6, "{bench_dump}");
    // The cluster (tens of MB) goes; a failed run keeps it for a look.
    let _ = std::fs::remove_dir_all(&dir);
}
