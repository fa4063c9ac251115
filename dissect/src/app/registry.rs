//! The protocol registry: what every application protocol tells the rest of
//! flowtap, and the one list of protocols ([`app_protocols!`], invoked once
//! in `app/mod.rs`).
//!
//! Everything that must know every protocol (the [`AppProto`], [`AppEvent`]
//! and [`Peek`] enums, [`AppConfig`], detection, parser construction, event
//! types and their sets, per-type counters and metrics, sampling, config
//! sections, `default-config`, export-rule fields, each schema's layout)
//! walks this list, so adding a protocol is its folder plus one line there.
//!
//! [`AppProto`]: super::AppProto
//! [`AppEvent`]: super::AppEvent
//! [`Peek`]: super::Peek
//! [`AppConfig`]: super::AppConfig

use super::encode::EventWriters;
use super::{AppParser, Direction, Probe, Transport};

/// One application protocol: implemented by a marker type in the
/// protocol's folder (`app/<proto>/mod.rs`).
pub trait Protocol: 'static {
    /// The protocol's name: its event type, `app_proto` value, config
    /// section (`[app.NAME]`), sampling key and export-rule prefix.
    const NAME: &'static str;
    /// One transaction, as emitted.
    type Event: Clone + std::fmt::Debug + PartialEq + Eq + Send + EventWriters + 'static;
    /// Its `[app.NAME]` config section (every key has a default; unknown
    /// keys are refused by name).
    type Config: Clone
        + std::fmt::Debug
        + Default
        + PartialEq
        + Eq
        + Send
        + serde::de::DeserializeOwned
        + 'static;
    /// The `[app.NAME]` section of `flowtap default-config`: every key with
    /// its default value and a comment. A test checks that it parses to
    /// `Config::default()`.
    const CONFIG_TOML: &'static str;

    /// A flow carries at most one transaction (a TLS handshake): once it has
    /// been judged, nothing later on the flow can change the verdict.
    const ONE_TRANSACTION_PER_FLOW: bool = false;
    /// Ports that hint at the protocol over TCP (its probe is tried first).
    const TCP_PORTS: &'static [u16] = &[];
    /// Ports on which a UDP datagram is offered to [`Protocol::probe_udp`].
    const UDP_PORTS: &'static [u16] = &[];
    /// The TCP probe is too weak to trust off the protocol's own ports (DNS:
    /// a two-byte length and a header): it is only tried on [`Protocol::TCP_PORTS`].
    const TCP_PROBE_NEEDS_PORT: bool = false;

    /// Does a TCP stream whose first bytes in `dir` are `data` speak this protocol?
    fn probe_tcp(_dir: Direction, _data: &[u8]) -> Probe {
        Probe::No
    }
    /// Is this UDP datagram (on one of [`Protocol::UDP_PORTS`]) a message of the protocol?
    fn probe_udp(_data: &[u8]) -> bool {
        false
    }
    /// A parser for one flow.
    fn new_parser(transport: Transport, cfg: &Self::Config) -> Box<dyn AppParser>;
    /// Checks a configuration; the error names the key (`max_pending: must be at least 1`).
    fn validate(_cfg: &Self::Config) -> Result<(), String> {
        Ok(())
    }
    /// A representative event with most fields set (the compliance test
    /// writes it in every schema; encoder tests and benches use it).
    fn example_event() -> Self::Event;
    /// When the transaction began (request, query, ClientHello), else when
    /// its answer came: the time the engine orders events by.
    fn event_start_ns(ev: &Self::Event) -> Option<u64>;
    /// The transaction's number within its flow, for protocols whose
    /// [`AppParser::peek`] shows several transactions under way (HTTP
    /// pipelining): lets a caller skip those it already judged.
    fn tx_id(_ev: &Self::Event) -> Option<u64> {
        None
    }
    /// The server answered the transaction with an error (counted per flow
    /// as `app_errors`): an SQL error, an error reply, an HTTP 5xx.
    fn is_error(_ev: &Self::Event) -> bool {
        false
    }
    /// The transaction as application metrics count it: what was asked
    /// (from a bounded vocabulary where the protocol has one), how it
    /// ended, the server's error code, the latency.
    fn transaction(ev: &Self::Event) -> Transaction<'_>;

    /// Fields export rules can match (`match.NAME.FIELD`).
    const EXPORT_FIELDS: &'static [ExportField] = &[];
    /// The values of `EXPORT_FIELDS[field]` in `ev`, each passed to `f`
    /// (none when the event lacks the field; several for lists such as DNS
    /// questions).
    fn export_values(_ev: &Self::Event, _field: usize, _f: &mut dyn FnMut(FieldValue<'_>)) {}
}

/// A transaction as the application metrics see it (see
/// [`Protocol::transaction`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction<'a> {
    /// What was asked: an SQL verb, a Redis command, an AMQP method, an
    /// HTTP method, a DNS query type.
    pub operation: &'a str,
    pub outcome: Outcome,
    /// The server's error code when it answered with an error (SQLSTATE,
    /// MySQL error number, Redis error prefix, AMQP reply code, HTTP status).
    pub error_code: Option<FieldValue<'a>>,
    /// Request to response, when both were seen.
    pub latency_ns: Option<u64>,
}

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered, not with an error.
    Ok,
    /// Answered with an error ([`Protocol::is_error`]).
    Error,
    /// No answer seen (timed out, flow ended, one-sided capture).
    Unanswered,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Error, Outcome::Unanswered];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Unanswered => "unanswered",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// From "answered" and "with an error".
    pub fn of(answered: bool, error: bool) -> Outcome {
        match (answered, error) {
            (_, true) => Outcome::Error,
            (true, false) => Outcome::Ok,
            (false, false) => Outcome::Unanswered,
        }
    }
}

