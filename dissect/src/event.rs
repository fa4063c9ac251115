//! Records the engine emits. Output encoders turn these into JSON; nothing in
//! here knows about any encoding.

use std::net::IpAddr;

/// Why a flow record was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Both sides sent FIN (or one FIN then the closed timeout ran out).
    Fin,
    /// A RST was seen.
    Rst,
    /// No packet for the idle timeout of the flow's class.
    IdleTimeout,
    /// Interim record of a long flow; the flow goes on.
    ActiveTimeout,
    /// The flow table was full and this flow made room.
    Evicted,
    /// Capture ended with the flow still open.
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::ActiveTimeout => "active_timeout",
            EndReason::Evicted => "evicted",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// The one direction a flow showed, when the mirror never delivered the
/// other (asymmetric routing, a half-configured SPAN, a lost direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OneSided {
    /// Only originator to responder.
    ToServer,
    /// Only responder to originator.
    ToClient,
}

impl OneSided {
    pub fn as_str(self) -> &'static str {
        match self {
            OneSided::ToServer => "toserver",
            OneSided::ToClient => "toclient",
        }
    }
}

/// Counters of one direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    pub packets: u64,
    /// Frame bytes as on the wire (original length, outer headers included).
    pub bytes: u64,
    /// OR of all TCP flag bytes seen in this direction.
    pub tcp_flags: u8,
}

/// Outer encapsulation a flow was carried in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelInfo {
    /// "gre", "erspan1", "erspan2", "erspan3", "vxlan", "geneve", "ipip", "teredo", ...
    pub kind: &'static str,
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
    /// VNI (VXLAN, GENEVE), ERSPAN session id, or GRE key.
    pub id: Option<u32>,
}

/// One flow record: a whole flow, or an interim slice of a long one. Its
/// texts borrow from the flow's state, so making one allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord<'a> {
    /// Stable across runs and worker counts: derived from the key and the first packet time.
    pub flow_id: u64,
    /// Community ID v1 ("1:<base64>").
    pub community_id: &'a str,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Originator (the side that sent the first packet, or the SYN).
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number of the L4 header.
    pub proto: u8,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    pub vlans: &'a [u16],
    pub tunnel: Option<TunnelInfo>,
    /// Originator to responder.
    pub orig: DirectionStats,
    /// Responder to originator.
    pub resp: DirectionStats,
    /// Zeek-style connection state (S0, S1, SF, REJ, RSTO, ..., OTH); empty for non-TCP.
    pub conn_state: &'static str,
    /// Zeek-style history string (e.g. "ShADadFf").
    pub history: &'a str,
    pub end_reason: EndReason,
    /// Set when only one direction was ever seen (so far, for an interim
    /// slice).
    pub one_sided: Option<OneSided>,
    /// 0 for a whole flow or the first slice; n for the n-th interim slice after it.
    pub slice: u32,
    /// Application protocol, filled by the app-layer detection.
    pub app_proto: Option<&'static str>,
    /// Application events the flow produced so far (Suricata's `tx_cnt`),
    /// and how many of them the server answered with an error.
    pub app_transactions: u32,
    pub app_errors: u32,
    /// Passive TCP measurements (TCP flows only).
    pub tcp: Option<TcpKpis>,
}

/// What one direction of a TCP connection did, as seen from the mirror.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpDirectionKpis {
    pub syn: u32,
    pub syn_ack: u32,
    pub fin: u32,
    pub rst: u32,
    /// Segments carrying only bytes already seen (or partly: counted once).
    pub retransmitted: u32,
    /// Segments that arrived ahead of a hole in the sequence space.
    pub out_of_order: u32,
    /// Segments advertising a zero receive window (RST excluded).
    pub zero_window: u32,
    /// Segments with 1 to 8 bytes of payload (keep-alives, interactive or chatty peers).
    pub tiny: u32,
    /// Bytes the sender sent that the mirror never saw (gaps), as Zeek's missed_bytes.
    pub missed_bytes: u64,
}

/// Passive TCP KPIs of a flow. Delays are as seen from the mirror point: a
/// mirror near the client sees a small client-side and a large server-side
/// delay, near the server the other way round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpKpis {
    /// Originator to responder.
    pub orig: TcpDirectionKpis,
    /// Responder to originator.
    pub resp: TcpDirectionKpis,
    /// SYN to SYN-ACK: the network and server between the mirror and the server.
    pub server_delay_us: Option<u64>,
    /// SYN-ACK to the client's ACK: the network between the mirror and the client.
    pub client_delay_us: Option<u64>,
    /// Application response time: end of a request (last client data before
    /// the server answers) to the start of the answer. Count, sum and max over
    /// the flow's request/response turns.
    pub app_response_count: u32,
    pub app_response_sum_us: u64,
    pub app_response_max_us: u64,
}

/// An application-layer event as the engine hands it to the output: the
/// parser's [`crate::app::AppEvent`] plus what the flow knows. Borrowed, so
/// that wrapping an event allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct AppEnvelope<'a> {
    /// The flow's id (the same as in its [`FlowRecord`]).
    pub flow_id: u64,
    /// Community ID v1 of the flow.
    pub community_id: &'a str,
    /// When the event completed (ns since the epoch).
    pub ts_ns: u64,
    /// The flow's originator (client) and responder (server), as in the flow record.
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Direction of the packet that completed the event.
    pub direction: crate::app::Direction,
    /// VLAN ids, outermost first.
    pub vlans: &'a [u16],
    pub event: &'a crate::app::AppEvent,
}
