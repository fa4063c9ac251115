//! How a `redis` event is written in each output schema. Suricata 8 has
//! no Redis logger: EVE gets a `redis` object in the style of its `pgsql`
//! one (`tx_id`, `request`, `response`). ECS 8.11 has no database field
//! set: `service.type`, `user.name` and `error.*` are ECS, the rest is
//! under `flowtap.redis`.

use super::event::{RedisEvent, RedisKind};
use crate::app::encode::{opt_str, opt_u64, EventWriters, JsonWriter, StrBuilder, WriteOptions};

/// A representative event with most fields set: the registry's compliance
/// test writes it in every schema; encoder tests and benches use it.
pub(super) fn example() -> RedisEvent {
    RedisEvent {
        tx_id: 7,
        kind: RedisKind::Command,
        command: Some("LPUSH".into()),
        key: Some("queue:jobs".into()),
        args: vec!["job-1".into()],
        arg_count: 2,
        user: Some("worker".into()),
        in_transaction: true,
        push_kind: Some("message".into()),
        channel: Some("news".into()),
        pattern: Some("ne*".into()),
        reply_kind: Some(super::wire::kind::ERROR),
        reply_len: 65,
        reply: Some("QUEUED".into()),
        error: Some("WRONGTYPE Operation against a key holding the wrong kind of value".into()),
        confirmations: 1,
        subscriptions: Some(1),
        attributes: 1,
        request_ts_ns: Some(1_609_342_598_532_313_000),
        response_ts_ns: Some(1_609_342_598_532_401_000),
        latency_ns: Some(88_000),
        request_bytes: 45,
        response_bytes: 68,
        unanswered: false,
        no_reply: false,
        gap: false,
        truncated: false,
    }
}

impl EventWriters for RedisEvent {
    fn native(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("redis");
        o.u64("tx_id", d.tx_id);
        o.str("kind", d.kind.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "command", &d.command);
        opt_str(&mut o, "key", &d.key);
        if !d.args.is_empty() {
            o.str_array("args", d.args.iter().map(String::as_str));
        }
        if d.kind == RedisKind::Command {
            o.u64("arg_count", d.arg_count);
        }
        opt_str(&mut o, "user", &d.user);
        if d.in_transaction {
            o.bool("in_transaction", true);
        }
        opt_str(&mut o, "push_kind", &d.push_kind);
        opt_str(&mut o, "channel", &d.channel);
        opt_str(&mut o, "pattern", &d.pattern);
        if let Some(t) = d.reply_type() {
            o.str("reply_type", t);
        }
        opt_u64(&mut o, "reply_length", d.reply_length());
        opt_u64(&mut o, "reply_elements", d.reply_elements());
        opt_str(&mut o, "reply", &d.reply);
        opt_str(&mut o, "error", &d.error);
        if let Some(c) = d.error_code() {
            o.str("error_code", c);
        }
        if d.confirmations > 0 {
            o.u64("confirmations", u64::from(d.confirmations));
        }
        opt_u64(&mut o, "subscriptions", d.subscriptions);
        if d.attributes > 0 {
            o.u64("attributes", u64::from(d.attributes));
        }
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.u64("request_bytes", d.request_bytes);
        o.u64("response_bytes", d.response_bytes);
        o.bool("unanswered", d.unanswered);
        if d.no_reply {
            o.bool("no_reply", true);
        }
        o.bool("gap", d.gap);
        o.bool("truncated", d.truncated);
        o.end_object();
    }

    fn ecs_event(&self) -> &'static [u8] {
        br#""kind":"event","category":["database","network"],"type":["protocol"],"action":"redis","dataset":"flowtap.redis","module":"flowtap""#
    }

    fn ecs(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        {
            let mut s = w.begin_object("service");
            s.str("type", "redis");
            s.end_object();
        }
        if let Some(u) = &d.user {
            let mut o = w.begin_object("user");
            o.str("name", u);
            o.end_object();
        }
        if let Some(e) = &d.error {
            let mut o = w.begin_object("error");
            if let Some(c) = d.error_code() {
                o.str("code", c);
            }
            o.str("message", e);
            o.end_object();
        }
    }

    fn ecs_flowtap(&self, f: &mut JsonWriter<'_>) {
        let d = self;
        let mut o = f.begin_object("redis");
        o.u64("tx_id", d.tx_id);
        o.str("kind", d.kind.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "command", &d.command);
        opt_str(&mut o, "key", &d.key);
        opt_str(&mut o, "channel", &d.channel);
        if let Some(t) = d.reply_type() {
            o.str("reply_type", t);
        }
        opt_u64(&mut o, "reply_length", d.reply_length());
        opt_u64(&mut o, "reply_elements", d.reply_elements());
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.u64("request_bytes", d.request_bytes);
        o.u64("response_bytes", d.response_bytes);
        o.bool("truncated", d.truncated);
        o.end_object();
    }

    fn eve(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("redis");
        o.u64("tx_id", d.tx_id);
        if d.command.is_some() {
            let mut r = o.begin_object("request");
            opt_str(&mut r, "command", &d.command);
            opt_str(&mut r, "key", &d.key);
            if !d.args.is_empty() {
                r.str_array("args", d.args.iter().map(String::as_str));
            }
            opt_str(&mut r, "user", &d.user);
            r.end_object();
        }
        if d.response_ts_ns.is_some() && !d.unanswered {
            let mut r = o.begin_object("response");
            if let Some(t) = d.reply_type() {
                r.str("type", t);
            }
            opt_str(&mut r, "push_kind", &d.push_kind);
            opt_str(&mut r, "channel", &d.channel);
            opt_str(&mut r, "pattern", &d.pattern);
            opt_str(&mut r, "value", &d.reply);
            opt_u64(&mut r, "length", d.reply_length());
            opt_u64(&mut r, "elements", d.reply_elements());
            opt_str(&mut r, "error", &d.error);
            r.end_object();
        }
        o.end_object();
    }

    /// ` SET ok`, ` GET WRONGTYPE`, ` push message news`
    fn gelf_short(&self, s: &mut StrBuilder<'_>) {
        match (&self.command, &self.push_kind) {
            (Some(c), _) => {
                s.text(" ").text(c);
            }
            (None, Some(k)) => {
                s.text(" push ").text(k);
            }
            (None, None) => {
                s.text(" reply");
            }
        }
        if let Some(c) = self.error_code() {
            s.text(" ").text(c);
        } else if let Some(ch) = &self.channel {
            s.text(" ").text(ch);
        } else {
            s.text(" ").text(self.status());
        }
    }

    fn gelf(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        w.u64("_redis_tx_id", d.tx_id);
        w.str("_redis_kind", d.kind.as_str());
        w.str("_redis_status", d.status());
        opt_str(w, "_redis_command", &d.command);
        opt_str(w, "_redis_key", &d.key);
        opt_str(w, "_redis_channel", &d.channel);
        if let Some(t) = d.reply_type() {
            w.str("_redis_reply_type", t);
        }
        opt_str(w, "_redis_error", &d.error);
        opt_u64(w, "_redis_latency_us", d.latency_ns.map(|n| n / 1_000));
    }

    fn nanocorp_id(&self) -> u64 {
        self.tx_id
    }

    fn nanocorp(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("redis");
        o.str("kind", d.kind.as_str());
        o.str("status", d.status());
        opt_str(&mut o, "command", &d.command);
        opt_str(&mut o, "key", &d.key);
        opt_str(&mut o, "channel", &d.channel);
        if let Some(t) = d.reply_type() {
            o.str("reply_type", t);
        }
        opt_str(&mut o, "error", &d.error);
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.end_object();
    }
}
