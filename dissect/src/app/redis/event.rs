//! The Redis transaction record: one per command and its reply (matched
//! in order, so pipelined commands each get theirs), or one per message
//! the server pushes on its own (pub/sub messages, RESP3 `>` pushes,
//! client-side caching invalidations).

use super::wire::kind;

/// What the event is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RedisKind {
    /// A client command and its reply.
    #[default]
    Command,
    /// A message the server sent without a command asking for it.
    Push,
    /// A reply with no command seen (the flow was picked up mid-way, or
    /// after a gap).
    Orphan,
}

impl RedisKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RedisKind::Command => "command",
            RedisKind::Push => "push",
            RedisKind::Orphan => "none",
        }
    }
}

/// A reply's type by the RESP name of its first byte.
pub fn reply_type_name(t: u8, len: i64) -> &'static str {
    if len < 0 && matches!(t, kind::BULK | kind::ARRAY) {
        // RESP2's null bulk string and null array.
        return "null";
    }
    match t {
        kind::SIMPLE => "simple_string",
        kind::ERROR => "error",
        kind::INTEGER => "integer",
        kind::BULK => "bulk_string",
        kind::ARRAY => "array",
        kind::NULL => "null",
        kind::DOUBLE => "double",
        kind::BOOLEAN => "boolean",
        kind::BIG_NUMBER => "big_number",
        kind::BLOB_ERROR => "blob_error",
        kind::VERBATIM => "verbatim_string",
        kind::MAP => "map",
        kind::SET => "set",
        kind::PUSH => "push",
        _ => "unknown",
    }
}

/// One Redis transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisEvent {
    /// Number of the event in its flow, from 1.
    pub tx_id: u64,
    pub kind: RedisKind,
    /// Command name, upper case (`SET`).
    pub command: Option<String>,
    /// First argument (the key of most commands; the channel of
    /// PUBLISH/SUBSCRIBE), cut at `max_argument_bytes`. Never set for
    /// AUTH and HELLO.
    pub key: Option<String>,
    /// Further arguments, only with `log_values` and never for commands
    /// that carry secrets (AUTH, HELLO, MIGRATE, ACL, CONFIG), each cut at
    /// `max_argument_bytes`, at most `max_arguments`.
    pub args: Vec<String>,
    /// Arguments the command had (not counting its name).
    pub arg_count: u64,
    /// User name of AUTH (two-argument form) or HELLO's AUTH option: the
    /// password never.
    pub user: Option<String>,
    /// The command was sent between MULTI and EXEC/DISCARD.
    pub in_transaction: bool,
    /// Push: its kind (`message`, `pmessage`, `smessage`, `invalidate`,
    /// `subscribe` when not asked for).
    pub push_kind: Option<String>,
    /// Push: the channel (and the pattern that matched, for `pmessage`).
    pub channel: Option<String>,
    pub pattern: Option<String>,

    /// The reply's type byte and its length or element count (-1 null).
    pub reply_kind: Option<u8>,
    pub reply_len: i64,
    /// A simple string, integer, double, boolean or big number reply; a
    /// bulk reply only with `log_values`. Cut at `max_argument_bytes`.
    pub reply: Option<String>,
    /// Error reply (`-ERR ...`, `-WRONGTYPE ...`, RESP3 blob error), cut at
    /// `max_error_bytes`.
    pub error: Option<String>,
    /// (P|S)SUBSCRIBE/UNSUBSCRIBE: confirmations received (one per
    /// channel) and the subscription count the last one reported.
    pub confirmations: u32,
    pub subscriptions: Option<u64>,
    /// RESP3 attributes before the reply.
    pub attributes: u32,

    /// Command seen (ns since the epoch); reply complete; their difference.
    pub request_ts_ns: Option<u64>,
    pub response_ts_ns: Option<u64>,
    pub latency_ns: Option<u64>,
    /// Bytes of the command and of its reply (all confirmations of a
    /// SUBSCRIBE; the push message).
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Emitted without its reply (flow end, gap, pending queue full).
    pub unanswered: bool,
    /// No reply expected: `CLIENT REPLY OFF`/`SKIP` was in force.
    pub no_reply: bool,
    /// Bytes were lost while the transaction was open, or since the last
    /// gap on the client side (the reply may belong to a lost command).
    pub gap: bool,
    /// An argument, reply or error was cut at a limit.
    pub truncated: bool,
}

impl RedisEvent {
    /// `error`, `unanswered`, `ok`.
    pub fn status(&self) -> &'static str {
        if self.error.is_some() {
            "error"
        } else if self.unanswered {
            "unanswered"
        } else {
            "ok"
        }
    }

    /// The reply's type name (`bulk_string`, `error`, ...).
    pub fn reply_type(&self) -> Option<&'static str> {
        self.reply_kind.map(|k| reply_type_name(k, self.reply_len))
    }

    /// Length of a bulk reply.
    pub fn reply_length(&self) -> Option<u64> {
        match self.reply_kind? {
            kind::BULK | kind::VERBATIM | kind::BLOB_ERROR if self.reply_len >= 0 => {
                Some(self.reply_len as u64)
            }
            _ => None,
        }
    }

    /// Elements of an aggregate reply (pairs of a map).
    pub fn reply_elements(&self) -> Option<u64> {
        match self.reply_kind? {
            kind::ARRAY | kind::MAP | kind::SET | kind::PUSH if self.reply_len >= 0 => {
                Some(self.reply_len as u64)
            }
            _ => None,
        }
    }

    /// The error's code: its first word (`ERR`, `WRONGTYPE`, `NOAUTH`).
    pub fn error_code(&self) -> Option<&str> {
        let e = self.error.as_deref()?;
        e.split(' ').next().filter(|w| !w.is_empty())
    }
}
