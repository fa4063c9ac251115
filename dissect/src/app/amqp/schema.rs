//! How an `amqp` event is written in each output schema. Suricata 8 has
//! no AMQP logger: EVE gets an `amqp` object in the style of its `pgsql`
//! one (`tx_id`, `request`, `response`). ECS 8.11 has no messaging field
//! set: `service.type`, `user.name` and `error.*` are ECS, the rest is
//! under `flowtap.amqp`.

use super::event::AmqpEvent;
use crate::app::encode::{opt_str, opt_u64, EventWriters, JsonWriter, StrBuilder, WriteOptions};

/// A representative event with most fields set: the registry's compliance
/// test writes it in every schema.
pub(super) fn example() -> AmqpEvent {
    AmqpEvent {
        tx_id: 5,
        channel: 1,
        method: Some("channel.close"),
        response: Some("channel.close-ok"),
        from_server: true,
        protocol: Some("0-9-1".into()),
        server_product: Some("RabbitMQ".into()),
        server_version: Some("3.12.1".into()),
        server_platform: Some("Erlang/OTP 25.3".into()),
        mechanism: Some("PLAIN".into()),
        user: Some("guest".into()),
        vhost: Some("/".into()),
        channel_max: Some(2047),
        frame_max: Some(131_072),
        heartbeat: Some(60),
        exchange: Some("celeryev".into()),
        exchange_type: Some("topic".into()),
        routing_key: Some("worker.heartbeat".into()),
        queue: Some("celery".into()),
        consumer_tag: Some("amq.ctag-1".into()),
        delivery_tag: Some(3),
        multiple: true,
        requeue: true,
        redelivered: true,
        message_count: Some(2),
        consumer_count: Some(1),
        prefetch_count: Some(4),
        body_size: Some(295),
        body_bytes: 295,
        content_type: Some("application/json".into()),
        delivery_mode: Some(2),
        reply_code: Some(404),
        reply_text: Some("NOT_FOUND - no queue 'missing' in vhost '/'".into()),
        failed_method: Some("queue.declare"),
        heartbeats: 2,
        request_ts_ns: Some(1_609_342_598_532_313_000),
        response_ts_ns: Some(1_609_342_598_532_601_000),
        latency_ns: Some(288_000),
        request_bytes: 88,
        response_bytes: 12,
        unanswered: false,
        gap: false,
        truncated: false,
    }
}

fn flags(o: &mut JsonWriter<'_>, d: &AmqpEvent) {
    if d.multiple {
        o.bool("multiple", true);
    }
    if d.requeue {
        o.bool("requeue", true);
    }
    if d.redelivered {
        o.bool("redelivered", true);
    }
}