/// A field of an event that export rules can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportField {
    pub name: &'static str,
    pub kind: MatchKind,
    /// Known from the transaction's first part (request head, query,
    /// ClientHello), so a rule on it can decide before the event is out.
    pub early: bool,
    /// One line for the docs and error messages.
    pub doc: &'static str,
}

/// How a rule's values are compared with an [`ExportField`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    /// Names: case-insensitive, `*` and `?` wildcards.
    Name,
    /// Exact, case-insensitive (methods, hashes).
    Word,
    /// A hex digest of this many digits, exact, case-insensitive.
    Hex(usize),
    /// Numbers and ranges (`400-599`) up to this maximum.
    Number(u32),
}

/// One value of an [`ExportField`] in an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Str(&'a str),
    Num(u32),
}

/// What the registry knows of one protocol, as data (for code that lists
/// protocols rather than dispatching on them).
#[derive(Clone, Copy, Debug)]
pub struct ProtocolInfo {
    pub name: &'static str,
    pub tcp_ports: &'static [u16],
    pub udp_ports: &'static [u16],
    pub tcp_probe_needs_port: bool,
    pub one_transaction_per_flow: bool,
    pub export_fields: &'static [ExportField],
    pub config_toml: &'static str,
}

impl ProtocolInfo {
    pub const fn of<P: Protocol>() -> ProtocolInfo {
        ProtocolInfo {
            name: P::NAME,
            tcp_ports: P::TCP_PORTS,
            udp_ports: P::UDP_PORTS,
            tcp_probe_needs_port: P::TCP_PROBE_NEEDS_PORT,
            one_transaction_per_flow: P::ONE_TRANSACTION_PER_FLOW,
            export_fields: P::EXPORT_FIELDS,
            config_toml: P::CONFIG_TOML,
        }
    }

    /// The export field called `name`, with its index.
    pub fn export_field(&self, name: &str) -> Option<(usize, &'static ExportField)> {
        self.export_fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name)
    }
}

