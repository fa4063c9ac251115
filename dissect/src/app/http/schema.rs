//! How an `http` event is written in each output schema.

use super::event::{HttpEvent, HttpHeader};
use crate::app::encode::{
    cut, opt_str, opt_u64, EventWriters, JsonWriter, StrBuilder, WriteOptions,
};

/// "1.1" from "HTTP/1.1".
fn version_number(v: &str) -> &str {
    v.strip_prefix("HTTP/").unwrap_or(v)
}

fn headers(w: &mut JsonWriter<'_>, key: &str, hs: &[HttpHeader]) {
    if hs.is_empty() {
        return;
    }
    let mut a = w.begin_array(key);
    for h in hs {
        let mut o = a.object();
        o.str("name", &h.name);
        o.str("value", &h.value);
        o.end_object();
    }
    a.end();
}

/// A representative event with most fields set: the registry's compliance
/// test writes it in every schema; encoder tests and benches use it.
pub(super) fn example() -> HttpEvent {
    HttpEvent {
        tx_id: 0,
        has_request: true,
        has_response: true,
        method: Some("GET".into()),
        uri: Some("/download.html?x=1".into()),
        host: Some("www.ethereal.com".into()),
        host_port: Some(8080),
        version: Some("HTTP/1.1".into()),
        user_agent: Some("Mozilla/5.0 \"quoted\"".into()),
        referer: Some("http://www.ethereal.com/development.html".into()),
        request_headers: vec![HttpHeader {
            name: "Host".into(),
            value: "www.ethereal.com".into(),
        }],
        request_body: b"a=1&b=\x00\xff".to_vec(),
        request_body_len: 9,
        response_version: Some("HTTP/1.1".into()),
        status: Some(200),
        reason: Some("OK".into()),
        content_type: Some("text/html".into()),
        response_body_len: 18070,
        latency_ns: Some(1_500_000),
        request_ts_ns: Some(1_084_443_432_328_438_000),
        ..HttpEvent::default()
    }
}

impl EventWriters for HttpEvent {
    fn native(&self, w: &mut JsonWriter<'_>, opts: &WriteOptions) {
        let h = self;
        let mut o = w.begin_object("http");
        o.u64("tx_id", h.tx_id);
        opt_str(&mut o, "method", &h.method);
        opt_str(&mut o, "uri", &h.uri);
        opt_str(&mut o, "host", &h.host);
        opt_u64(&mut o, "host_port", h.host_port.map(u64::from));
        opt_str(&mut o, "version", &h.version);
        opt_str(&mut o, "user_agent", &h.user_agent);
        opt_str(&mut o, "referer", &h.referer);
        opt_str(&mut o, "x_forwarded_for", &h.x_forwarded_for);
        opt_str(&mut o, "request_content_type", &h.request_content_type);
        opt_u64(&mut o, "request_content_length", h.request_content_length);
        opt_str(&mut o, "upgrade", &h.upgrade);
        o.u64("request_body_len", h.request_body_len);
        if opts.max_body_bytes > 0 && !h.request_body.is_empty() {
            o.bytes_as_str("request_body", cut(&h.request_body, opts.max_body_bytes));
        }
        headers(&mut o, "request_headers", &h.request_headers);
        opt_str(&mut o, "response_version", &h.response_version);
        opt_u64(&mut o, "status", h.status.map(u64::from));
        opt_str(&mut o, "reason", &h.reason);
        if !h.interim_statuses.is_empty() {
            o.u64_array(
                "interim_statuses",
                h.interim_statuses.iter().map(|&s| u64::from(s)),
            );
        }
        opt_str(&mut o, "content_type", &h.content_type);
        opt_u64(&mut o, "response_content_length", h.response_content_length);
        opt_str(&mut o, "location", &h.location);
        o.u64("response_body_len", h.response_body_len);
        if opts.max_body_bytes > 0 && !h.response_body.is_empty() {
            o.bytes_as_str("response_body", cut(&h.response_body, opts.max_body_bytes));
        }
        headers(&mut o, "response_headers", &h.response_headers);
        opt_u64(&mut o, "latency_us", h.latency_ns.map(|n| n / 1_000));
        o.bool("chunked_request", h.request_chunked);
        o.bool("chunked_response", h.response_chunked);
        o.bool("tunnel", h.tunnel);
        o.bool("gap", h.gap);
        o.bool("truncated", h.truncated);
        o.bool("incomplete", h.incomplete);
        o.end_object();
    }

