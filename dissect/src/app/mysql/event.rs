//! The MySQL/MariaDB transaction record: one per command and its answer
//! (a login is the server greeting, the client's handshake response and
//! the authentication exchange up to OK or ERR). Command names follow
//! Zeek's `mysql.log` (`query`, `init_db`, `stmt_execute`, `login`).

/// What the client asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MysqlCommand {
    /// Greeting, handshake response (or SSL request) and authentication.
    Login,
    /// A command packet, by its byte (`COM_QUERY` is 3).
    Command(u8),
    /// Server packets with no command seen (the flow was picked up
    /// mid-way, or after a gap).
    #[default]
    None,
}

impl MysqlCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            MysqlCommand::Login => "login",
            MysqlCommand::Command(c) => super::wire::command_name(c).unwrap_or("unknown"),
            MysqlCommand::None => "none",
        }
    }
}

/// An ERR packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MysqlError {
    pub code: u16,
    /// Five characters; missing before the handshake and from old servers.
    pub sql_state: Option<String>,
    pub message: String,
}

/// One MySQL transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MysqlEvent {
    /// Number of the transaction in its flow, from 1.
    pub tx_id: u64,
    pub command: MysqlCommand,
    /// Session: the login's user and schema (changed by COM_INIT_DB), on
    /// every event of the flow.
    pub user: Option<String>,
    pub schema: Option<String>,

    /// Login: the server greeting.
    pub server_version: Option<String>,
    pub connection_id: Option<u32>,
    pub server_capabilities: Option<u32>,
    /// The plugin the greeting names, the one the client answered with,
    /// and the one an AuthSwitchRequest asked for.
    pub auth_plugin: Option<String>,
    pub client_auth_plugin: Option<String>,
    pub auth_switch_plugin: Option<String>,
    /// Login: the client's capabilities (its SSL request's, when it sent one).
    pub client_capabilities: Option<u32>,
    /// caching_sha2_password: `Some(true)` fast authentication (cached
    /// hash), `Some(false)` full authentication was asked for.
    pub fast_auth: Option<bool>,
    /// The client switched to TLS: the rest of the flow is not parsed.
    pub tls: bool,
    /// Client and server agreed on the compressed protocol: the rest of
    /// the flow is not parsed.
    pub compressed: bool,

    /// COM_QUERY / COM_STMT_PREPARE text, the statement a COM_STMT_EXECUTE
    /// runs (from its prepare), COM_INIT_DB's schema, COM_FIELD_LIST's
    /// table; cut at `MysqlConfig::max_statement_bytes`.
    pub statement: Option<String>,
    /// Prepared statement id (prepare's answer, execute, close, reset, fetch).
    pub statement_id: Option<u32>,
    /// Prepare: the statement's parameters.
    pub params: Option<u16>,

    /// OK: affected rows, last insert id, warnings, and its info text.
    pub affected_rows: Option<u64>,
    pub last_insert_id: Option<u64>,
    pub warnings: Option<u16>,
    pub info: Option<String>,
    /// ERR (the first of the exchange).
    pub error: Option<MysqlError>,
    /// Result sets: columns of the first, rows of all, and the bytes of
    /// the row packets (payload, heads included); rows are never buffered.
    pub columns: Option<u64>,
    pub rows: u64,
    pub result_bytes: u64,
    pub result_sets: u32,
    /// LOCAL INFILE: the server asked the client for a file (its name).
    pub local_infile: Option<String>,

    /// Request seen (ns since the epoch); answer complete; their difference.
    pub request_ts_ns: Option<u64>,
    pub response_ts_ns: Option<u64>,
    pub latency_ns: Option<u64>,
    /// Packet bytes (heads included) per direction.
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Emitted without its answer (flow end, gap, pending queue full).
    /// Commands the server never answers (quit, stmt_close,
    /// stmt_send_long_data) are not: their status is `none`.
    pub unanswered: bool,
    /// Bytes were lost while the transaction was open.
    pub gap: bool,
    /// A field (statement, message) was cut at a limit.
    pub truncated: bool,
}

impl MysqlEvent {
    /// `error` (ERR), `ok` (answered), `unanswered`, `none` (a command
    /// that has no answer: quit, stmt_close, stmt_send_long_data; a TLS switch).
    pub fn status(&self) -> &'static str {
        if self.error.is_some() {
            "error"
        } else if self.unanswered {
            "unanswered"
        } else if self.response_ts_ns.is_none() {
            "none"
        } else {
            "ok"
        }
    }

    /// Zeek's `success`: the answer was not an ERR (unset when there was no answer).
    pub fn success(&self) -> Option<bool> {
        if self.error.is_some() {
            Some(false)
        } else if self.response_ts_ns.is_some() {
            Some(true)
        } else {
            None
        }
    }
}

/// Commands that have no answer on the wire.
pub fn no_answer(cmd: u8) -> bool {
    use super::wire::{COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA};
    matches!(cmd, COM_QUIT | COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA)
}
