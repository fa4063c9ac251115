//! JA3 / JA3S (Salesforce) and JA4 (FoxIO) fingerprints of hellos.
//!
//! JA3: `version,ciphers,extensions,groups,point_formats`, decimal values
//! joined by `-`, GREASE removed, MD5 of the string.
//! JA4 (TLS over TCP): `t` + version (highest non-GREASE supported_versions,
//! else legacy) + `d`/`i` (SNI present) + cipher count + extension count
//! (non-GREASE, capped 99) + first/last character of the first ALPN (hex
//! digits when not alphanumeric, `00` without ALPN) `_` first 12 hex of
//! SHA-256 of the sorted cipher list `_` first 12 hex of SHA-256 of the
//! sorted extension list without SNI/ALPN, `_`, the signature algorithms in
//! order (the `_sigs` part is left out when there are none).

use super::wire::{is_grease, ClientHello, ServerHello};
use crate::app::util::{hex, Memo};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::cell::RefCell;
use std::sync::Arc;

/// Appends `v` in decimal (fingerprints are built once per handshake, but
/// `fmt` machinery costs more than the rest of the string building).
fn push_dec(s: &mut String, v: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = v;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    s.extend(digits[i..].iter().map(|&d| char::from(d)));
}

fn join_dec<T: Into<u32> + Copy>(s: &mut String, vals: impl Iterator<Item = T>) {
    for (i, v) in vals.enumerate() {
        if i > 0 {
            s.push('-');
        }
        push_dec(s, v.into());
    }
}

/// The digests of fingerprint strings are remembered per worker: the cipher,
/// extension and group lists of a network's clients are few and come back
/// on every handshake.
fn md5_hex(s: &str) -> String {
    std::thread_local! {
        static MEMO: RefCell<Memo> = RefCell::new(Memo::new(256));
    }
    MEMO.with(|m| {
        m.borrow_mut()
            .get_or(s, |s| hex(&Md5::digest(s.as_bytes())))
    })
}

/// JA3 string and hash of a ClientHello.
pub fn ja3(ch: &ClientHello) -> (String, String) {
    let mut s = String::with_capacity(
        8 + 6
            * (ch.ciphers.len()
                + ch.extensions.len()
                + ch.groups.len()
                + ch.ec_point_formats.len()),
    );
    push_dec(&mut s, u32::from(ch.legacy_version));
    s.push(',');
    join_dec(
        &mut s,
        ch.ciphers.iter().copied().filter(|v| !is_grease(*v)),
    );
    s.push(',');
    join_dec(
        &mut s,
        ch.extensions.iter().copied().filter(|v| !is_grease(*v)),
    );
    s.push(',');
    join_dec(&mut s, ch.groups.iter().copied().filter(|v| !is_grease(*v)));
    s.push(',');
    join_dec(&mut s, ch.ec_point_formats.iter().copied());
    let h = md5_hex(&s);
    (s, h)
}

/// JA3S string and hash of a ServerHello.
pub fn ja3s(sh: &ServerHello) -> (String, String) {
    let mut s = String::with_capacity(16 + 6 * sh.extensions.len());
    push_dec(&mut s, u32::from(sh.legacy_version));
    s.push(',');
    push_dec(&mut s, u32::from(sh.cipher));
    s.push(',');
    join_dec(
        &mut s,
        sh.extensions.iter().copied().filter(|v| !is_grease(*v)),
    );
    let h = md5_hex(&s);
    (s, h)
}

/// The JA3 and JA4 of one ClientHello, shared (`Arc`) between the cache
/// and the events: a hit copies no strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFingerprints {
    pub ja3: Arc<str>,
    pub ja3_hash: Arc<str>,
    pub ja4: Arc<str>,
}

/// Fingerprints remembered per worker, keyed by the hello values they are
/// computed from: a network's clients send the same few hellos over and
/// over, and building the decimal and hex strings (and sorting for JA4)
/// costs far more than comparing the lists. Direct-mapped; a hit compares
/// the whole key, so a hash collision can only cost a miss.
struct FingerprintCache<V> {
    slots: Vec<Option<Remembered<V>>>,
    /// The key being looked up (reused: no allocation on a hit).
    key: Vec<u16>,
}

struct Remembered<V> {
    hash: u64,
    key: Box<[u16]>,
    value: V,
}

const FINGERPRINT_SLOTS: usize = 256;

impl<V: Clone> FingerprintCache<V> {
    fn new() -> Self {
        Self::with_slots(FINGERPRINT_SLOTS)
    }

    fn with_slots(n: usize) -> Self {
        FingerprintCache {
            slots: (0..n.max(1)).map(|_| None).collect(),
            key: Vec::new(),
        }
    }

