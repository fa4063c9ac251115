//! How a `tls` event is written in each output schema.

use super::event::{version_name, TlsCert, TlsEvent};
use crate::app::encode::{opt_str, opt_u64, EventWriters, JsonWriter, StrBuilder, WriteOptions};

/// TLS version names without allocating for the known ones.
#[inline(always)]
fn version_member(w: &mut JsonWriter<'_>, key: &str, v: u16) {
    match known_version(v) {
        Some(n) => w.str(key, n),
        None => w.str(key, &version_name(v)),
    }
}

/// The names [`version_name`] gives the common versions.
fn known_version(v: u16) -> Option<&'static str> {
    Some(match v {
        0x0200 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => return None,
    })
}

/// `src` without its `:` separators (hex fingerprints and serials, as ECS
/// writes them), upper-cased when asked; no allocation.
fn without_colons(s: &mut StrBuilder<'_>, src: &str, upper: bool) {
    let b = src.as_bytes();
    if !b.is_ascii() {
        // Not a fingerprint: keep characters whole.
        let t = src.replace(':', "");
        s.text(&if upper { t.to_ascii_uppercase() } else { t });
        return;
    }
    // Hex with colons between pairs (`f2:3f:…`, SHA-1, serials) or plain
    // (SHA-256): pairs copied, then upper-cased eight bytes at a time.
    let mut out = [0u8; 128];
    let n;
    if b.len() <= out.len() && !b.contains(&b':') {
        out[..b.len()].copy_from_slice(b);
        n = b.len();
    } else if b.len() <= 3 * out.len() / 2
        && b.len() % 3 == 2
        && b.iter().skip(2).step_by(3).all(|&c| c == b':')
    {
        for (i, pair) in b.chunks(3).enumerate() {
            out[2 * i..2 * i + 2].copy_from_slice(&pair[..2]);
        }
        n = b.len() / 3 * 2 + 2;
    } else {
        let mut chunk = [0u8; 64];
        let mut n = 0;
        for &c in b.iter().filter(|&&c| c != b':') {
            chunk[n] = if upper { c.to_ascii_uppercase() } else { c };
            n += 1;
            if n == chunk.len() {
                s.bytes(&chunk);
                n = 0;
            }
        }
        s.bytes(&chunk[..n]);
        return;
    }
    if upper {
        for w in out[..n.div_ceil(8) * 8].chunks_exact_mut(8) {
            let mut x = [0u8; 8];
            x.copy_from_slice(w);
            w.copy_from_slice(&ascii_upper(u64::from_le_bytes(x)).to_le_bytes());
        }
    }
    s.bytes(&out[..n]);
}

/// ASCII bytes (all below 0x80) with `a`-`z` upper-cased, eight at a time:
/// the high bit of `x + (0x80 - 'a')` says `>= 'a'`, that of
/// `x + (0x80 - 'z' - 1)` says `> 'z'` (no carry crosses a byte below 0x80).
fn ascii_upper(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let ge_a = x + ONES * u64::from(0x80 - b'a');
    let gt_z = x + ONES * u64::from(0x80 - b'z' - 1);
    x - (((ge_a ^ gt_z) & (ONES * 0x80)) >> 2)
}

/// A representative event with most fields set: the registry's compliance
/// test writes it in every schema; encoder tests and benches use it.
pub(super) fn example() -> TlsEvent {
    TlsEvent {
        has_client_hello: true,
        client_hello_ts_ns: Some(1_405_687_770_520_000_000),
        sni: Some("www.ntop.org".into()),
        client_alpns: vec!["h2".into(), "http/1.1".into()],
        ja3: Some("771,4865-4866,0-23,29-23,0".into()),
        ja3_hash: Some("e7d705a3286e19ea42f587b344ee6865".into()),
        ja4: Some("t13d1814h2_29a2cd9e9f10_d267a5f792d4".into()),
        has_server_hello: true,
        version: Some(0x0303),
        cipher: Some(0xc02f),
        server_alpn: Some("h2".into()),
        ja3s: Some("771,49199,65281-0".into()),
        ja3s_hash: Some("ccc514751b175866924439bdbb5bba34".into()),
        certificates: vec![std::sync::Arc::new(TlsCert {
            subject: "CN=www.ntop.org".into(),
            issuer: "C=US, O=Let's Encrypt, CN=Let's Encrypt Authority X3".into(),
            serial: "03:C5:6F:66".into(),
            not_before: 1_576_545_448,
            not_after: 1_584_321_448,
            san_dns: vec!["www.ntop.org".into()],
            sha1: "db:a7:e4:3e".into(),
            sha256: "abcdef".into(),
            der_len: 1200,
            ..TlsCert::default()
        })],
        ..TlsEvent::default()
    }
}

