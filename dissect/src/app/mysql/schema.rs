//! How a `mysql` event is written in each output schema. Suricata 8.0 logs
//! no MySQL events; EVE follows the style of its newer `mysql` logger
//! (`version`, `tls`, `command` holding the statement text, `affected_rows`)
//! with our names for the rest. ECS 8.11 has no database field set:
//! `service.type`, `user.name` and `error.*` are ECS, the rest is under
//! `flowtap.mysql`.

use super::event::{MysqlCommand, MysqlError, MysqlEvent};
use crate::app::encode::{opt_str, opt_u64, EventWriters, JsonWriter, StrBuilder, WriteOptions};

/// A representative event with most fields set: the registry's compliance
/// test writes it in every schema; encoder tests and benches use it.
pub(super) fn example() -> MysqlEvent {
    MysqlEvent {
        tx_id: 3,
        command: MysqlCommand::Command(super::wire::COM_QUERY),
        user: Some("root".into()),
        schema: Some("shop".into()),
        server_version: Some("8.0.32".into()),
        connection_id: Some(11),
        server_capabilities: Some(0xdfff_ffff),
        auth_plugin: Some("caching_sha2_password".into()),
        client_auth_plugin: Some("caching_sha2_password".into()),
        auth_switch_plugin: Some("mysql_native_password".into()),
        client_capabilities: Some(0x01ff_a685),
        fast_auth: Some(false),
        tls: false,
        compressed: false,
        statement: Some("insert into items (name) values ('apple')".into()),
        statement_id: Some(1),
        params: Some(1),
        affected_rows: Some(1),
        last_insert_id: Some(42),
        warnings: Some(0),
        info: Some("Records: 1  Duplicates: 0  Warnings: 0".into()),
        error: Some(MysqlError {
            code: 1146,
            sql_state: Some("42S02".into()),
            message: "Table 'shop.nope' doesn't exist".into(),
        }),
        columns: Some(2),
        rows: 3,
        result_bytes: 61,
        result_sets: 1,
        local_infile: None,
        request_ts_ns: Some(1_609_342_598_532_313_000),
        response_ts_ns: Some(1_609_342_598_533_501_000),
        latency_ns: Some(1_188_000),
        request_bytes: 46,
        response_bytes: 170,
        unanswered: false,
        gap: false,
        truncated: false,
    }
}

fn caps_hex(o: &mut JsonWriter<'_>, key: &str, v: Option<u32>) {
    if let Some(v) = v {
        o.str(key, &format!("0x{v:08x}"));
    }
}

fn error_members(o: &mut JsonWriter<'_>, e: &MysqlError) {
    o.u64("code", u64::from(e.code));
    opt_str(o, "sql_state", &e.sql_state);
    o.str("message", &e.message);
}

impl EventWriters for MysqlEvent {
    fn native(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("mysql");
        o.u64("tx_id", d.tx_id);
        o.str("command", d.command.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "user", &d.user);
        opt_str(&mut o, "schema", &d.schema);
        opt_str(&mut o, "server_version", &d.server_version);
        opt_u64(&mut o, "connection_id", d.connection_id.map(u64::from));
        caps_hex(&mut o, "server_capabilities", d.server_capabilities);
        caps_hex(&mut o, "client_capabilities", d.client_capabilities);
        opt_str(&mut o, "auth_plugin", &d.auth_plugin);
        opt_str(&mut o, "client_auth_plugin", &d.client_auth_plugin);
        opt_str(&mut o, "auth_switch_plugin", &d.auth_switch_plugin);
        if let Some(f) = d.fast_auth {
            o.bool("fast_auth", f);
        }
        if d.tls {
            o.bool("tls", true);
        }
        if d.compressed {
            o.bool("compressed", true);
        }
        opt_str(&mut o, "statement", &d.statement);
        opt_u64(&mut o, "statement_id", d.statement_id.map(u64::from));
        opt_u64(&mut o, "params", d.params.map(u64::from));
        opt_u64(&mut o, "affected_rows", d.affected_rows);
        opt_u64(&mut o, "last_insert_id", d.last_insert_id);
        opt_u64(&mut o, "warnings", d.warnings.map(u64::from));
        opt_str(&mut o, "info", &d.info);
        if let Some(e) = &d.error {
            let mut eo = o.begin_object("error");
            error_members(&mut eo, e);
            eo.end_object();
        }
        opt_u64(&mut o, "columns", d.columns);
        if d.result_sets > 0 {
            o.u64("rows", d.rows);
            o.u64("result_bytes", d.result_bytes);
        }
        if d.result_sets > 1 {
            o.u64("result_sets", u64::from(d.result_sets));
        }
        opt_str(&mut o, "local_infile", &d.local_infile);
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.u64("request_bytes", d.request_bytes);
        o.u64("response_bytes", d.response_bytes);
        o.bool("unanswered", d.unanswered);
        o.bool("gap", d.gap);
        o.bool("truncated", d.truncated);
        o.end_object();
    }

