//! How a `pgsql` event is written in each output schema. EVE follows
//! Suricata's `pgsql` object (`tx_id`, `request`, `response`) so EVE
//! consumers read it unchanged; what Suricata 8 does not log gets keys in
//! the same style: `request.extended_query` (an Execute), `request.prepare`,
//! `request.message: "GSSENC Request"` with `response.gssenc_accepted`,
//! `request.sasl_response_redacted`. Secrets Suricata writes are left out:
//! the MD5 salt (`response.message` names the method instead), SASL data,
//! BackendKeyData's `secret_key`. ECS 8.11 has no database field set:
//! `service.type`, `user.name` and `error.*` are ECS, the rest is under
//! `flowtap.pgsql`.

use super::event::{error_field_name, AuthMethod, PgsqlError, PgsqlEvent, PgsqlRequest};
use crate::app::encode::{opt_str, opt_u64, EventWriters, JsonWriter, StrBuilder, WriteOptions};

/// `3.0`
fn version_text(s: &mut StrBuilder<'_>, (major, minor): (u16, u16)) {
    s.u64(u64::from(major)).text(".").u64(u64::from(minor));
}

/// ReadyForQuery status by name.
fn transaction_status_name(b: u8) -> &'static str {
    match b {
        b'I' => "idle",
        b'T' => "in_transaction",
        b'E' => "failed_transaction",
        _ => "unknown",
    }
}

/// The method the server asked for, without Suricata's `authentication_` prefix.
fn auth_short(m: AuthMethod) -> &'static str {
    let n = m.name();
    n.strip_prefix("authentication_").unwrap_or(n)
}

