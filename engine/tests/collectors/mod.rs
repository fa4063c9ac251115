//! Real collectors for the sink tests: rsyslog (syslog over UDP, TCP and
//! TLS; GELF over TCP and TLS through its NUL-delimited framing and
//! mmjsonparse) and the graygelf npm package (GELF over UDP: plain, zlib,
//! gzip, chunked). Every collector listens on 127.0.0.1 on an ephemeral port
//! in a temporary directory and is stopped by its Drop. `scripts/setup.sh`
//! installs them; a missing one fails the test with a message naming it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");
/// Where scripts/setup.sh installs graygelf.
pub const GRAYGELF_DIR: &str = "/opt/flowtap-test/graygelf";

/// The path of a program the tests need, or a failure that names setup.sh.
pub fn need(program: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    panic!("`{program}` is not installed: run scripts/setup.sh");
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "flowtap-sink-{tag}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ u128::from(rand_u32())
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u32::from_le_bytes(b)
}

/// A port on 127.0.0.1 that was free a moment ago (the kernel picked it).
pub fn free_port(udp: bool) -> u16 {
    if udp {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free udp port")
            .port()
    } else {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free tcp port")
            .port()
    }
}

/// Whether something listens on 127.0.0.1:`port` (TCP LISTEN, or a bound
/// UDP socket), from /proc/net.
pub fn listening(port: u16, udp: bool) -> bool {
    let file = if udp {
        "/proc/net/udp"
    } else {
        "/proc/net/tcp"
    };
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string(file).is_ok_and(|t| {
        t.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&want.as_str()) && (udp || f.get(3) == Some(&"0A"))
        })
    })
}

/// Waits until `child` listens on `ports`; the error says why not.
pub fn wait_listening(ports: &[(u16, bool)], what: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ports.iter().all(|&(p, u)| listening(p, u)) {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!(
                "{what} exited ({st}) before listening on {ports:?}"
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!("{what} does not listen on {ports:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig} {pid}");
}

/// Lines of a JSON-lines file (missing file: none).
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(&l)
                .unwrap_or_else(|e| panic!("{}: bad JSON line ({e}): {l}", path.display()))
        })
        .collect()
}

