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