impl EventWriters for TlsEvent {
    fn native(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let t = self;
        let mut o = w.begin_object("tls");
        opt_str(&mut o, "sni", &t.sni);
        if let Some(v) = t.version {
            version_member(&mut o, "version", v);
        }
        if let Some(c) = t.cipher {
            o.u64("cipher_suite", u64::from(c));
        }
        opt_str(&mut o, "ja3", &t.ja3);
        opt_str(&mut o, "ja3_hash", &t.ja3_hash);
        opt_str(&mut o, "ja3s", &t.ja3s);
        opt_str(&mut o, "ja3s_hash", &t.ja3s_hash);
        opt_str(&mut o, "ja4", &t.ja4);
        if !t.client_alpns.is_empty() {
            o.str_array("client_alpns", t.client_alpns.iter().map(String::as_str));
        }
        opt_str(&mut o, "server_alpn", &t.server_alpn);
        o.bool("resumed", t.resumed);
        o.bool("hello_retry", t.hello_retry);
        if !t.certificates.is_empty() {
            let mut a = o.begin_array("certificates");
            for c in &t.certificates {
                let mut e = a.object();
                e.str("subject", &c.subject);
                e.str("issuer", &c.issuer);
                e.str("serial", &c.serial);
                e.utc_secs("not_before", c.not_before);
                e.utc_secs("not_after", c.not_after);
                if !c.san_dns.is_empty() {
                    e.str_array("san_dns", c.san_dns.iter().map(String::as_str));
                }
                e.str("sha1", &c.sha1);
                e.str("sha256", &c.sha256);
                e.end_object();
            }
            a.end();
        }
        if let Some((level, desc)) = t.alert {
            let mut a = o.begin_object("alert");
            a.u64("level", u64::from(level));
            a.u64("description", u64::from(desc));
            a.bool("from_server", t.alert_from_server);
            a.end_object();
        }
        opt_u64(&mut o, "latency_us", t.latency_ns.map(|n| n / 1_000));
        o.bool("incomplete", t.incomplete);
        o.bool("gap", t.gap);
        o.bool("truncated", t.truncated);
        o.end_object();
    }

