//! The capture-file reader against the shared corpus, tshark and editcap.
//!
//! Corpus: `$FLOWTAP_CORPUS` or `../shared/corpus` beside the repository
//! (MANIFEST.tsv with the `capinfos -c` packet count of every capture). A
//! missing corpus or Wireshark tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use capture::{CaptureFile, FileError, FileFormat, LinkType, PacketSource, Poll};

/// The corpus: `$FLOWTAP_CORPUS`, else `../shared/corpus` beside the
/// repository (found from this crate's directory). Missing, the test fails:
/// a test that skips without its data would pass without testing.
fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("FLOWTAP_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "no capture corpus at {} (../shared beside the repository, or set FLOWTAP_CORPUS)",
        dir.display()
    );
    dir
}

struct Entry {
    path: String,
    packets: usize,
    notes: String,
}

fn manifest(dir: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c_path, c_packets, c_notes) = (col("path"), col("packets"), col("notes"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Entry {
                path: f[c_path].to_string(),
                packets: f[c_packets].parse().unwrap(),
                notes: f.get(c_notes).copied().unwrap_or("").to_string(),
            }
        })
        .collect()
}

/// One packet as the tests compare it.
#[derive(Clone, PartialEq, Eq)]
struct Pkt {
    ts_ns: u64,
    orig_len: u32,
    data: Vec<u8>,
    link: LinkType,
    /// Offset of the record in the file.
    start: u64,
    /// Offset just after the record.
    end: u64,
}

impl std::fmt::Debug for Pkt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pkt(ts {} len {}/{} link {} @{}..{})",
            self.ts_ns,
            self.data.len(),
            self.orig_len,
            self.link.0,
            self.start,
            self.end
        )
    }
}

fn read_all(mut f: CaptureFile) -> (Vec<Pkt>, Result<(), FileError>) {
    let mut out = Vec::new();
    loop {
        let p = match f.next_packet() {
            Ok(Some(p)) => (p.ts_ns, p.orig_len, p.data.to_vec(), p.link),
            Ok(None) => return (out, Ok(())),
            Err(e) => return (out, Err(e)),
        };
        out.push(Pkt {
            ts_ns: p.0,
            orig_len: p.1,
            data: p.2,
            link: p.3,
            start: f.record_offset(),
            end: f.offset(),
        });
    }
}

