//! The DNS transaction record: one per query/response pair (or a lone query
//! or response). Names follow Suricata's eve `dns` object (`rrname`,
//! `rrtype`, `rcode`, `answers`, `authorities`) and ECS (`dns.question.name`).

use std::net::{Ipv4Addr, Ipv6Addr};

/// One question.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsQuestion {
    /// Name as on the wire, labels joined with dots (eve: `rrname`); bytes
    /// outside printable ASCII are written `\xHH`. The root is "".
    pub name: String,
    /// eve: `rrtype` (see [`rrtype_name`]).
    pub rtype: u16,
    pub rclass: u16,
}

/// Decoded record data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsRdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// CNAME, NS, PTR, DNAME target.
    Name(String),
    Mx {
        preference: u16,
        exchange: String,
    },
    /// The character-strings of a TXT record (lossy UTF-8).
    Txt(Vec<String>),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    /// Any other type, or data that did not decode: only its length.
    Other {
        len: u16,
    },
}

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub rtype: u16,
    pub rclass: u16,
    pub ttl: u32,
    pub data: DnsRdata,
}

/// One DNS transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsEvent {
    /// Message id (eve: `id`).
    pub id: u16,
    /// Opcode (eve: `opcode`).
    pub opcode: u8,
    /// A query was seen.
    pub has_query: bool,
    /// A response was seen.
    pub has_response: bool,
    /// Questions, from the query (or the response when there was no query).
    pub queries: Vec<DnsQuestion>,
    /// Raw header flags of the query / the response (eve: `flags`, hex).
    pub query_flags: Option<u16>,
    pub response_flags: Option<u16>,
    /// Header bits of the response (of the query when there is none).
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub ad: bool,
    pub cd: bool,
    /// Response code (eve: `rcode`, see [`rcode_name`]); `None` without response.
    pub rcode: Option<u16>,
    /// Answer section (eve: `answers`).
    pub answers: Vec<DnsRecord>,
    /// Authority section (eve: `authorities`).
    pub authorities: Vec<DnsRecord>,
    /// Query seen (ns since the epoch).
    pub query_ts_ns: Option<u64>,
    /// Response seen.
    pub response_ts_ns: Option<u64>,
    /// Response minus query time.
    pub latency_ns: Option<u64>,
    /// The same query (id and question) was seen again before the answer.
    pub retransmits: u16,
    /// Record lists were cut at `DnsConfig::max_records`.
    pub truncated: bool,
    /// The response did not fully parse; the records before the fault are kept.
    pub malformed: bool,
    /// Emitted without a response because it waited longer than the timeout
    /// (false when emitted at flow end).
    pub timed_out: bool,
}

/// Mnemonic of a record type, as Suricata prints it.
pub fn rrtype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        44 => "SSHFP",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return None,
    })
}

/// Mnemonic of a response code, as Suricata prints it.
pub fn rcode_name(rcode: u16) -> Option<&'static str> {
    Some(match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return None,
    })
}
