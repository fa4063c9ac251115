//! MySQL/MariaDB against a real server: Debian's `mariadb-server` (a
//! throw-away datadir made with `mariadb-install-db`) runs inside a network
//! namespace on its loopback, on a port that is not 3306 (so the protocol
//! is found by content); the real `flowtap` binary captures that loopback
//! live (AF_PACKET) while the stock `mariadb` client runs a script with
//! statements that succeed and fail (`--force` goes on after errors) and a
//! `USE` (COM_INIT_DB). Every statement of the script must appear exactly
//! once as a `mysql` event with its OK fields (affected rows, last insert
//! id, warnings), its result set (columns, rows) or its ERR (code,
//! SQLSTATE). A login with a wrong password ends in an error event (1045).
//! Then Perl's DBD::MariaDB with server-side prepared statements drives
//! the binary protocol: one `stmt_prepare` event with the text, one
//! `stmt_execute` per execution with the same text, statement id and a
//! row each, and a prepare that fails.
//!
//! Needs root (namespaces; the server runs as the `mysql` user); without
//! root it prints a loud SKIPPED banner, like `live.rs`. The packages come
//! from `scripts/setup.sh`.

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;
use live::{run, sh, Flowtap, Netns};

const PORT: u16 = 3399;

/// A MariaDB server on a datadir in `dir`, started inside the namespace;
/// stopped (SIGTERM to its pid, then waited for) on drop.
struct Server {
    child: Child,
    sock: PathBuf,
}