#[test]
fn every_manifest_capture_has_its_packet_count() {
    let dir = corpus_dir();
    let entries = manifest(&dir);
    assert!(entries.len() >= 80, "manifest has {} rows", entries.len());
    let mut failures = Vec::new();
    for e in &entries {
        let path = dir.join(&e.path);
        let len = std::fs::metadata(&path).unwrap().len();
        let (pkts, end) = read_all(CaptureFile::open(&path).unwrap());
        // Truncated captures are announced in the manifest's notes.
        let cut_short = e.notes.contains("truncated") || e.notes.contains("mid-packet");
        match (&end, cut_short) {
            (Ok(()), false) => {}
            (
                Err(FileError::Truncated {
                    offset, available, ..
                }),
                true,
            ) if offset + available == len => {}
            (end, _) => failures.push(format!("{}: ended with {end:?}", e.path)),
        }
        if pkts.len() != e.packets {
            failures.push(format!(
                "{}: {} packets, manifest says {}",
                e.path,
                pkts.len(),
                e.packets
            ));
        }
        // The in-memory reader sees exactly the same packets.
        let bytes = std::fs::read(&path).unwrap();
        let (mem, mem_end) = read_all(CaptureFile::from_bytes(bytes).unwrap());
        if mem != pkts || format!("{mem_end:?}") != format!("{end:?}") {
            failures.push(format!("{}: from_bytes differs from open", e.path));
        }
        // And poll_batch hands out the same count.
        let mut f = CaptureFile::open(&path).unwrap();
        let mut n = 0;
        while let Ok(Poll::Packets(k)) = f.poll_batch(32, |_| n += 1) {
            assert!(k <= 32);
        }
        if n != e.packets {
            failures.push(format!("{}: poll_batch gave {n}", e.path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether a Wireshark tool runs; missing, the test fails (scripts/setup.sh
/// installs them).
fn tool(name: &str) -> bool {
    let ok = Command::new(name)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{name}` not found: install wireshark-common/tshark (scripts/setup.sh)"
    );
    ok
}

/// (ts_ns, frame.len, frame.cap_len) per packet as tshark prints them.
fn tshark_fields(path: &Path) -> Vec<(u64, u32, u32)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ])
        .output()
        .unwrap();
    // tshark exits non-zero on a truncated file but prints every packet.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (sec, frac) = f[0].split_once('.').unwrap_or((f[0], "0"));
            let frac = format!("{frac:0<9}");
            let ts =
                sec.parse::<u64>().unwrap() * 1_000_000_000 + frac[..9].parse::<u64>().unwrap();
            (ts, f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn timestamps_and_lengths_match_tshark() {
    let dir = corpus_dir();
    if !tool("tshark") {
        return;
    }
    let files = [
        "mysql/ndpi-mysql.pcapng",      // pcapng, if_tsresol 9
        "tls/ndpi-tls_ech.pcapng",      // pcapng, if_tsresol 9
        "tls/ndpi-tls_2_reasms.pcapng", // pcapng, microseconds
        "tunnels/ndpi-gre.pcapng",
        "vlan/ndpi-dns.pcap", // pcapng named .pcap, mergecap output
        "http/sv-decode-sll2-02--input.pcap",
        "http/ndpi-quickplay.pcap",
        "http/sv-http-connect.http-connect-simple--input.pcap",
        "dns/sv-dns.dns-udp-eve-log-srv--input.pcap",
        "mixed/ndpi-1kxun.pcap",
        "redis/ndpi-resp.pcap",
        "postgresql/sv-pgsql.pgsql-5000-query-results--input.pcap", // cut short
    ];
    for name in files {
        let path = dir.join(name);
        let want = tshark_fields(&path);
        let (pkts, _) = read_all(CaptureFile::open(&path).unwrap());
        let got: Vec<(u64, u32, u32)> = pkts
            .iter()
            .map(|p| (p.ts_ns, p.orig_len, p.data.len() as u32))
            .collect();
        assert!(!want.is_empty(), "{name}: tshark printed nothing");
        assert_eq!(got.len(), want.len(), "{name}: packet count");
        assert_eq!(got.first(), want.first(), "{name}: first packet");
        assert_eq!(got.last(), want.last(), "{name}: last packet");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name}: packet {}", i + 1);
        }
    }
}

#[test]
fn link_types_of_corpus_files() {
    let dir = corpus_dir();
    let cases = [
        ("http/sv-decode-sll2-02--input.pcap", LinkType::LINUX_SLL2),
        ("http/ndpi-quickplay.pcap", LinkType::LINUX_SLL),
        (
            "http/sv-http-connect.http-connect-simple--input.pcap",
            LinkType::NULL,
        ),
        ("dns/sv-dns.dns-udp-eve-log-srv--input.pcap", LinkType::RAW),
        ("mysql/ndpi-mysql.pcapng", LinkType::ETHERNET),
    ];
    for (name, link) in cases {
        let (pkts, _) = read_all(CaptureFile::open(&dir.join(name)).unwrap());
        assert!(pkts.iter().all(|p| p.link == link), "{name}");
    }
}

/// A unique temp file, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str, bytes: &[u8]) -> Temp {
        let dir = std::env::temp_dir().join(format!("flowtap-corpus-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Temp(path)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Cut `bytes` at `cut` and check both readers: all packets whose records
/// end before the cut, then a clean end at a record boundary, else
/// `Truncated` naming the offset of the cut record.
fn check_cut(name: &str, bytes: &[u8], full: &[Pkt], cut: usize) {
    let whole: Vec<Pkt> = full
        .iter()
        .filter(|p| p.end <= cut as u64)
        .cloned()
        .collect();
    let next_start = full.get(whole.len()).map(|p| p.start);
    let tmp = Temp::new(&format!("cut-{cut}-{name}"), &bytes[..cut]);
    for mode in ["open", "from_bytes"] {
        let opened = match mode {
            "open" => CaptureFile::open(&tmp.0),
            _ => CaptureFile::from_bytes(bytes[..cut].to_vec()),
        };
        let (pkts, end) = match opened {
            Ok(f) => read_all(f),
            // Cut inside the file header.
            Err(e) => (Vec::new(), Err(e)),
        };
        assert_eq!(pkts, whole, "{name} cut at {cut} ({mode})");
        match end {
            Ok(()) => {
                // A clean end only right after a packet, or before the first.
                let boundary = whole.last().map_or(full[0].start, |p| p.end);
                assert_eq!(
                    cut as u64, boundary,
                    "{name} cut at {cut} ({mode}): clean end"
                );
            }
            Err(FileError::Truncated {
                offset,
                needed,
                available,
            }) => {
                // The cut record starts where the last whole one ended (or
                // it is a header / a non-packet block before the next packet).
                let from = whole.last().map_or(0, |p| p.end);
                assert!(
                    offset >= from && !matches!(next_start, Some(s) if offset > s),
                    "{name} cut at {cut}: offset {offset}"
                );
                assert_eq!(offset + available, cut as u64, "{name} cut at {cut}");
                assert!(needed > available);
                if next_start == Some(offset) {
                    // Whole record header present: `needed` is the record size.
                    let rec = full[whole.len()].end - offset;
                    if available >= 16 {
                        assert_eq!(needed, rec, "{name} cut at {cut}");
                    }
                }
                let msg = FileError::Truncated {
                    offset,
                    needed,
                    available,
                }
                .to_string();
                assert!(
                    msg.contains(&format!("truncated at byte {offset}")),
                    "{msg}"
                );
            }
            Err(e) => panic!("{name} cut at {cut} ({mode}): {e}"),
        }
    }
}

#[test]
fn cut_files_end_with_truncated_at_the_cut_record() {
    let dir = corpus_dir();
    for name in [
        "http/sv-http-all-headers--input.pcap",
        "mysql/ndpi-mysql.pcapng",
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let (full, end) = read_all(CaptureFile::from_bytes(bytes.clone()).unwrap());
        end.unwrap();
        assert!(full.len() > 10);
        let short = name.rsplit('/').next().unwrap();
        let mut cuts = vec![0, 3, 10, 20, full[0].start as usize];
        for k in [0, 1, full.len() / 2, full.len() - 1] {
            let (s, e) = (full[k].start as usize, full[k].end as usize);
            cuts.extend([s + 1, s + 7, s + 17, s + 29, (s + e) / 2, e - 1, e]);
        }
        for cut in cuts {
            check_cut(short, &bytes, &full, cut.min(bytes.len()));
        }
    }
}

#[test]
fn flipped_caplen_is_corrupt_at_its_record() {
    let dir = corpus_dir();
    // (file, offset of caplen in the record, little endian)
    for (name, caplen_at) in [
        ("http/sv-http-all-headers--input.pcap", 8),
        ("mysql/ndpi-mysql.pcapng", 20),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let (full, _) = read_all(CaptureFile::from_bytes(bytes.clone()).unwrap());
        for k in [0, 5, full.len() - 1] {
            let mut bad = bytes.clone();
            let at = full[k].start as usize + caplen_at;
            bad[at..at + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
            let tmp = Temp::new(&format!("flip-{k}-{}", name.replace('/', "_")), &bad);
            let (pkts, end) = read_all(CaptureFile::open(&tmp.0).unwrap());
            assert_eq!(pkts, full[..k], "{name} record {k}");
            let err = end.unwrap_err();
            assert!(
                matches!(err, FileError::Corrupt { offset, .. } if offset == full[k].start),
                "{name} record {k}: {err:?}"
            );
            assert!(
                err.to_string()
                    .contains(&format!("corrupt at byte {}", full[k].start)),
                "{err}"
            );
        }
    }
}

/// editcap writes nanosecond pcap and pcapng (if_tsresol=9); shifting by
/// 123 ns must survive, snapping must give caplen < orig_len.
#[test]
fn editcap_nanosecond_pcap_and_pcapng() {
    let dir = corpus_dir();
    if !tool("editcap") {
        return;
    }
    let src = dir.join("http/sv-http-all-headers--input.pcap");
    let (orig, _) = read_all(CaptureFile::open(&src).unwrap());
    let tmp = Temp::new("editcap-src.pcap", &std::fs::read(&src).unwrap());
    let ns = tmp.0.with_extension("ns.pcap");
    let ng = tmp.0.with_extension("ns.pcapng");
    let editcap = |args: &[&str], from: &Path, to: &Path| {
        let st = Command::new("editcap")
            .args(args)
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(st.success(), "editcap {args:?} failed");
    };
    editcap(&["-F", "nsecpcap", "-t", "0.000000123"], &tmp.0, &ns);
    editcap(&["-F", "pcapng", "-s", "60"], &ns, &ng);
    let f = CaptureFile::open(&ns).unwrap();
    assert_eq!(f.format(), FileFormat::PcapNanos);
    let (got_ns, end) = read_all(f);
    let f = CaptureFile::open(&ng).unwrap();
    assert_eq!(f.format(), FileFormat::Pcapng);
    let (got_ng, end_ng) = read_all(f);
    let _ = std::fs::remove_file(&ns);
    let _ = std::fs::remove_file(&ng);
    end.unwrap();
    end_ng.unwrap();
    assert_eq!(got_ns.len(), orig.len());
    assert_eq!(got_ng.len(), orig.len());
    for ((o, n), g) in orig.iter().zip(&got_ns).zip(&got_ng) {
        assert_eq!(n.ts_ns, o.ts_ns + 123);
        assert_eq!(n.data, o.data);
        assert_eq!(g.ts_ns, o.ts_ns + 123);
        assert_eq!(g.orig_len, o.orig_len);
        assert_eq!(g.data[..], o.data[..o.data.len().min(60)]);
    }
    assert!(got_ng.iter().any(|p| (p.data.len() as u32) < p.orig_len));
}