    fn ecs_event(&self) -> &'static [u8] {
        br#""kind":"event","category":["network"],"type":["protocol"],"action":"tls","dataset":"flowtap.tls","module":"flowtap""#
    }

    fn ecs(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let t = self;
        let mut o = w.begin_object("tls");
        if let Some(v) = t.version {
            let (proto, num) = match v {
                0x0300 => ("ssl", "3.0"),
                0x0200 => ("ssl", "2.0"),
                0x0301 => ("tls", "1.0"),
                0x0302 => ("tls", "1.1"),
                0x0303 => ("tls", "1.2"),
                0x0304 => ("tls", "1.3"),
                _ => ("tls", ""),
            };
            o.str("version_protocol", proto);
            if !num.is_empty() {
                o.str("version", num);
            }
        }
        o.bool("established", t.has_server_hello && !t.incomplete);
        o.bool("resumed", t.resumed);
        if let Some(a) = &t.server_alpn {
            o.str("next_protocol", a);
        }
        {
            let mut c = o.begin_object("client");
            if let Some(s) = &t.sni {
                c.str("server_name", s);
            }
            if let Some(h) = &t.ja3_hash {
                c.str("ja3", h);
            }
            c.end_object();
        }
        {
            let mut s = o.begin_object("server");
            if let Some(h) = &t.ja3s_hash {
                s.str("ja3s", h);
            }
            if let Some(c) = t.certificates.first() {
                s.str("subject", &c.subject);
                s.str("issuer", &c.issuer);
                s.utc_secs("not_before", c.not_before);
                s.utc_secs("not_after", c.not_after);
                let mut h = s.begin_object("hash");
                h.str_with("sha1", |s| without_colons(s, &c.sha1, true));
                h.str_with("sha256", |s| without_colons(s, &c.sha256, true));
                h.end_object();
                let mut x = s.begin_object("x509");
                x.str_with("serial_number", |s| without_colons(s, &c.serial, false));
                if !c.san_dns.is_empty() {
                    x.str_array("alternative_names", c.san_dns.iter().map(String::as_str));
                }
                let mut sub = x.begin_object("subject");
                sub.str("distinguished_name", &c.subject);
                sub.end_object();
                let mut iss = x.begin_object("issuer");
                iss.str("distinguished_name", &c.issuer);
                iss.end_object();
                x.end_object();
            }
            s.end_object();
        }
        o.end_object();
    }

    fn ecs_flowtap(&self, f: &mut JsonWriter<'_>) {
        let t = self;
        let mut o = f.begin_object("tls");
        if let Some(c) = t.cipher {
            o.u64("cipher_suite", u64::from(c));
        }
        if let Some(j) = &t.ja4 {
            o.str("ja4", j);
        }
        o.bool("incomplete", t.incomplete);
        o.end_object();
    }

    fn eve(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let t = self;
        let mut o = w.begin_object("tls");
        if let Some(c) = t.certificates.first() {
            o.str("subject", &c.subject);
            o.str("issuerdn", &c.issuer);
            if !c.san_dns.is_empty() {
                o.str_array("subjectaltname", c.san_dns.iter().map(String::as_str));
            }
            o.str("serial", &c.serial);
            o.str("fingerprint", &c.sha1);
        }
        if let Some(v) = &t.sni {
            o.str("sni", v);
        }
        if let Some(v) = t.version {
            version_member(&mut o, "version", v);
        }
        if let Some(c) = t.certificates.first() {
            o.utc_secs("notbefore", c.not_before);
            o.utc_secs("notafter", c.not_after);
        }
        if let (Some(s), Some(h)) = (&t.ja3, &t.ja3_hash) {
            let mut j = o.begin_object("ja3");
            j.str("hash", h);
            j.str("string", s);
            j.end_object();
        }
        if let (Some(s), Some(h)) = (&t.ja3s, &t.ja3s_hash) {
            let mut j = o.begin_object("ja3s");
            j.str("hash", h);
            j.str("string", s);
            j.end_object();
        }
        if let Some(v) = &t.ja4 {
            o.str("ja4", v);
        }
        if !t.client_alpns.is_empty() {
            o.str_array("client_alpns", t.client_alpns.iter().map(String::as_str));
        }
        if let Some(a) = &t.server_alpn {
            o.str_array("server_alpns", [a.as_str()]);
        }
        o.end_object();
    }

    /// ` example.com TLS 1.3`
    fn gelf_short(&self, s: &mut StrBuilder<'_>) {
        if let Some(sni) = &self.sni {
            s.text(" ").text(sni);
        }
        if let Some(v) = self.version {
            match known_version(v) {
                Some(n) => s.text(" ").text(n),
                None => s.text(" ").text(&version_name(v)),
            };
        }
    }

    fn gelf(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let t = self;
        opt_str(w, "_tls_sni", &t.sni);
        if let Some(v) = t.version {
            version_member(w, "_tls_version", v);
        }
        opt_str(w, "_tls_ja3", &t.ja3_hash);
        opt_str(w, "_tls_ja3s", &t.ja3s_hash);
        opt_str(w, "_tls_ja4", &t.ja4);
        if let Some(c) = t.certificates.first() {
            w.str("_tls_subject", &c.subject);
            w.str("_tls_issuerdn", &c.issuer);
            w.str("_tls_serial", &c.serial);
            w.str("_tls_fingerprint", &c.sha1);
        }
    }

    fn nanocorp_id(&self) -> u64 {
        0
    }

    fn nanocorp(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let t = self;
        let mut o = w.begin_object("tls");
        if let Some(s) = &t.sni {
            o.str("sni", s);
        }
        if let Some(v) = t.version {
            version_member(&mut o, "version", v);
        }
        if let Some(j) = &t.ja3_hash {
            o.str("ja3", j);
        }
        if let Some(j) = &t.ja4 {
            o.str("ja4", j);
        }
        if let Some(c) = t.certificates.first() {
            o.str("subject", &c.subject);
            o.str("issuer", &c.issuer);
        }
        o.end_object();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_fingerprints_keep_every_digit_whatever_their_shape() {
        let cases = [
            "f2:3f:47:97:92:39:d1:78:b0:5d:b3:76:21:65:39:7b:f8:02:7b:39",
            "8ba6662c5dd1d945a469aec9658409f5ba8ca4298c1b0dcc9d1bf973bf1a4a7f",
            "03:F1",
            "0a",
            "",
            "a:b:cd:",
            "az:AZ:09:{}:`@",
            "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ff",
        ];
        for src in cases {
            for upper in [false, true] {
                let mut buf = Vec::new();
                let mut w = JsonWriter::object(&mut buf);
                w.str_with("v", |s| without_colons(s, src, upper));
                w.finish_line();
                let want: String = src.chars().filter(|&c| c != ':').collect();
                let want = if upper {
                    want.to_ascii_uppercase()
                } else {
                    want
                };
                let v: serde_json::Value = serde_json::from_slice(&buf).expect("json");
                assert_eq!(v["v"], want.as_str(), "{src} upper={upper}");
            }
        }
    }
}