/// Suricata's names for ParameterStatus keys: `DateStyle` -> `date_style`.
pub(super) fn snake(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Suricata's name of a SASL mechanism (`SCRAM-SHA-256` -> `scram_SHA256`).
pub(super) fn sasl_mechanism_eve(m: &str) -> &str {
    match m {
        "SCRAM-SHA-256" => "scram_SHA256",
        "SCRAM-SHA-256-PLUS" => "scram_SHA256_plus",
        other => other,
    }
}

/// Error/notice fields by Suricata's names (`code`, `message`, ...).
fn error_members(o: &mut JsonWriter<'_>, e: &PgsqlError) {
    for (t, v) in &e.fields {
        if let Some(name) = error_field_name(*t) {
            o.str(name, v);
        }
    }
}

fn name_value_list(o: &mut JsonWriter<'_>, key: &str, list: &[(String, String)]) {
    if list.is_empty() {
        return;
    }
    let mut a = o.begin_array(key);
    for (k, v) in list {
        let mut e = a.object();
        e.str("name", k);
        e.str("value", v);
        e.end_object();
    }
    a.end();
}

/// A representative event with most fields set: the registry's compliance
/// test writes it in every schema; encoder tests and benches use it.
pub(super) fn example() -> PgsqlEvent {
    PgsqlEvent {
        tx_id: 4,
        request: PgsqlRequest::Query,
        user: Some("indexer".into()),
        database: Some("indexer".into()),
        application_name: Some("psql".into()),
        protocol_version: Some((3, 0)),
        startup_parameters: vec![("client_encoding".into(), "UTF8".into())],
        sasl_mechanism: Some("SCRAM-SHA-256".into()),
        statement: Some("select * from rules where sid = 2021701;".into()),
        statement_name: Some("s1".into()),
        portal: Some("p1".into()),
        process_id: Some(61),
        encryption_accepted: Some(false),
        auth_method: Some(AuthMethod::Md5),
        auth_ok: true,
        parameter_status: vec![("DateStyle".into(), "ISO, MDY".into())],
        field_count: Some(10),
        data_rows: 3,
        data_size: 1118,
        command_tag: Some("SELECT 3".into()),
        commands: 1,
        rows: Some(3),
        error: Some(PgsqlError {
            fields: vec![
                (b'S', "ERROR".into()),
                (b'V', "ERROR".into()),
                (b'C', "22012".into()),
                (b'M', "division by zero".into()),
                (b'F', "int.c".into()),
                (b'L', "824".into()),
                (b'R', "int4div".into()),
            ],
        }),
        notices: 1,
        copy_in_bytes: Some(12),
        copy_out_bytes: Some(34),
        empty_query: false,
        suspended: false,
        transaction_status: Some(b'I'),
        request_ts_ns: Some(1_609_342_598_532_313_000),
        response_ts_ns: Some(1_609_342_598_533_501_000),
        latency_ns: Some(1_188_000),
        request_bytes: 46,
        response_bytes: 1_470,
        unanswered: false,
        gap: false,
        truncated: false,
    }
}

impl EventWriters for PgsqlEvent {
    fn native(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("pgsql");
        o.u64("tx_id", d.tx_id);
        o.str("request", d.request.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "user", &d.user);
        opt_str(&mut o, "database", &d.database);
        opt_str(&mut o, "application_name", &d.application_name);
        if let Some(v) = d.protocol_version {
            o.str_with("protocol_version", |s| version_text(s, v));
        }
        name_value_list(&mut o, "startup_parameters", &d.startup_parameters);
        opt_str(&mut o, "sasl_mechanism", &d.sasl_mechanism);
        opt_str(&mut o, "statement", &d.statement);
        opt_str(&mut o, "statement_name", &d.statement_name);
        opt_str(&mut o, "portal", &d.portal);
        opt_u64(&mut o, "process_id", d.process_id.map(u64::from));
        if let Some(a) = d.encryption_accepted {
            match d.request {
                PgsqlRequest::GssEncRequest => o.bool("gssenc_accepted", a),
                _ => o.bool("ssl_accepted", a),
            }
        }
        if d.tls() {
            o.bool("tls", true);
        }
        if let Some(m) = d.auth_method {
            o.str("auth_method", auth_short(m));
        }
        if d.auth_ok {
            o.bool("auth_ok", true);
        }
        name_value_list(&mut o, "parameter_status", &d.parameter_status);
        opt_u64(&mut o, "field_count", d.field_count.map(u64::from));
        if d.data_rows > 0 {
            o.u64("data_rows", d.data_rows);
            o.u64("data_size", d.data_size);
        }
        opt_str(&mut o, "command_tag", &d.command_tag);
        if d.commands > 1 {
            o.u64("commands", u64::from(d.commands));
        }
        opt_u64(&mut o, "rows", d.rows);
        if let Some(e) = &d.error {
            let mut eo = o.begin_object("error");
            error_members(&mut eo, e);
            eo.end_object();
        }
        if d.notices > 0 {
            o.u64("notices", u64::from(d.notices));
        }
        opt_u64(&mut o, "copy_in_bytes", d.copy_in_bytes);
        opt_u64(&mut o, "copy_out_bytes", d.copy_out_bytes);
        if d.empty_query {
            o.bool("empty_query", true);
        }
        if d.suspended {
            o.bool("suspended", true);
        }
        if let Some(t) = d.transaction_status {
            o.str("transaction_status", transaction_status_name(t));
        }
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.u64("request_bytes", d.request_bytes);
        o.u64("response_bytes", d.response_bytes);
        o.bool("unanswered", d.unanswered);
        o.bool("gap", d.gap);
        o.bool("truncated", d.truncated);
        o.end_object();
    }

    fn ecs_event(&self) -> &'static [u8] {
        br#""kind":"event","category":["database","network"],"type":["protocol"],"action":"pgsql","dataset":"flowtap.pgsql","module":"flowtap""#
    }

    fn ecs(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        {
            let mut s = w.begin_object("service");
            s.str("type", "postgresql");
            s.end_object();
        }
        if let Some(u) = &d.user {
            let mut o = w.begin_object("user");
            o.str("name", u);
            o.end_object();
        }
        if let Some(e) = &d.error {
            let mut o = w.begin_object("error");
            if let Some(c) = e.code() {
                o.str("code", c);
            }
            if let Some(m) = e.message() {
                o.str("message", m);
            }
            if let Some(s) = e.severity() {
                o.str("type", s);
            }
            o.end_object();
        }
    }

    fn ecs_flowtap(&self, f: &mut JsonWriter<'_>) {
        let d = self;
        // ECS 8.11 has no database field set: the rest is ours.
        let mut o = f.begin_object("pgsql");
        o.u64("tx_id", d.tx_id);
        o.str("request", d.request.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "database", &d.database);
        opt_str(&mut o, "application_name", &d.application_name);
        opt_str(&mut o, "statement", &d.statement);
        opt_str(&mut o, "command_tag", &d.command_tag);
        opt_u64(&mut o, "rows", d.rows);
        if d.data_rows > 0 {
            o.u64("data_rows", d.data_rows);
        }
        if d.tls() {
            o.bool("tls", true);
        }
        if let Some(m) = d.auth_method {
            o.str("auth_method", auth_short(m));
        }
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.u64("request_bytes", d.request_bytes);
        o.u64("response_bytes", d.response_bytes);
        o.bool("truncated", d.truncated);
        o.end_object();
    }

    fn eve(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("pgsql");
        o.u64("tx_id", d.tx_id);
        if d.request != PgsqlRequest::None {
            let mut r = o.begin_object("request");
            match d.request {
                PgsqlRequest::SslRequest => r.str("message", "SSL Request"),
                PgsqlRequest::GssEncRequest => r.str("message", "GSSENC Request"),
                PgsqlRequest::Startup => {
                    if let Some(v) = d.protocol_version {
                        r.str_with("protocol_version", |s| version_text(s, v));
                    }
                    let mut sp = r.begin_object("startup_parameters");
                    opt_str(&mut sp, "user", &d.user);
                    if !d.startup_parameters.is_empty() {
                        let mut a = sp.begin_array("optional_parameters");
                        for (k, v) in &d.startup_parameters {
                            let mut e = a.object();
                            e.str(k, v);
                            e.end_object();
                        }
                        a.end();
                    }
                    sp.end_object();
                }
                PgsqlRequest::Password => r.bool("password_redacted", true),
                PgsqlRequest::SaslInitial => {
                    if let Some(m) = &d.sasl_mechanism {
                        r.str("sasl_authentication_mechanism", sasl_mechanism_eve(m));
                    }
                }
                PgsqlRequest::SaslResponse | PgsqlRequest::GssResponse => {
                    r.bool("sasl_response_redacted", true)
                }
                PgsqlRequest::Query => opt_str(&mut r, "simple_query", &d.statement),
                PgsqlRequest::Execute => opt_str(&mut r, "extended_query", &d.statement),
                PgsqlRequest::Prepare => opt_str(&mut r, "prepare", &d.statement),
                PgsqlRequest::FunctionCall => r.str("message", "function_call"),
                PgsqlRequest::Cancel => {
                    r.str("message", "cancel_request");
                    opt_u64(&mut r, "process_id", d.process_id.map(u64::from));
                }
                PgsqlRequest::Terminate => r.str("message", "termination_message"),
                PgsqlRequest::None => {}
            }
            r.end_object();
        }
        if d.response_ts_ns.is_some() && !d.unanswered {
            let mut r = o.begin_object("response");
            if let Some(a) = d.encryption_accepted {
                match d.request {
                    PgsqlRequest::GssEncRequest => r.bool("gssenc_accepted", a),
                    _ => r.bool("ssl_accepted", a),
                }
            }
            if d.auth_ok {
                r.str("message", "authentication_ok");
            } else if let Some(m) = d.auth_method {
                r.str("message", m.name());
            }
            if !d.parameter_status.is_empty() {
                let mut a = r.begin_array("parameter_status");
                for (k, v) in &d.parameter_status {
                    let mut e = a.object();
                    e.str(&snake(k), v);
                    e.end_object();
                }
                a.end();
            }
            if d.request != PgsqlRequest::Cancel {
                opt_u64(&mut r, "process_id", d.process_id.map(u64::from));
            }
            opt_u64(&mut r, "field_count", d.field_count.map(u64::from));
            if d.data_rows > 0 {
                r.u64("data_rows", d.data_rows);
                r.u64("data_size", d.data_size);
            }
            opt_str(&mut r, "command_completed", &d.command_tag);
            if let Some(e) = &d.error {
                error_members(&mut r, e);
            }
            r.end_object();
        }
        o.end_object();
    }

    /// ` simple_query SELECT 3`, ` execute 23505`
    fn gelf_short(&self, s: &mut StrBuilder<'_>) {
        s.text(" ").text(self.request.as_str());
        if let Some(c) = self.error.as_ref().and_then(|e| e.code()) {
            s.text(" ").text(c);
        } else if let Some(t) = &self.command_tag {
            s.text(" ").text(t);
        }
    }

    fn gelf(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        w.u64("_pgsql_tx_id", d.tx_id);
        w.str("_pgsql_request", d.request.as_str());
        w.str("_pgsql_status", d.status());
        opt_str(w, "_pgsql_user", &d.user);
        opt_str(w, "_pgsql_database", &d.database);
        opt_str(w, "_pgsql_statement", &d.statement);
        opt_str(w, "_pgsql_command_tag", &d.command_tag);
        opt_u64(w, "_pgsql_rows", d.rows);
        if let Some(e) = &d.error {
            if let Some(c) = e.code() {
                w.str("_pgsql_error_code", c);
            }
            if let Some(m) = e.message() {
                w.str("_pgsql_error_message", m);
            }
            if let Some(s) = e.severity() {
                w.str("_pgsql_error_severity", s);
            }
        }
        if d.tls() {
            w.u64("_pgsql_tls", 1); // GELF values are strings or numbers
        }
        opt_u64(w, "_pgsql_latency_us", d.latency_ns.map(|n| n / 1_000));
    }

    fn nanocorp_id(&self) -> u64 {
        self.tx_id
    }

    fn nanocorp(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("pgsql");
        o.str("request", d.request.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "user", &d.user);
        opt_str(&mut o, "database", &d.database);
        opt_str(&mut o, "statement", &d.statement);
        opt_str(&mut o, "command_tag", &d.command_tag);
        opt_u64(&mut o, "rows", d.rows);
        if let Some(e) = &d.error {
            if let Some(c) = e.code() {
                o.str("error_code", c);
            }
            if let Some(m) = e.message() {
                o.str("error_message", m);
            }
        }
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.end_object();
    }
}