    /// `fill` writes the key (false: it cannot be written unambiguously,
    /// compute without caching); `compute` runs on a miss.
    fn get_or(
        &mut self,
        fill: impl FnOnce(&mut Vec<u16>) -> bool,
        compute: impl FnOnce() -> V,
    ) -> V {
        self.key.clear();
        if !fill(&mut self.key) {
            return compute();
        }
        let hash = hash_u16s(&self.key);
        let i = (hash as usize) % self.slots.len().max(1);
        let Some(slot) = self.slots.get_mut(i) else {
            return compute();
        };
        if let Some(r) = slot {
            if r.hash == hash && *r.key == *self.key {
                return r.value.clone();
            }
        }
        let value = compute();
        *slot = Some(Remembered {
            hash,
            key: self.key.as_slice().into(),
            value: value.clone(),
        });
        value
    }
}

/// A fast non-cryptographic hash of `v`, four values at a time.
fn hash_u16s(v: &[u16]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = v.len() as u64;
    let mut quads = v.chunks_exact(4);
    for q in &mut quads {
        let x = q.iter().fold(0u64, |acc, &w| (acc << 16) | u64::from(w));
        h = (h.rotate_left(5) ^ x).wrapping_mul(K);
    }
    for &w in quads.remainder() {
        h = (h.rotate_left(5) ^ u64::from(w)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

/// Appends the length of `vals` without GREASE, then those values: the
/// fingerprints ignore GREASE wherever it is (so clients drawing new GREASE
/// values for each hello still hit). False if the count does not fit.
fn push_list(key: &mut Vec<u16>, vals: impl Iterator<Item = u16>) -> bool {
    let at = key.len();
    key.push(0);
    key.extend(vals.filter(|v| !is_grease(*v)));
    match (u16::try_from(key.len() - at - 1), key.get_mut(at)) {
        (Ok(n), Some(slot)) => {
            *slot = n;
            true
        }
        _ => false,
    }
}

/// Everything [`ja3`] and [`ja4`] read of a ClientHello: legacy version,
/// ciphers, extensions, groups, point formats, supported versions and
/// signature algorithms (each without GREASE, after its length), then the
/// first ALPN's bytes (or nothing).
fn client_key(ch: &ClientHello, key: &mut Vec<u16>) -> bool {
    key.push(ch.legacy_version);
    let first_alpn = ch.alpns.first().map(|a| a.as_bytes());
    push_list(key, ch.ciphers.iter().copied())
        && push_list(key, ch.extensions.iter().copied())
        && push_list(key, ch.groups.iter().copied())
        // Point formats are bytes: never GREASE.
        && push_list(key, ch.ec_point_formats.iter().map(|&v| u16::from(v)))
        && push_list(key, ch.supported_versions.iter().copied())
        && push_list(key, ch.sig_algs.iter().copied())
        && push_list(key, first_alpn.into_iter().flatten().map(|&b| u16::from(b)))
}

/// JA3 and JA4 of a ClientHello, from this worker's cache when the same
/// hello values were fingerprinted before.
pub fn client_fingerprints(ch: &ClientHello) -> ClientFingerprints {
    std::thread_local! {
        static CACHE: RefCell<FingerprintCache<ClientFingerprints>> =
            RefCell::new(FingerprintCache::new());
    }
    let compute = || {
        let (ja3, ja3_hash) = ja3(ch);
        ClientFingerprints {
            ja3: ja3.into(),
            ja3_hash: ja3_hash.into(),
            ja4: ja4(ch).into(),
        }
    };
    CACHE.with(|c| match c.try_borrow_mut() {
        Ok(mut c) => c.get_or(|key| client_key(ch, key), compute),
        Err(_) => compute(),
    })
}

/// JA3S string and hash of a ServerHello, from this worker's cache when
/// the same version, cipher and extensions were fingerprinted before
/// (shared with the cache, as [`ClientFingerprints`]).
pub fn server_fingerprint(sh: &ServerHello) -> (Arc<str>, Arc<str>) {
    std::thread_local! {
        static CACHE: RefCell<FingerprintCache<(Arc<str>, Arc<str>)>> =
            RefCell::new(FingerprintCache::new());
    }
    let fill = |key: &mut Vec<u16>| {
        key.extend([sh.legacy_version, sh.cipher]);
        push_list(key, sh.extensions.iter().copied())
    };
    let compute = || {
        let (s, h) = ja3s(sh);
        (Arc::from(s), Arc::from(h))
    };
    CACHE.with(|c| match c.try_borrow_mut() {
        Ok(mut c) => c.get_or(fill, compute),
        Err(_) => compute(),
    })
}

fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0200 => "s2",
        0x0100 => "s1",
        _ => "00",
    }
}

fn sha256_12(s: &str) -> String {
    std::thread_local! {
        static MEMO: RefCell<Memo> = RefCell::new(Memo::new(256));
    }
    MEMO.with(|m| {
        m.borrow_mut().get_or(s, |s| {
            let mut h = hex(&Sha256::digest(s.as_bytes()));
            h.truncate(12);
            h
        })
    })
}

fn hex4_list(vals: &[u16]) -> String {
    let mut s = String::with_capacity(vals.len() * 5);
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for shift in [12, 8, 4, 0] {
            s.push(char::from(HEX[usize::from((v >> shift) & 0xf)]));
        }
    }
    s
}

