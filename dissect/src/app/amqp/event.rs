//! The AMQP 0-9-1 transaction record: one per method exchange (a
//! synchronous method and its `-ok`: connection.start/start-ok,
//! tune/tune-ok, open/open-ok, channel.open, queue.declare, ...), or per
//! asynchronous method (basic.publish, basic.deliver with their content,
//! basic.ack/nack/reject). Heartbeats are counted, not emitted.

/// One AMQP transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AmqpEvent {
    /// Number of the event in its flow, from 1.
    pub tx_id: u64,
    pub channel: u16,
    /// The method that opened the exchange (`queue.declare`), or the
    /// asynchronous method (`basic.deliver`). None for an answer whose
    /// request was not seen.
    pub method: Option<&'static str>,
    /// The answer (`queue.declare-ok`).
    pub response: Option<&'static str>,
    /// Who sent `method`: the server (connection.start, basic.deliver,
    /// a close it initiated) or the client.
    pub from_server: bool,
    /// The client's protocol header (`0-9-1`), on connection.start.
    pub protocol: Option<String>,
    /// connection.start: server-properties `product`, `version`,
    /// `platform`; connection.start-ok: the mechanism and the user
    /// (PLAIN/AMQPLAIN; the password never).
    pub server_product: Option<String>,
    pub server_version: Option<String>,
    pub server_platform: Option<String>,
    pub mechanism: Option<String>,
    pub user: Option<String>,
    /// connection.open.
    pub vhost: Option<String>,
    /// connection.tune-ok (what the client settled on, else tune's offer).
    pub channel_max: Option<u16>,
    pub frame_max: Option<u32>,
    pub heartbeat: Option<u16>,
    pub exchange: Option<String>,
    pub exchange_type: Option<String>,
    pub routing_key: Option<String>,
    pub queue: Option<String>,
    pub consumer_tag: Option<String>,
    pub delivery_tag: Option<u64>,
    pub multiple: bool,
    pub requeue: bool,
    pub redelivered: bool,
    /// queue.declare-ok / purge-ok / delete-ok / basic.get-ok.
    pub message_count: Option<u32>,
    pub consumer_count: Option<u32>,
    /// basic.qos.
    pub prefetch_count: Option<u16>,
    /// Content (publish, deliver, get-ok, return): body size from the
    /// header, body bytes seen, content type, delivery mode (2 persistent).
    pub body_size: Option<u64>,
    pub body_bytes: u64,
    pub content_type: Option<String>,
    pub delivery_mode: Option<u8>,
    /// connection.close / channel.close / basic.return: reply code and
    /// text; an error when the code is not 200 (`reply-success`).
    pub reply_code: Option<u16>,
    pub reply_text: Option<String>,
    /// The method the close names as the cause (`queue.declare`).
    pub failed_method: Option<&'static str>,
    /// Heartbeat frames since the previous event of the flow.
    pub heartbeats: u64,

    pub request_ts_ns: Option<u64>,
    pub response_ts_ns: Option<u64>,
    pub latency_ns: Option<u64>,
    /// Frame bytes of the method (with its content) and of its answer.
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// A synchronous method emitted without its answer (flow end, gap,
    /// queue full); content cut short.
    pub unanswered: bool,
    pub gap: bool,
    /// A name or text was cut at a limit, or a frame was too long to read.
    pub truncated: bool,
}

impl AmqpEvent {
    /// A close or return with a code other than 200.
    pub fn is_error(&self) -> bool {
        self.reply_code.is_some_and(|c| c != 200)
    }

    /// `error`, `unanswered`, `ok`.
    pub fn status(&self) -> &'static str {
        if self.is_error() {
            "error"
        } else if self.unanswered {
            "unanswered"
        } else {
            "ok"
        }
    }
}