    fn ecs_event(&self) -> &'static [u8] {
        br#""kind":"event","category":["network","web"],"type":["protocol","access"],"action":"http","dataset":"flowtap.http","module":"flowtap""#
    }

    fn ecs(&self, w: &mut JsonWriter<'_>, opts: &WriteOptions) {
        let h = self;
        {
            let mut o = w.begin_object("http");
            if let Some(v) = &h.version {
                o.str("version", version_number(v));
            }
            let mut rq = o.begin_object("request");
            if let Some(m) = &h.method {
                rq.str("method", m);
            }
            if let Some(r) = &h.referer {
                rq.str("referrer", r);
            }
            if let Some(t) = &h.request_content_type {
                rq.str("mime_type", t);
            }
            let mut b = rq.begin_object("body");
            b.u64("bytes", h.request_body_len);
            if opts.max_body_bytes > 0 && !h.request_body.is_empty() {
                b.bytes_as_str("content", cut(&h.request_body, opts.max_body_bytes));
            }
            b.end_object();
            rq.end_object();
            if h.has_response {
                let mut rs = o.begin_object("response");
                if let Some(s) = h.status {
                    rs.u64("status_code", u64::from(s));
                }
                if let Some(t) = &h.content_type {
                    rs.str("mime_type", t);
                }
                let mut b = rs.begin_object("body");
                b.u64("bytes", h.response_body_len);
                if opts.max_body_bytes > 0 && !h.response_body.is_empty() {
                    b.bytes_as_str("content", cut(&h.response_body, opts.max_body_bytes));
                }
                b.end_object();
                rs.end_object();
            }
            o.end_object();
        }
        if h.uri.is_some() || h.host.is_some() {
            let mut u = w.begin_object("url");
            if let Some(uri) = &h.uri {
                u.str("original", uri);
                let (path, query) = match uri.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (uri.as_str(), None),
                };
                if path.starts_with('/') {
                    u.str("path", path);
                }
                if let Some(q) = query {
                    u.str("query", q);
                }
            }
            if let Some(host) = &h.host {
                u.str("domain", host);
            }
            if let Some(p) = h.host_port {
                u.u64("port", u64::from(p));
            }
            u.end_object();
        }
        if let Some(ua) = &h.user_agent {
            let mut o = w.begin_object("user_agent");
            o.str("original", ua);
            o.end_object();
        }
    }

    fn ecs_flowtap(&self, f: &mut JsonWriter<'_>) {
        let h = self;
        let mut o = f.begin_object("http");
        o.u64("tx_id", h.tx_id);
        o.bool("gap", h.gap);
        o.bool("truncated", h.truncated);
        o.bool("incomplete", h.incomplete);
        if let Some(l) = h.latency_ns {
            o.u64("latency_us", l / 1_000);
        }
        o.end_object();
    }

    fn eve(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let h = self;
        w.u64("tx_id", h.tx_id);
        let mut o = w.begin_object("http");
        if let Some(v) = &h.host {
            o.str("hostname", v);
        }
        if let Some(p) = h.host_port {
            o.u64("http_port", u64::from(p));
        }
        if let Some(v) = &h.uri {
            o.str("url", v);
        }
        if let Some(v) = &h.user_agent {
            o.str("http_user_agent", v);
        }
        if let Some(v) = &h.x_forwarded_for {
            o.str("xff", v);
        }
        if let Some(v) = &h.content_type {
            o.str("http_content_type", v);
        }
        if let Some(v) = &h.referer {
            o.str("http_refer", v);
        }
        if let Some(v) = &h.method {
            o.str("http_method", v);
        }
        if let Some(v) = &h.version {
            o.str("protocol", v);
        }
        if let Some(s) = h.status {
            o.u64("status", u64::from(s));
        }
        if let Some(v) = &h.location {
            o.str("redirect", v);
        }
        o.u64("length", h.response_body_len);
        o.end_object();
    }

    /// ` GET example.com /index.html 200`
    fn gelf_short(&self, s: &mut StrBuilder<'_>) {
        for part in [
            self.method.as_deref(),
            self.host.as_deref(),
            self.uri.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            s.text(" ").text(part);
        }
        if let Some(st) = self.status {
            s.text(" ").u64(u64::from(st));
        }
    }

    fn gelf(&self, w: &mut JsonWriter<'_>, opts: &WriteOptions) {
        let h = self;
        w.u64("_http_tx_id", h.tx_id);
        opt_str(w, "_http_method", &h.method);
        opt_str(w, "_http_url", &h.uri);
        opt_str(w, "_http_hostname", &h.host);
        opt_str(w, "_http_protocol", &h.version);
        opt_str(w, "_http_user_agent", &h.user_agent);
        opt_str(w, "_http_referer", &h.referer);
        opt_str(w, "_http_content_type", &h.content_type);
        opt_str(w, "_http_location", &h.location);
        if let Some(s) = h.status {
            w.u64("_http_status", u64::from(s));
        }
        w.u64("_http_request_body_len", h.request_body_len);
        w.u64("_http_response_body_len", h.response_body_len);
        if opts.max_body_bytes > 0 && !h.request_body.is_empty() {
            w.bytes_as_str(
                "_http_request_body",
                cut(&h.request_body, opts.max_body_bytes),
            );
        }
        if let Some(l) = h.latency_ns {
            w.u64("_http_latency_us", l / 1_000);
        }
    }

    fn nanocorp_id(&self) -> u64 {
        self.tx_id
    }

    fn nanocorp(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let h = self;
        let mut o = w.begin_object("http");
        for (k, v) in [
            ("method", h.method.as_deref()),
            ("host", h.host.as_deref()),
            ("uri", h.uri.as_deref()),
            ("user_agent", h.user_agent.as_deref()),
            ("content_type", h.content_type.as_deref()),
        ] {
            if let Some(v) = v {
                o.str(k, v);
            }
        }
        if let Some(s) = h.status {
            o.u64("status", u64::from(s));
        }
        o.u64("response_bytes", h.response_body_len);
        o.end_object();
    }
}