/// Declares the registered protocols: `Variant => module::Marker` per line,
/// in detection order. Generates [`super::AppProto`], [`super::AppEvent`],
/// [`super::Peek`], [`super::AppConfig`] and the dispatch functions.
macro_rules! app_protocols {
    ($($variant:ident => $module:ident :: $marker:ident),+ $(,)?) => {
        /// The registered application protocols.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AppProto {
            $($variant),+
        }

        impl AppProto {
            /// Every protocol, in registry (detection) order.
            pub const ALL: &'static [AppProto] = &[$(AppProto::$variant),+];
            pub const COUNT: usize = AppProto::ALL.len();
            const INFO: &'static [$crate::app::registry::ProtocolInfo] =
                &[$($crate::app::registry::ProtocolInfo::of::<$module::$marker>()),+];

            pub fn as_str(self) -> &'static str {
                self.info().name
            }

            /// Position in [`AppProto::ALL`] (for per-protocol arrays).
            pub fn index(self) -> usize {
                self as usize
            }

            pub fn info(self) -> &'static $crate::app::registry::ProtocolInfo {
                &Self::INFO[self as usize]
            }

            /// The protocol called `name` (exactly, lower case).
            pub fn parse(name: &str) -> Option<AppProto> {
                AppProto::ALL.iter().copied().find(|p| p.as_str() == name)
            }

            /// `http, dns or tls`: for error messages.
            pub fn names_list() -> String {
                let names: Vec<&str> = AppProto::ALL.iter().map(|p| p.as_str()).collect();
                match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    _ => names.join(""),
                }
            }
        }

        /// What a parser emits. The engine wraps it with the flow id,
        /// community id, 5-tuple and direction.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum AppEvent {
            $($variant(Box<<$module::$marker as $crate::app::registry::Protocol>::Event>)),+
        }

        impl AppEvent {
            pub fn proto(&self) -> AppProto {
                match self {
                    $(AppEvent::$variant(_) => AppProto::$variant),+
                }
            }

            /// When the transaction began (see [`registry::Protocol::event_start_ns`]).
            pub fn start_ns(&self) -> Option<u64> {
                match self {
                    $(AppEvent::$variant(e) => <$module::$marker as $crate::app::registry::Protocol>::event_start_ns(e)),+
                }
            }

            /// The server answered with an error (see [`registry::Protocol::is_error`]).
            pub fn is_error(&self) -> bool {
                match self {
                    $(AppEvent::$variant(e) => <$module::$marker as $crate::app::registry::Protocol>::is_error(e)),+
                }
            }

            /// The transaction as application metrics count it (see [`registry::Protocol::transaction`]).
            pub fn transaction(&self) -> $crate::app::registry::Transaction<'_> {
                match self {
                    $(AppEvent::$variant(e) => <$module::$marker as $crate::app::registry::Protocol>::transaction(e)),+
                }
            }

            /// The protocol's example event (see [`registry::Protocol::example_event`]).
            pub fn example(proto: AppProto) -> AppEvent {
                match proto {
                    $(AppProto::$variant => AppEvent::$variant(Box::new(<$module::$marker as $crate::app::registry::Protocol>::example_event()))),+
                }
            }

            /// The event's per-schema writers.
            pub fn writers(&self) -> &dyn $crate::app::encode::EventWriters {
                match self {
                    $(AppEvent::$variant(e) => &**e),+
                }
            }
        }

        /// A transaction not emitted yet, as far as it is known (see [`AppParser::peek`]).
        #[derive(Clone, Copy, Debug)]
        pub enum Peek<'a> {
            $($variant(&'a <$module::$marker as $crate::app::registry::Protocol>::Event)),+
        }

        impl<'a> Peek<'a> {
            /// An emitted event seen the same way.
            pub fn of(ev: &'a AppEvent) -> Peek<'a> {
                match ev {
                    $(AppEvent::$variant(e) => Peek::$variant(e)),+
                }
            }

            pub fn proto(&self) -> AppProto {
                match self {
                    $(Peek::$variant(_) => AppProto::$variant),+
                }
            }

            /// The transaction's number in its flow (see [`registry::Protocol::tx_id`]).
            pub fn tx_id(&self) -> Option<u64> {
                match self {
                    $(Peek::$variant(e) => <$module::$marker as $crate::app::registry::Protocol>::tx_id(e)),+
                }
            }

            /// The values of the protocol's export field number `field`.
            pub fn export_values(&self, field: usize, f: &mut dyn FnMut($crate::app::registry::FieldValue<'_>)) {
                match self {
                    $(Peek::$variant(e) => <$module::$marker as $crate::app::registry::Protocol>::export_values(e, field, f)),+
                }
            }
        }

        /// Configuration of all parsers: `[app]` and one `[app.NAME]`
        /// section per protocol.
        #[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        #[allow(non_snake_case)]
        pub struct AppConfig {
            /// Run protocol detection and the parsers.
            pub enabled: bool,
            $(pub $module: <$module::$marker as $crate::app::registry::Protocol>::Config),+
        }

        impl Default for AppConfig {
            fn default() -> Self {
                AppConfig {
                    enabled: true,
                    $($module: Default::default()),+
                }
            }
        }

        impl AppConfig {
            /// Checks every section; the error names the key (`app.http.max_pending: ...`).
            pub fn validate(&self) -> Result<(), String> {
                $(
                    <$module::$marker as $crate::app::registry::Protocol>::validate(&self.$module)
                        .map_err(|e| format!("app.{}.{e}", stringify!($module)))?;
                )+
                Ok(())
            }
        }

        /// Content probe: given the first bytes of a direction, does `proto` speak here?
        pub fn probe(proto: AppProto, dir: Direction, data: &[u8]) -> Probe {
            match proto {
                $(AppProto::$variant => <$module::$marker as $crate::app::registry::Protocol>::probe_tcp(dir, data)),+
            }
        }

        fn probe_udp(proto: AppProto, data: &[u8]) -> bool {
            match proto {
                $(AppProto::$variant => <$module::$marker as $crate::app::registry::Protocol>::probe_udp(data)),+
            }
        }

        /// A parser for `proto` over `transport`.
        pub fn new_parser(proto: AppProto, transport: Transport, cfg: &AppConfig) -> Box<dyn AppParser> {
            match proto {
                $(AppProto::$variant => <$module::$marker as $crate::app::registry::Protocol>::new_parser(transport, &cfg.$module)),+
            }
        }
    };
}

pub(crate) use app_protocols;