impl EventWriters for AmqpEvent {
    fn native(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("amqp");
        o.u64("tx_id", d.tx_id);
        o.u64("channel", u64::from(d.channel));
        o.str("status", d.status());
        if let Some(m) = d.method {
            o.str("method", m);
        }
        if let Some(m) = d.response {
            o.str("response", m);
        }
        o.str("sender", if d.from_server { "server" } else { "client" });
        opt_str(&mut o, "protocol", &d.protocol);
        opt_str(&mut o, "server_product", &d.server_product);
        opt_str(&mut o, "server_version", &d.server_version);
        opt_str(&mut o, "server_platform", &d.server_platform);
        opt_str(&mut o, "mechanism", &d.mechanism);
        opt_str(&mut o, "user", &d.user);
        opt_str(&mut o, "vhost", &d.vhost);
        opt_u64(&mut o, "channel_max", d.channel_max.map(u64::from));
        opt_u64(&mut o, "frame_max", d.frame_max.map(u64::from));
        opt_u64(&mut o, "heartbeat", d.heartbeat.map(u64::from));
        opt_str(&mut o, "exchange", &d.exchange);
        opt_str(&mut o, "exchange_type", &d.exchange_type);
        opt_str(&mut o, "routing_key", &d.routing_key);
        opt_str(&mut o, "queue", &d.queue);
        opt_str(&mut o, "consumer_tag", &d.consumer_tag);
        opt_u64(&mut o, "delivery_tag", d.delivery_tag);
        flags(&mut o, d);
        opt_u64(&mut o, "message_count", d.message_count.map(u64::from));
        opt_u64(&mut o, "consumer_count", d.consumer_count.map(u64::from));
        opt_u64(&mut o, "prefetch_count", d.prefetch_count.map(u64::from));
        opt_u64(&mut o, "body_size", d.body_size);
        if d.body_size.is_some() || d.body_bytes > 0 {
            o.u64("body_bytes", d.body_bytes);
        }
        opt_str(&mut o, "content_type", &d.content_type);
        opt_u64(&mut o, "delivery_mode", d.delivery_mode.map(u64::from));
        opt_u64(&mut o, "reply_code", d.reply_code.map(u64::from));
        opt_str(&mut o, "reply_text", &d.reply_text);
        if let Some(m) = d.failed_method {
            o.str("failed_method", m);
        }
        if d.heartbeats > 0 {
            o.u64("heartbeats", d.heartbeats);
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
        br#""kind":"event","category":["network"],"type":["protocol"],"action":"amqp","dataset":"flowtap.amqp","module":"flowtap""#
    }

    fn ecs(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        {
            let mut s = w.begin_object("service");
            s.str("type", "amqp");
            s.end_object();
        }
        if let Some(u) = &d.user {
            let mut o = w.begin_object("user");
            o.str("name", u);
            o.end_object();
        }
        if d.is_error() {
            let mut o = w.begin_object("error");
            if let Some(c) = d.reply_code {
                o.str_with("code", |s| {
                    s.u64(u64::from(c));
                });
            }
            opt_str(&mut o, "message", &d.reply_text);
            o.end_object();
        }
    }

    fn ecs_flowtap(&self, f: &mut JsonWriter<'_>) {
        let d = self;
        let mut o = f.begin_object("amqp");
        o.u64("tx_id", d.tx_id);
        o.u64("channel", u64::from(d.channel));
        o.str("status", d.status());
        if let Some(m) = d.method {
            o.str("method", m);
        }
        if let Some(m) = d.response {
            o.str("response", m);
        }
        opt_str(&mut o, "vhost", &d.vhost);
        opt_str(&mut o, "exchange", &d.exchange);
        opt_str(&mut o, "routing_key", &d.routing_key);
        opt_str(&mut o, "queue", &d.queue);
        opt_u64(&mut o, "body_size", d.body_size);
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.u64("request_bytes", d.request_bytes);
        o.u64("response_bytes", d.response_bytes);
        o.bool("truncated", d.truncated);
        o.end_object();
    }

    fn eve(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("amqp");
        o.u64("tx_id", d.tx_id);
        o.u64("channel", u64::from(d.channel));
        if let Some(m) = d.method {
            let mut r = o.begin_object("request");
            r.str("method", m);
            r.str("sender", if d.from_server { "server" } else { "client" });
            opt_str(&mut r, "vhost", &d.vhost);
            opt_str(&mut r, "user", &d.user);
            opt_str(&mut r, "exchange", &d.exchange);
            opt_str(&mut r, "routing_key", &d.routing_key);
            opt_str(&mut r, "queue", &d.queue);
            opt_u64(&mut r, "body_size", d.body_size);
            opt_u64(&mut r, "reply_code", d.reply_code.map(u64::from));
            opt_str(&mut r, "reply_text", &d.reply_text);
            r.end_object();
        }
        if let Some(m) = d.response {
            let mut r = o.begin_object("response");
            r.str("method", m);
            opt_str(&mut r, "server_product", &d.server_product);
            opt_str(&mut r, "server_version", &d.server_version);
            opt_u64(&mut r, "message_count", d.message_count.map(u64::from));
            opt_u64(&mut r, "consumer_count", d.consumer_count.map(u64::from));
            r.end_object();
        }
        o.end_object();
    }

    /// ` basic.publish celeryev worker.heartbeat`, ` channel.close 404`
    fn gelf_short(&self, s: &mut StrBuilder<'_>) {
        s.text(" ")
            .text(self.method.or(self.response).unwrap_or("-"));
        if self.is_error() {
            if let Some(c) = self.reply_code {
                s.text(" ").u64(u64::from(c));
            }
        } else if let Some(x) = &self.exchange {
            s.text(" ").text(x);
            if let Some(k) = &self.routing_key {
                s.text(" ").text(k);
            }
        }
    }

    fn gelf(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        w.u64("_amqp_tx_id", d.tx_id);
        w.u64("_amqp_channel", u64::from(d.channel));
        w.str("_amqp_status", d.status());
        if let Some(m) = d.method {
            w.str("_amqp_method", m);
        }
        opt_str(w, "_amqp_exchange", &d.exchange);
        opt_str(w, "_amqp_routing_key", &d.routing_key);
        opt_str(w, "_amqp_queue", &d.queue);
        opt_u64(w, "_amqp_reply_code", d.reply_code.map(u64::from));
        opt_u64(w, "_amqp_latency_us", d.latency_ns.map(|n| n / 1_000));
    }

    fn nanocorp_id(&self) -> u64 {
        self.tx_id
    }

    fn nanocorp(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("amqp");
        o.str("status", d.status());
        if let Some(m) = d.method.or(d.response) {
            o.str("method", m);
        }
        opt_str(&mut o, "exchange", &d.exchange);
        opt_str(&mut o, "routing_key", &d.routing_key);
        opt_str(&mut o, "queue", &d.queue);
        opt_u64(&mut o, "reply_code", d.reply_code.map(u64::from));
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        o.end_object();
    }
}
