//! The PostgreSQL transaction record: one per request/response exchange of
//! the v3 protocol (a startup packet and the server's authentication
//! request, a password or SASL message and its answer, a simple query up to
//! ReadyForQuery, one Execute of the extended protocol up to its
//! CommandComplete, a cancel request, a Terminate). Names follow Suricata's
//! eve `pgsql` object where it has one.

/// What the client asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PgsqlRequest {
    /// SSLRequest: the server answers with one byte, `S` (TLS follows) or `N`.
    SslRequest,
    /// GSSENCRequest: `G` (GSSAPI encryption follows) or `N`.
    GssEncRequest,
    /// StartupMessage: protocol version, user, database, parameters.
    Startup,
    /// PasswordMessage (cleartext or MD5): never logged, only its presence.
    Password,
    /// SASLInitialResponse: the mechanism (its data is never logged).
    SaslInitial,
    /// SASLResponse (data never logged).
    SaslResponse,
    /// GSSAPI/SSPI token (data never logged).
    GssResponse,
    /// Simple query (`Q`): the statement text, up to ReadyForQuery.
    Query,
    /// One Execute of the extended protocol: the statement text from its
    /// Parse (looked up through the Bind's portal), up to its completion.
    Execute,
    /// A Parse whose batch (up to Sync) had no Execute and failed: the error
    /// has no execution to go with.
    Prepare,
    /// FunctionCall (`F`).
    FunctionCall,
    /// CancelRequest: process id and secret key; no answer on the wire.
    Cancel,
    /// Terminate (`X`): no answer.
    Terminate,
    /// Server messages with no request seen (the flow was picked up mid-way,
    /// or after a gap).
    #[default]
    None,
}

impl PgsqlRequest {
    pub fn as_str(self) -> &'static str {
        match self {
            PgsqlRequest::SslRequest => "ssl_request",
            PgsqlRequest::GssEncRequest => "gssenc_request",
            PgsqlRequest::Startup => "startup",
            PgsqlRequest::Password => "password",
            PgsqlRequest::SaslInitial => "sasl_initial_response",
            PgsqlRequest::SaslResponse => "sasl_response",
            PgsqlRequest::GssResponse => "gss_response",
            PgsqlRequest::Query => "simple_query",
            PgsqlRequest::Execute => "execute",
            PgsqlRequest::Prepare => "prepare",
            PgsqlRequest::FunctionCall => "function_call",
            PgsqlRequest::Cancel => "cancel_request",
            PgsqlRequest::Terminate => "terminate",
            PgsqlRequest::None => "none",
        }
    }
}

/// An authentication request of the server (`R` message, by its code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Ok,
    KerberosV5,
    Cleartext,
    Md5,
    Gss,
    GssContinue,
    Sspi,
    Sasl,
    SaslContinue,
    SaslFinal,
    Other(u32),
}

impl AuthMethod {
    pub fn from_code(c: u32) -> AuthMethod {
        match c {
            0 => AuthMethod::Ok,
            2 => AuthMethod::KerberosV5,
            3 => AuthMethod::Cleartext,
            5 => AuthMethod::Md5,
            7 => AuthMethod::Gss,
            8 => AuthMethod::GssContinue,
            9 => AuthMethod::Sspi,
            10 => AuthMethod::Sasl,
            11 => AuthMethod::SaslContinue,
            12 => AuthMethod::SaslFinal,
            o => AuthMethod::Other(o),
        }
    }

    /// Suricata's `message` value for the request (`authentication_sasl`).
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Ok => "authentication_ok",
            AuthMethod::KerberosV5 => "authentication_kerberos_v5",
            AuthMethod::Cleartext => "authentication_cleartext_password",
            AuthMethod::Md5 => "authentication_md5_password",
            AuthMethod::Gss => "authentication_gss",
            AuthMethod::GssContinue => "authentication_gss_continue",
            AuthMethod::Sspi => "authentication_sspi",
            AuthMethod::Sasl => "authentication_sasl",
            AuthMethod::SaslContinue => "authentication_sasl_continue",
            AuthMethod::SaslFinal => "authentication_sasl_final",
            AuthMethod::Other(_) => "authentication_unknown",
        }
    }

    /// The server waits for the client's answer: the exchange is over.
    pub fn is_challenge(self) -> bool {
        !matches!(self, AuthMethod::Ok | AuthMethod::SaslFinal)
    }
}

/// ErrorResponse (or the first NoticeResponse when there is no error): the
/// fields as `(type byte, value)`, in wire order, bounded in number and length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgsqlError {
    pub fields: Vec<(u8, String)>,
}

impl PgsqlError {
    pub fn get(&self, t: u8) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.as_str())
    }
    /// Severity (`V`, not localised; `S` before 9.6).
    pub fn severity(&self) -> Option<&str> {
        self.get(b'V').or_else(|| self.get(b'S'))
    }
    /// SQLSTATE (`C`).
    pub fn code(&self) -> Option<&str> {
        self.get(b'C')
    }
    pub fn message(&self) -> Option<&str> {
        self.get(b'M')
    }
}