impl Server {
    fn start(ns: &Netns, dir: &Path) -> Server {
        let data = dir.join("data");
        let sock = dir.join("sock");
        std::fs::create_dir_all(dir).expect("server dir");
        sh(&["chown", "-R", "mysql:mysql", dir.to_str().unwrap()]);
        run(Command::new("mariadb-install-db")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]));
        let child = ns
            .cmd("mariadbd")
            .args(["--no-defaults", "--user=mysql", "--bind-address=127.0.0.1"])
            .arg(format!("--port={PORT}"))
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-error={}", dir.join("server.log").display()))
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mariadbd");
        let mut s = Server { child, sock };
        let t0 = Instant::now();
        while !s.sock.exists() {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!(
                    "mariadbd exited ({st}): {}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                );
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "mariadbd not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The test's user (password over TCP: an auth exchange on the wire)
        // and schemas, made over the socket (not captured).
        run(Command::new("mariadb")
            .args(["--no-defaults", "-u", "root", "-S"])
            .arg(&s.sock)
            .args([
                "-e",
                "CREATE USER 'ft'@'%' IDENTIFIED BY 's3cret'; GRANT ALL ON *.* TO 'ft'@'%'; \
                 CREATE DATABASE shop; CREATE DATABASE other;",
            ]));
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `ip netns exec` runs mariadbd in place of itself: the pid is the server's.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the script's statement must get back.
enum Want {
    /// OK: affected rows, last insert id (0: none), warnings.
    Ok(u64, u64),
    /// A result set: columns, rows, warnings.
    Rows(u64, u64, u64),
    /// ERR: code, SQLSTATE.
    Error(u64, &'static str),
}

/// The script, as the mariadb client sends it (without the `;`).
const SCRIPT: &[(&str, Want)] = &[
    (
        "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(20))",
        Want::Ok(0, 0),
    ),
    (
        "INSERT INTO items (name) VALUES ('apple'), ('pear'), ('plum')",
        Want::Ok(3, 1),
    ),
    (
        "SELECT id, name FROM items ORDER BY id",
        Want::Rows(2, 3, 0),
    ),
    ("SELECT * FROM no_such_table", Want::Error(1146, "42S02")),
    (
        "UPDATE items SET name = 'fig' WHERE id >= 2",
        Want::Ok(2, 0),
    ),
    (
        "INSERT INTO items VALUES (1, 'again')",
        Want::Error(1062, "23000"),
    ),
    // MariaDB answers a division by zero with NULL and a warning.
    ("SELECT 1/0", Want::Rows(1, 1, 1)),
    ("SELEC typo", Want::Error(1064, "42000")),
];

/// DBD::MariaDB's prepared statement, and one that cannot be prepared.
const PREPARED: &str = "SELECT name FROM items WHERE id = ?";
const BAD_PREPARE: &str = "SELECT nope FROM items WHERE id = ?";

const PERL: &str = r#"
use strict; use DBI;
my ($port, $stmt, $bad) = @ARGV;
my $dbh = DBI->connect("DBI:MariaDB:database=shop;host=127.0.0.1;port=$port;mariadb_server_prepare=1",
    "ft", "s3cret", {RaiseError => 0, PrintError => 0}) or die $DBI::errstr;
my $sth = $dbh->prepare($stmt) or die $dbh->errstr;
for my $id (1 .. 3) {
    $sth->execute($id) or die $sth->errstr;
    my @row = $sth->fetchrow_array;
    print "@row\n";
}
undef $sth;
die "prepared a bad statement" if $dbh->prepare($bad);
print "bad: ", $dbh->err, "\n";
$dbh->disconnect;
"#;

fn script_text() -> String {
    let mut s = String::new();
    for (i, (stmt, _)) in SCRIPT.iter().enumerate() {
        s.push_str(stmt);
        s.push_str(";\n");
        if i == 1 {
            // COM_INIT_DB, and back.
            s.push_str("USE other;\nUSE shop;\n");
        }
    }
    s
}

#[test]
fn mariadb_against_a_real_server_every_statement_once() {
    require_root!("network namespaces and a real server");
    let dir = tmp_dir("mysql-live");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let ns = Netns::new("ftmy");
    let server = Server::start(&ns, &dir.join("db"));

    let cfg = dir.join("flowtap.toml");
    std::fs::write(&cfg, "[output]\ntypes = [\"flow\", \"mysql\"]\n").expect("config");
    let output = dir.join("events.json");
    let mut flowtap = Flowtap::start(&ns, &output, &cfg);

    let client = |extra: &[&str], password: &str, stdin: Option<&Path>| {
        let mut c = ns.cmd("mariadb");
        c.args(["--no-defaults", "--force", "--ssl=0", "-h", "127.0.0.1"])
            .arg(format!("-P{PORT}"))
            .args(["-u", "ft"])
            .arg(format!("-p{password}"))
            .args(extra);
        if let Some(p) = stdin {
            c.stdin(std::fs::File::open(p).expect("script"));
        }
        c.output().expect("mariadb")
    };
    let script = dir.join("script.sql");
    std::fs::write(&script, script_text()).expect("script");
    let out = client(&["shop"], "s3cret", Some(&script));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The client reports the errors the script provokes.
    assert!(
        stderr.contains("1146") && stderr.contains("1062"),
        "mariadb: {stderr}"
    );

    // A wrong password: the login ends with ERR 1045.
    let bad = client(&["-e", "SELECT 1"], "wrong", None);
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("1045"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // The binary protocol: DBD::MariaDB with server-side prepares.
    let perl = dir.join("ps.pl");
    std::fs::write(&perl, PERL).expect("perl script");
    let ps = run(ns
        .cmd("perl")
        .arg(&perl)
        .arg(PORT.to_string())
        .arg(PREPARED)
        .arg(BAD_PREPARE));
    assert_eq!(ps, "apple\nfig\nfig\nbad: 1054\n");

    // Let the last packets reach the capture, then stop it (flows end at shutdown).
    std::thread::sleep(Duration::from_millis(500));
    flowtap.stop();
    drop(server);

    let text = std::fs::read_to_string(&output).expect("events");
    let events: Vec<Value> = text
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect();
    assert!(
        events.iter().any(|e| e["event_type"] == "flow"
            && e["app_proto"] == "mysql"
            && e["dest_port"] == PORT),
        "the flow on port {PORT} is mysql (found by content): {}",
        flowtap.stderr()
    );
    assert!(!text.contains("s3cret"), "the password is never written");
    // Connections by client port, in order of their login.
    let mut ports: Vec<Value> = Vec::new();
    for e in &events {
        if e["event_type"] == "mysql" && !ports.contains(&e["src_port"]) {
            ports.push(e["src_port"].clone());
        }
    }
    let of_port = |p: &Value| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["event_type"] == "mysql" && e["src_port"] == *p)
            .map(|e| &e["mysql"])
            .collect()
    };
    let conns: Vec<Vec<&Value>> = ports.iter().map(of_port).collect();
    let dump = |c: &[&Value]| {
        c.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(conns.len(), 3, "three connections: {text}");
    for c in &conns {
        let login = c.first().expect("a login first");
        assert_eq!(login["command"], "login", "{}", dump(c));
        assert!(
            login["server_version"]
                .as_str()
                .is_some_and(|v| v.contains("MariaDB")),
            "{login}"
        );
        assert!(login["connection_id"].is_u64(), "{login}");
        assert_eq!(login["user"], "ft", "{login}");
        assert!(login["auth_plugin"].is_string(), "{login}");
        assert!(login["latency_us"].is_u64(), "{login}");
    }

    // The script's connection.
    let s = &conns[0];
    assert_eq!(s[0]["status"], "ok", "{}", dump(s));
    assert_eq!(s[0]["schema"], "shop");
    assert_eq!(s.last().map(|e| &e["command"]), Some(&Value::from("quit")));
    let queries: Vec<&&Value> = s.iter().filter(|e| e["command"] == "query").collect();
    for (stmt, want) in SCRIPT {
        let hits: Vec<&&&Value> = queries.iter().filter(|e| e["statement"] == *stmt).collect();
        assert_eq!(hits.len(), 1, "{stmt}: {}", dump(s));
        let e = hits[0];
        assert_eq!(e["user"], "ft", "{e}");
        assert!(
            e["latency_us"].is_u64() && e["request_bytes"].as_u64() > Some(5),
            "{e}"
        );
        assert_eq!(e["unanswered"], false, "{e}");
        match want {
            Want::Ok(affected, insert_id) => {
                assert_eq!(e["status"], "ok", "{e}");
                assert_eq!(e["affected_rows"], *affected, "{e}");
                if *insert_id > 0 {
                    assert_eq!(e["last_insert_id"], *insert_id, "{e}");
                } else {
                    assert!(e.get("last_insert_id").is_none(), "{e}");
                }
                assert_eq!(e["warnings"], 0, "{e}");
                assert!(
                    e.get("error").is_none() && e.get("columns").is_none(),
                    "{e}"
                );
            }
            Want::Rows(columns, rows, warnings) => {
                assert_eq!(e["status"], "ok", "{e}");
                assert_eq!(e["columns"], *columns, "{e}");
                assert_eq!(e["rows"], *rows, "{e}");
                assert_eq!(e["warnings"], *warnings, "{e}");
                assert!(e["result_bytes"].as_u64() > Some(0), "{e}");
            }
            Want::Error(code, state) => {
                assert_eq!(e["status"], "error", "{e}");
                assert_eq!(e["error"]["code"], *code, "{e}");
                assert_eq!(e["error"]["sql_state"], *state, "{e}");
                assert!(
                    e["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{e}"
                );
            }
        }
    }
    // Nothing but the script, and the client's own `SELECT DATABASE()`
    // before each USE (it asks for the current schema): in the schema the
    // session has then, which the previous USE chose.
    let own: Vec<&&&Value> = queries
        .iter()
        .filter(|e| !SCRIPT.iter().any(|(stmt, _)| e["statement"] == *stmt))
        .collect();
    assert_eq!(own.len(), 2, "{}", dump(s));
    for (e, schema) in own.iter().zip(["shop", "other"]) {
        assert_eq!(e["statement"], "SELECT DATABASE()", "{}", dump(s));
        assert_eq!(e["schema"], schema, "{e}");
        assert_eq!(
            (&e["columns"], &e["rows"]),
            (&Value::from(1), &Value::from(1)),
            "{e}"
        );
    }
    let init: Vec<&&Value> = s.iter().filter(|e| e["command"] == "init_db").collect();
    assert_eq!(init.len(), 2, "{}", dump(s));
    assert_eq!(
        (&init[0]["statement"], &init[0]["status"]),
        (&Value::from("other"), &Value::from("ok"))
    );
    // The schema follows USE once the server agrees: the `USE shop` event
    // shows the schema before it (other), the statements after it shop.
    assert_eq!(init[1]["schema"], "other", "{}", dump(s));
    let after = queries
        .iter()
        .find(|e| e["statement"] == SCRIPT[2].0)
        .expect("select");
    assert_eq!(after["schema"], "shop");

    // The failed login: one event, ERR 1045, nothing after it but a quit (if any).
    let b = &conns[1];
    assert_eq!(b[0]["status"], "error", "{}", dump(b));
    assert_eq!(b[0]["error"]["code"], 1045, "{}", dump(b));
    assert_eq!(b[0]["error"]["sql_state"], "28000", "{}", dump(b));
    assert!(b.iter().all(|e| e["command"] != "query"), "{}", dump(b));

    // Prepared statements: the text once in the prepare, and on every execution.
    let p = &conns[2];
    let of = |cmd: &str| {
        p.iter()
            .copied()
            .filter(|e| e["command"] == cmd)
            .collect::<Vec<_>>()
    };
    let prep = of("stmt_prepare");
    assert_eq!(prep.len(), 2, "{}", dump(p));
    assert_eq!(prep[0]["statement"], PREPARED);
    assert_eq!(prep[0]["status"], "ok");
    assert_eq!(prep[0]["params"], 1);
    assert_eq!(prep[0]["columns"], 1);
    let id = &prep[0]["statement_id"];
    assert!(id.is_u64(), "{}", dump(p));
    assert_eq!(prep[1]["statement"], BAD_PREPARE);
    assert_eq!(prep[1]["status"], "error");
    assert_eq!(prep[1]["error"]["code"], 1054);
    let exec = of("stmt_execute");
    assert_eq!(exec.len(), 3, "{}", dump(p));
    for e in &exec {
        assert_eq!(e["statement"], PREPARED, "{e}");
        assert_eq!(e["statement_id"], *id, "{e}");
        assert_eq!(
            (&e["columns"], &e["rows"]),
            (&Value::from(1), &Value::from(1)),
            "{e}"
        );
        assert_eq!(e["status"], "ok", "{e}");
        assert!(e["latency_us"].is_u64(), "{e}");
    }
    // The handle is closed once, with no answer on the wire.
    let close = of("stmt_close");
    assert_eq!(close.len(), 1, "{}", dump(p));
    assert_eq!(close[0]["statement_id"], *id);
    assert_eq!(close[0]["status"], "none");
    // The datadir (tens of MB) goes; a failed run keeps it for a look.
    let _ = std::fs::remove_dir_all(&dir);
}