/// JA4 of a ClientHello over TCP.
pub fn ja4(ch: &ClientHello) -> String {
    let version = ch
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(ch.legacy_version);
    let sni = if ch.extensions.contains(&super::wire::EXT_SERVER_NAME) {
        'd'
    } else {
        'i'
    };
    let mut ciphers: Vec<u16> = ch
        .ciphers
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let alpn = match ch.alpns.first().map(|a| a.as_bytes()) {
        Some([]) | None => "00".to_string(),
        Some(a) => {
            let first = a.first().copied().unwrap_or(b'0');
            let last = a.last().copied().unwrap_or(b'0');
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                format!("{}{}", char::from(first), char::from(last))
            } else {
                let h = hex(a);
                let f = h.chars().next().unwrap_or('0');
                let l = h.chars().last().unwrap_or('0');
                format!("{f}{l}")
            }
        }
    };
    let a = format!(
        "t{}{}{:02}{:02}{}",
        ja4_version(version),
        sni,
        ciphers.len().min(99),
        exts.len().min(99),
        alpn
    );
    ciphers.sort_unstable();
    let b = if ciphers.is_empty() {
        "000000000000".to_string()
    } else {
        sha256_12(&hex4_list(&ciphers))
    };
    let mut sorted_exts: Vec<u16> = exts
        .iter()
        .copied()
        .filter(|&e| e != super::wire::EXT_SERVER_NAME && e != super::wire::EXT_ALPN)
        .collect();
    sorted_exts.sort_unstable();
    let sigs: Vec<u16> = ch
        .sig_algs
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let c = if sorted_exts.is_empty() {
        "000000000000".to_string()
    } else {
        let mut s = hex4_list(&sorted_exts);
        if !sigs.is_empty() {
            s.push('_');
            s.push_str(&hex4_list(&sigs));
        }
        sha256_12(&s)
    };
    format!("{a}_{b}_{c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ja4_spec_example() {
        // The example of the JA4 technical details document.
        let ch = ClientHello {
            legacy_version: 0x0303,
            ciphers: vec![
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
                0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
            ],
            alpns: vec!["h2".into(), "http/1.1".into()],
            supported_versions: vec![0x0304, 0x0303],
            sig_algs: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ..ClientHello::default()
        };
        assert_eq!(ja4(&ch), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        // Without signature algorithms the trailing "_sigs" is left out.
        let mut no_sigs = ch.clone();
        no_sigs.sig_algs.clear();
        assert_eq!(ja4(&no_sigs).rsplit('_').next(), Some("6d807ffa2a79"));
        // GREASE ignored everywhere; no SNI -> 'i'; odd ALPN -> hex.
        let mut g = ch.clone();
        g.ciphers.insert(0, 0x0a0a);
        g.extensions.retain(|&e| e != 0);
        g.extensions.insert(0, 0xdada);
        g.supported_versions.insert(0, 0x7a7a);
        g.alpns = vec!["\u{1}x\u{2}".into()];
        let j = ja4(&g);
        assert!(j.starts_with("t13i151502_8daaf6152771_"), "{j}");
        let mut e = ClientHello {
            legacy_version: 0x0301,
            ..ClientHello::default()
        };
        assert_eq!(ja4(&e), "t10i000000_000000000000_000000000000");
        e.alpns = vec![String::new()];
        assert!(ja4(&e).starts_with("t10i000000_"));
    }

    fn uncached(ch: &ClientHello) -> ClientFingerprints {
        let (ja3, ja3_hash) = ja3(ch);
        ClientFingerprints {
            ja3: ja3.into(),
            ja3_hash: ja3_hash.into(),
            ja4: ja4(ch).into(),
        }
    }

    /// Hellos differing in one input each of JA3 or JA4 depends on.
    fn hello_variants() -> Vec<ClientHello> {
        let base = ClientHello {
            legacy_version: 0x0303,
            ciphers: vec![0x1301, 0x1302, 0xc02b, 0x009c],
            extensions: vec![0x0000, 0x0017, 0x000a, 0x000b, 0x0010, 0x000d, 0x002b],
            alpns: vec!["h2".into(), "http/1.1".into()],
            supported_versions: vec![0x0304, 0x0303],
            groups: vec![29, 23],
            ec_point_formats: vec![0],
            sig_algs: vec![0x0403, 0x0804],
            ..ClientHello::default()
        };
        let mut v = vec![base.clone()];
        let mut with = |f: &dyn Fn(&mut ClientHello)| {
            let mut c = base.clone();
            f(&mut c);
            v.push(c);
        };
        with(&|c| c.legacy_version = 0x0301);
        with(&|c| c.ciphers.swap(0, 1));
        with(&|c| c.ciphers.pop().map(drop).unwrap_or(()));
        with(&|c| c.extensions.retain(|&e| e != 0));
        with(&|c| c.extensions.swap(1, 2));
        with(&|c| c.groups.push(24));
        with(&|c| c.ec_point_formats = vec![0, 1]);
        with(&|c| c.ec_point_formats.clear());
        with(&|c| c.supported_versions.clear());
        with(&|c| c.sig_algs.clear());
        with(&|c| c.alpns = vec!["http/1.1".into()]);
        with(&|c| c.alpns = vec![String::new()]);
        with(&|c| c.alpns.clear());
        // A value moved from one list to the next: the lengths keep the
        // keys apart.
        with(&|c| {
            c.ciphers.pop();
            c.extensions.insert(0, 0x009c);
        });
        v
    }

    #[test]
    fn remembered_fingerprints_are_the_computed_ones() {
        let hellos = hello_variants();
        for slots in [1, 2, 256] {
            let mut cache = FingerprintCache::with_slots(slots);
            // Twice round: the second pass hits where the slots allow.
            for ch in hellos.iter().chain(hellos.iter()) {
                let got = cache.get_or(|k| client_key(ch, k), || uncached(ch));
                assert_eq!(got, uncached(ch), "{slots} slots, {ch:?}");
            }
        }
        // Equal keys only for equal fingerprints; every variant changes the
        // key but one: an empty first ALPN and none both give JA4 "00".
        let keys: Vec<Vec<u16>> = hellos
            .iter()
            .map(|ch| {
                let mut k = Vec::new();
                assert!(client_key(ch, &mut k));
                k
            })
            .collect();
        for (i, a) in hellos.iter().enumerate() {
            for (j, b) in hellos.iter().enumerate() {
                if keys[i] == keys[j] {
                    assert_eq!(uncached(a), uncached(b), "{a:?} / {b:?}");
                }
            }
        }
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), hellos.len() - 1);
        // Through the worker's cache too.
        for ch in &hellos {
            assert_eq!(client_fingerprints(ch), uncached(ch));
        }
    }

    #[test]
    fn grease_values_share_one_remembered_fingerprint() {
        let mut a = hello_variants().remove(0);
        a.ciphers.insert(0, 0x0a0a);
        a.extensions.insert(0, 0x1a1a);
        a.supported_versions.insert(0, 0x2a2a);
        let mut b = a.clone();
        b.ciphers[0] = 0xfafa;
        b.extensions[0] = 0xeaea;
        b.supported_versions[0] = 0x7a7a;
        let mut cache = FingerprintCache::with_slots(256);
        let mut computed = 0;
        for ch in [&a, &b, &a] {
            let got = cache.get_or(
                |k| client_key(ch, k),
                || {
                    computed += 1;
                    uncached(ch)
                },
            );
            assert_eq!(got, uncached(ch));
        }
        assert_eq!(computed, 1);
        assert_eq!(uncached(&a), uncached(&b));
        // ServerHellos: version, cipher and extensions make the key.
        let sh = ServerHello {
            legacy_version: 0x0303,
            cipher: 0xc02f,
            extensions: vec![0xff01, 0, 0x0a0a],
            ..Default::default()
        };
        let mut other = sh.clone();
        other.cipher = 0xc030;
        for s in [&sh, &other, &sh] {
            let (string, hash) = ja3s(s);
            assert_eq!(server_fingerprint(s), (string.into(), hash.into()));
        }
    }

    #[test]
    fn ja3_strings() {
        let ch = ClientHello {
            legacy_version: 771,
            ciphers: vec![0x0a0a, 4865, 4866],
            extensions: vec![0x1a1a, 0, 23, 65281],
            groups: vec![0x2a2a, 29, 23],
            ec_point_formats: vec![0],
            ..ClientHello::default()
        };
        let (s, h) = ja3(&ch);
        assert_eq!(s, "771,4865-4866,0-23-65281,29-23,0");
        assert_eq!(h, hex(&Md5::digest(s.as_bytes())));
        assert_eq!(h.len(), 32);
        let sh = ServerHello {
            legacy_version: 771,
            cipher: 49199,
            extensions: vec![65281, 0, 11],
            ..Default::default()
        };
        assert_eq!(ja3s(&sh).0, "771,49199,65281-0-11");
    }
}