/// Suricata's name of an error/notice field.
pub fn error_field_name(t: u8) -> Option<&'static str> {
    Some(match t {
        b'S' => "severity_localizable",
        b'V' => "severity_non_localizable",
        b'C' => "code",
        b'M' => "message",
        b'D' => "detail",
        b'H' => "hint",
        b'P' => "position",
        b'p' => "internal_position",
        b'q' => "internal_query",
        b'W' => "where",
        b's' => "schema_name",
        b't' => "table_name",
        b'c' => "column_name",
        b'd' => "data_type_name",
        b'n' => "constraint_name",
        b'F' => "file",
        b'L' => "line",
        b'R' => "routine",
        _ => return None,
    })
}

/// One PostgreSQL transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgsqlEvent {
    /// Number of the transaction in its flow, from 1 (eve: `tx_id`).
    pub tx_id: u64,
    pub request: PgsqlRequest,
    /// Session: from the flow's StartupMessage, on every event of the flow.
    pub user: Option<String>,
    pub database: Option<String>,
    pub application_name: Option<String>,
    /// Startup: protocol version (major, minor).
    pub protocol_version: Option<(u16, u16)>,
    /// Startup: every parameter but `user`, in wire order (eve:
    /// `optional_parameters`).
    pub startup_parameters: Vec<(String, String)>,
    /// SASLInitialResponse: the mechanism (`SCRAM-SHA-256`).
    pub sasl_mechanism: Option<String>,
    /// Query text (simple query) or the executed statement (extended),
    /// cut at `PgsqlConfig::max_statement_bytes`.
    pub statement: Option<String>,
    /// Extended protocol: the prepared statement's and the portal's names
    /// (when not the unnamed ones).
    pub statement_name: Option<String>,
    pub portal: Option<String>,
    /// Process id of a cancel request, or of the server's BackendKeyData.
    /// The secret key that goes with it is never kept: it authorises
    /// cancelling the session's queries.
    pub process_id: Option<u32>,

    /// SSLRequest / GSSENCRequest answer: `Some(true)` when the server
    /// accepted: everything after is encrypted and no longer parsed.
    pub encryption_accepted: Option<bool>,
    /// First authentication request of the exchange (the method the server
    /// asked for), and whether AuthenticationOk came.
    pub auth_method: Option<AuthMethod>,
    pub auth_ok: bool,
    /// ParameterStatus messages of the exchange (name, value), bounded.
    pub parameter_status: Vec<(String, String)>,
    /// RowDescription: number of columns.
    pub field_count: Option<u16>,
    /// DataRow messages, and the bytes of their column values (what
    /// Suricata's `data_size` counts: not the lengths or column counts).
    pub data_rows: u64,
    pub data_size: u64,
    /// Last CommandComplete tag (`SELECT 3`, `INSERT 0 1`) and how many
    /// came (several statements in one simple query).
    pub command_tag: Option<String>,
    pub commands: u32,
    /// Rows the last command reports (the tag's last number, for the
    /// commands that have one).
    pub rows: Option<u64>,
    /// ErrorResponse, the first of the exchange.
    pub error: Option<PgsqlError>,
    /// NoticeResponse messages.
    pub notices: u32,
    /// COPY FROM STDIN / TO STDOUT: CopyData bytes from the client / server.
    pub copy_in_bytes: Option<u64>,
    pub copy_out_bytes: Option<u64>,
    /// EmptyQueryResponse.
    pub empty_query: bool,
    /// PortalSuspended: the Execute's row limit was reached.
    pub suspended: bool,
    /// ReadyForQuery status after the exchange: `I` idle, `T` in a
    /// transaction block, `E` in a failed block.
    pub transaction_status: Option<u8>,

    /// Request seen (ns since the epoch); exchange complete; their difference.
    pub request_ts_ns: Option<u64>,
    pub response_ts_ns: Option<u64>,
    pub latency_ns: Option<u64>,
    /// Message bytes of the exchange per direction (extended protocol: the
    /// Parse/Bind/Describe before an Execute count towards it).
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Emitted without its answer (flow end, gap, pending queue full, or an
    /// Execute the server skipped after an earlier error of its batch).
    pub unanswered: bool,
    /// Bytes were lost while the transaction was open.
    pub gap: bool,
    /// A field (statement, parameter, error field) was cut at a limit.
    pub truncated: bool,
}

impl PgsqlEvent {
    /// `error` (ErrorResponse), `ok` (answered), `unanswered`.
    pub fn status(&self) -> &'static str {
        if self.error.is_some() {
            "error"
        } else if self.unanswered {
            "unanswered"
        } else {
            "ok"
        }
    }

    /// The encrypted session that follows an accepted SSLRequest.
    pub fn tls(&self) -> bool {
        self.request == PgsqlRequest::SslRequest && self.encryption_accepted == Some(true)
    }
}