    fn ecs_event(&self) -> &'static [u8] {
        br#""kind":"event","category":["database","network"],"type":["protocol"],"action":"mysql","dataset":"flowtap.mysql","module":"flowtap""#
    }

    fn ecs(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        {
            let mut s = w.begin_object("service");
            s.str("type", "mysql");
            opt_str(&mut s, "version", &d.server_version);
            s.end_object();
        }
        if let Some(u) = &d.user {
            let mut o = w.begin_object("user");
            o.str("name", u);
            o.end_object();
        }
        if let Some(e) = &d.error {
            let mut o = w.begin_object("error");
            o.str("code", &e.code.to_string());
            o.str("message", &e.message);
            if let Some(s) = &e.sql_state {
                o.str("type", s);
            }
            o.end_object();
        }
    }

    fn ecs_flowtap(&self, f: &mut JsonWriter<'_>) {
        let d = self;
        // ECS 8.11 has no database field set: the rest is ours.
        let mut o = f.begin_object("mysql");
        o.u64("tx_id", d.tx_id);
        o.str("command", d.command.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "schema", &d.schema);
        opt_str(&mut o, "statement", &d.statement);
        opt_u64(&mut o, "affected_rows", d.affected_rows);
        if d.result_sets > 0 {
            o.u64("rows", d.rows);
        }
        if d.tls {
            o.bool("tls", true);
        }
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.u64("request_bytes", d.request_bytes);
        o.u64("response_bytes", d.response_bytes);
        o.bool("truncated", d.truncated);
        o.end_object();
    }

    fn eve(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("mysql");
        o.u64("tx_id", d.tx_id);
        opt_str(&mut o, "version", &d.server_version);
        o.bool("tls", d.tls);
        o.str("command_name", d.command.as_str());
        opt_str(&mut o, "command", &d.statement);
        opt_str(&mut o, "user", &d.user);
        opt_str(&mut o, "schema", &d.schema);
        opt_u64(&mut o, "affected_rows", d.affected_rows);
        if d.result_sets > 0 {
            o.u64("num_rows", d.rows);
        }
        opt_u64(&mut o, "num_columns", d.columns);
        if let Some(e) = &d.error {
            let mut eo = o.begin_object("error");
            error_members(&mut eo, e);
            eo.end_object();
        }
        o.end_object();
    }

    /// ` query ok`, ` query 1146`
    fn gelf_short(&self, s: &mut StrBuilder<'_>) {
        s.text(" ").text(self.command.as_str());
        if let Some(e) = &self.error {
            s.text(" ").u64(u64::from(e.code));
        } else {
            s.text(" ").text(self.status());
        }
    }

    fn gelf(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        w.u64("_mysql_tx_id", d.tx_id);
        w.str("_mysql_command", d.command.as_str());
        w.str("_mysql_status", d.status());
        opt_str(w, "_mysql_user", &d.user);
        opt_str(w, "_mysql_schema", &d.schema);
        opt_str(w, "_mysql_statement", &d.statement);
        opt_u64(w, "_mysql_affected_rows", d.affected_rows);
        if d.result_sets > 0 {
            w.u64("_mysql_rows", d.rows);
        }
        if let Some(e) = &d.error {
            w.u64("_mysql_error_code", u64::from(e.code));
            opt_str(w, "_mysql_error_sql_state", &e.sql_state);
            w.str("_mysql_error_message", &e.message);
        }
        if d.tls {
            w.u64("_mysql_tls", 1); // GELF values are strings or numbers
        }
        opt_u64(w, "_mysql_latency_us", d.latency_ns.map(|n| n / 1_000));
    }

    fn nanocorp_id(&self) -> u64 {
        self.tx_id
    }

    fn nanocorp(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("mysql");
        o.str("command", d.command.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "user", &d.user);
        opt_str(&mut o, "schema", &d.schema);
        opt_str(&mut o, "statement", &d.statement);
        opt_u64(&mut o, "affected_rows", d.affected_rows);
        if d.result_sets > 0 {
            o.u64("rows", d.rows);
        }
        if let Some(e) = &d.error {
            o.u64("error_code", u64::from(e.code));
            o.str("error_message", &e.message);
        }
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.end_object();
    }
}