pub fn count_lines(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

/// Waits until `path` has at least `n` lines and then stops growing.
pub fn wait_lines(path: &Path, n: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let mut last = usize::MAX;
    loop {
        let now = count_lines(path);
        if now >= n && now == last {
            return now;
        }
        if Instant::now() >= deadline {
            return now;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// rsyslogd in the foreground with its own config, work directory and pid
/// file.
pub struct Rsyslog {
    pub dir: PathBuf,
    conf: PathBuf,
    listen: Vec<(u16, bool)>,
    child: Option<Child>,
    log: PathBuf,
}

/// The start of every rsyslog config: work directory, large messages,
/// templates (`syslog5424`: every RFC 5424 header field and the MSG as one
/// JSON object; `gelfjson`: the JSON mmjsonparse read, as one line).
pub fn rsyslog_preamble(dir: &Path) -> String {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("rsyslog work dir");
    format!(
        r#"global(workDirectory="{work}" maxMessageSize="256k")
module(load="mmjsonparse")
template(name="syslog5424" type="list" option.jsonf="on") {{
  property(outname="pri" name="pri" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="protocol_version" name="protocol-version" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
template(name="gelfjson" type="list") {{ property(name="$!all-json-plain") constant(value="\n") }}
"#,
        work = work.display()
    )
}

/// A ruleset that writes each RFC 5424 message to `file` as JSON.
pub fn syslog_ruleset(name: &str, file: &Path) -> String {
    format!(
        "ruleset(name=\"{name}\") {{ action(type=\"omfile\" file=\"{}\" template=\"syslog5424\") }}\n",
        file.display()
    )
}

/// A ruleset that parses each message as JSON (mmjsonparse, raw message,
/// no cookie) and writes what it parsed to `file`; anything that does not
/// parse goes to `file`.bad.
pub fn gelf_ruleset(name: &str, file: &Path) -> String {
    format!(
        "ruleset(name=\"{name}\") {{ action(type=\"mmjsonparse\" cookie=\"\" useRawMsg=\"on\")\n  if $parsesuccess == \"OK\" then {{ action(type=\"omfile\" file=\"{f}\" template=\"gelfjson\") }} else {{ action(type=\"omfile\" file=\"{f}.bad\" template=\"RSYSLOG_FileFormat\") }} }}\n",
        f = file.display()
    )
}

impl Rsyslog {
    /// Starts rsyslogd with `conf` and waits until it listens on `listen`.
    pub fn start(dir: &Path, conf: &str, listen: &[(u16, bool)]) -> Rsyslog {
        need("rsyslogd");
        let path = dir.join("rsyslog.conf");
        std::fs::write(&path, conf).expect("write rsyslog.conf");
        let mut r = Rsyslog {
            dir: dir.to_path_buf(),
            conf: path,
            listen: listen.to_vec(),
            child: None,
            log: dir.join("rsyslogd.log"),
        };
        r.launch();
        r
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("rsyslog log");
        let mut child = Command::new(need("rsyslogd"))
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start rsyslogd (run scripts/setup.sh)");
        if let Err(e) = wait_listening(&self.listen, "rsyslogd", &mut child) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{e} (are rsyslog and rsyslog-gnutls installed? run scripts/setup.sh); its log:\n{}",
                self.log()
            );
        }
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("rsyslogd running").id()
    }

    /// SIGSTOP: rsyslogd stops reading, the kernel buffers fill, then TCP
    /// senders block.
    pub fn pause(&self) {
        signal(self.pid(), "-STOP");
    }

    pub fn resume(&self) {
        signal(self.pid(), "-CONT");
    }

    /// SIGTERM and wait: rsyslogd writes out what it read and exits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-CONT");
            signal(c.id(), "-TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// SIGKILL: no chance to read its sockets or write out its queue.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again with the same config (same ports, same files).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// graygelf's GELF UDP server under node, writing every decoded message as
/// one JSON line (and any decode error as `{"decode_error": ...}`).
pub struct GelfUdpServer {
    pub port: u16,
    pub out: PathBuf,
    child: Child,
}

const GELF_SERVER_JS: &str = r#"// GELF UDP collector for flowtap's tests: graygelf decodes (chunks in any
// order, zlib, gzip, plain); each message becomes one JSON line.
const [dir, port, out] = process.argv.slice(2);
const fs = require('fs');
const server = require(dir + '/node_modules/graygelf/server')();
const fd = fs.openSync(out, 'a');
const line = (o) => fs.writeSync(fd, JSON.stringify(o) + '\n');
server.on('message', (gelf) => line(gelf));
server.on('error', (e) => line({ decode_error: String(e) }));
server.listen(+port, '127.0.0.1');
// A larger socket buffer where the system allows (net.core.rmem_max caps it).
server._udp.on('listening', () => { try { server._udp.setRecvBufferSize(4 << 20); } catch (e) {} });
process.on('SIGTERM', () => { fs.closeSync(fd); process.exit(0); });
"#;

impl GelfUdpServer {
    pub fn start(dir: &Path) -> GelfUdpServer {
        let node = need("node");
        assert!(
            Path::new(GRAYGELF_DIR)
                .join("node_modules/graygelf/server.js")
                .exists(),
            "graygelf is not installed in {GRAYGELF_DIR}: run scripts/setup.sh"
        );
        let js = dir.join("gelf_server.js");
        std::fs::write(&js, GELF_SERVER_JS).expect("write gelf_server.js");
        let port = free_port(true);
        let out = dir.join("graygelf.json");
        let mut child = Command::new(node)
            .arg(&js)
            .arg(GRAYGELF_DIR)
            .arg(port.to_string())
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        if let Err(e) = wait_listening(&[(port, true)], "graygelf server", &mut child) {
            let _ = child.kill();
            panic!("{e} (run scripts/setup.sh)");
        }
        GelfUdpServer { port, out, child }
    }
}

impl Drop for GelfUdpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished `flowtap run`: its stderr, exit status and peak RSS.
pub struct Run {
    pub stderr: String,
    pub ok: bool,
    /// The exit status (0 clean, 3 a sink lost events; None: a signal).
    pub code: Option<i32>,
    pub max_rss_kib: u64,
}

impl Run {
    /// The end-of-run counters of sink `name` (from its summary line).
    pub fn sink(&self, name: &str) -> BTreeMap<String, u64> {
        let prefix = format!("flowtap: sink {name} (");
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no summary of sink {name} in:\n{}", self.stderr));
        let body = line.split_once("): ").map_or("", |(_, b)| b);
        let mut out = BTreeMap::new();
        // "sent 12 · dropped 3 (queue full 3 · spool full 0 · failed 0) · ..."
        for part in body.split(['·', '(', ')']) {
            let part = part.trim();
            if let Some((k, v)) = part.rsplit_once(' ') {
                if let Ok(n) = v.parse::<u64>() {
                    out.insert(k.trim().to_string(), n);
                }
            }
        }
        out
    }
}

/// Starts `flowtap run` with `args`; [`Flowtap::wait`] collects it. Its
/// stderr is read as it comes, so a test can wait for a message.
pub struct Flowtap {
    child: Child,
    started: Instant,
    max_rss_kib: u64,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Flowtap {
    pub fn start(args: &[String]) -> Flowtap {
        let mut child = Command::new(FLOWTAP)
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flowtap");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = std::sync::Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        Flowtap {
            child,
            started: Instant::now(),
            max_rss_kib: 0,
            stderr,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until stderr contains `text` (false after `within`).
    pub fn wait_stderr(&mut self, text: &str, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.stderr().contains(text) {
                return true;
            }
            self.sleep(Duration::from_millis(20));
        }
        false
    }

    /// Samples the resident set (kiB) now; the peak is kept.
    pub fn sample_rss(&mut self) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        if let Some(kib) = status.ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        }) {
            self.max_rss_kib = self.max_rss_kib.max(kib);
        }
    }

    /// Sleeps `d` while sampling memory.
    pub fn sleep(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            self.sample_rss();
            std::thread::sleep(Duration::from_millis(25).min(left));
        }
    }

    pub fn wait(mut self, within: Duration) -> Run {
        let deadline = Instant::now() + within;
        let status = loop {
            self.sample_rss();
            if let Ok(Some(st)) = self.child.try_wait() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let st = self.child.wait().expect("wait flowtap");
                panic!(
                    "flowtap did not finish within {within:?} ({st}):\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Run {
            stderr: self.stderr(),
            ok: status.success(),
            code: status.code(),
            max_rss_kib: self.max_rss_kib,
        }
    }
}

impl Drop for Flowtap {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs flowtap to the end; it must exit 0.
pub fn run_flowtap(args: &[String]) -> Run {
    run_flowtap_status(args, 0)
}

/// Runs flowtap to the end; it must exit with `code` (3: a sink lost
/// events).
pub fn run_flowtap_status(args: &[String], code: i32) -> Run {
    let run = Flowtap::start(args).wait(Duration::from_secs(120));
    assert_eq!(run.code, Some(code), "flowtap failed:\n{}", run.stderr);
    run
}

/// A config file with the host name the sinks put in their messages.
pub fn config_with_host(dir: &Path, host: &str) -> PathBuf {
    let p = dir.join("flowtap.toml");
    std::fs::write(&p, format!("[output]\nhost = \"{host}\"\n")).expect("write config");
    p
}

pub fn corpus(rel: &str) -> PathBuf {
    let c = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(rel);
    assert!(
        c.exists(),
        "{} missing (../shared beside the repo)",
        c.display()
    );
    c
}

/// Corpus captures with HTTP, DNS and TLS events (and one TLS event of
/// 3.4 kB, which GELF UDP must chunk).
pub const CAPTURES: &[&str] = &[
    "mixed/ndpi-1kxun.pcap",
    "mixed/sv-ethernet-eve--test.pcap",
    "vlan/ndpi-ja3_lots_of_cipher_suites.pcap",
];

/// A multiset of JSON values (their canonical text).
pub fn multiset<'a>(vals: impl IntoIterator<Item = &'a Value>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for v in vals {
        *m.entry(v.to_string()).or_default() += 1;
    }
    m
}

/// Asserts `got` equals `want` event for event (in order), naming the first
/// difference field by field.
pub fn assert_same_sequence(got: &[Value], want: &[Value], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            panic!("{what}: event {i} differs\n got: {g}\nwant: {w}");
        }
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} events arrived, {} were written to the file",
        got.len(),
        want.len()
    );
}

/// Asserts the two multisets are equal, showing a few differences.
pub fn assert_same_events(got: &[Value], want: &[Value], what: &str) {
    let (g, w) = (multiset(got), multiset(want));
    if g != w {
        let missing: Vec<_> = w.keys().filter(|k| !g.contains_key(*k)).take(3).collect();
        let extra: Vec<_> = g.keys().filter(|k| !w.contains_key(*k)).take(3).collect();
        panic!(
            "{what}: {} events arrived, {} written to the file; missing e.g. {missing:#?}; unexpected e.g. {extra:#?}",
            got.len(),
            want.len()
        );
    }
}

/// Test PKI made with the openssl CLI: a CA, a server certificate for
/// `collector.test` and 127.0.0.1 signed by it, a client certificate signed
/// by it, and an unrelated CA (the wrong one).
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(need("openssl"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn make(dir: &Path) -> Pki {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (name, cn) in [("ca", "flowtap test CA"), ("other-ca", "some other CA")] {
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            let (key, pem, subj) = (
                format!("{name}.key"),
                format!("{name}.pem"),
                format!("/CN={cn}"),
            );
            a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            openssl(dir, &a);
        }
        for (name, cn, ext) in [
            (
                "server",
                "collector.test",
                "subjectAltName=DNS:collector.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                "flowtap probe",
                "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
            ),
        ] {
            let mut a = vec!["req"];
            a.extend(ec);
            let (key, csr, subj) = (format!("{name}.key"), format!("{name}.csr"), format!("/CN={cn}"));
            a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(dir, &a);
            let extf = format!("{name}.ext");
            std::fs::write(dir.join(&extf), ext).expect("ext file");
            let pem = format!("{name}.pem");
            openssl(
                dir,
                &[
                    "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", &pem, "-days", "2", "-extfile", &extf,
                ],
            );
        }
        Pki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other-ca.pem"),
        }
    }

    /// imtcp parameters for a TLS listener (`auth`: gtls authMode, e.g.
    /// `anon`, or `x509/certvalid` to require a client certificate).
    pub fn rsyslog_tls(&self, auth: &str) -> String {
        format!(
            "streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"{auth}\" streamDriver.CAFile=\"{}\" streamDriver.CertFile=\"{}\" streamDriver.KeyFile=\"{}\"",
            self.ca.display(),
            self.server_cert.display(),
            self.server_key.display()
        )
    }
}
