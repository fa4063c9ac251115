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
    /// The character-strings of a TXT or SPF record (lossy UTF-8), each
    /// kept apart: `["v=spf1 a", " -all"]`, never joined.
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
    /// CAA (RFC 8659).
    Caa {
        flags: u8,
        tag: String,
        value: String,
    },
    /// NAPTR (RFC 3403).
    Naptr {
        order: u16,
        preference: u16,
        flags: String,
        services: String,
        regexp: String,
        replacement: String,
    },
    /// SSHFP (RFC 4255).
    Sshfp {
        algorithm: u8,
        fp_type: u8,
        fingerprint: Vec<u8>,
    },
    /// TLSA (RFC 6698).
    Tlsa {
        usage: u8,
        selector: u8,
        matching_type: u8,
        data: Vec<u8>,
    },
    /// SVCB and HTTPS (RFC 9460).
    Svcb {
        priority: u16,
        target: String,
        params: Vec<SvcParam>,
    },
    /// DS and CDS (RFC 4034, 7344).
    Ds {
        key_tag: u16,
        algorithm: u8,
        digest_type: u8,
        digest: Vec<u8>,
    },
    /// DNSKEY and CDNSKEY (RFC 4034). `key` may be cut (the record's
    /// `rdata_truncated`); `key_len` is the length on the wire.
    Dnskey {
        flags: u16,
        protocol: u8,
        algorithm: u8,
        key: Vec<u8>,
        key_len: u16,
    },
    /// RRSIG (RFC 4034); the signature itself is not kept, only its length.
    Rrsig {
        type_covered: u16,
        algorithm: u8,
        labels: u8,
        original_ttl: u32,
        /// Seconds since the epoch (mod 2^32, RFC 4034 section 3.1.5).
        expiration: u32,
        inception: u32,
        key_tag: u16,
        signer: String,
        signature_len: u16,
    },
    /// NSEC (RFC 4034): the next owner name and the types in the bitmap.
    Nsec {
        next: String,
        types: Vec<u16>,
    },
    /// A known type whose data did not decode (short, bad name, ...).
    Malformed {
        len: u16,
    },
    /// Any other type: only its length.
    Other {
        len: u16,
    },
}

/// One SvcParam of an SVCB/HTTPS record (RFC 9460 section 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SvcParam {
    /// Key 0: keys the client must understand.
    Mandatory(Vec<u16>),
    /// Key 1: ALPN ids (lossy UTF-8).
    Alpn(Vec<String>),
    /// Key 2.
    NoDefaultAlpn,
    /// Key 3.
    Port(u16),
    /// Key 4.
    Ipv4Hint(Vec<Ipv4Addr>),
    /// Key 5: the ECHConfigList (may be cut: the record's `rdata_truncated`).
    Ech(Vec<u8>),
    /// Key 6.
    Ipv6Hint(Vec<Ipv6Addr>),
    /// Any other key, or a known key whose value did not decode: raw value.
    Other { key: u16, value: Vec<u8> },
}

/// EDNS(0) from an OPT pseudo-record (RFC 6891). The OPT record is not
/// listed among the records: it is this.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size (the OPT CLASS).
    pub udp_size: u16,
    /// Upper 8 bits of the 12-bit extended rcode (TTL byte 0).
    pub ext_rcode: u8,
    /// EDNS version (TTL byte 1).
    pub version: u8,
    /// DNSSEC OK bit.
    pub do_bit: bool,
    /// EDNS Client Subnet (option 8, RFC 7871).
    pub client_subnet: Option<ClientSubnet>,
    /// DNS cookie (option 10, RFC 7873): client (8 bytes) and server (8-32).
    pub cookie: Option<(Vec<u8>, Vec<u8>)>,
    /// Codes of the other options, in order (at most 16 kept).
    pub other_options: Vec<u16>,
    /// An option ran past the record's data, or the record was repeated.
    pub malformed: bool,
}

/// EDNS Client Subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSubnet {
    /// Address family (1 = IPv4, 2 = IPv6).
    pub family: u16,
    pub source_prefix: u8,
    pub scope_prefix: u8,
    /// The address, zero-padded; `None` for other families or bad lengths.
    pub address: Option<std::net::IpAddr>,
}

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub rtype: u16,
    pub rclass: u16,
    pub ttl: u32,
    pub data: DnsRdata,
    /// Record data was cut at a limit (TXT strings, key/digest/ECH bytes,
    /// type bitmap); what is kept is a prefix.
    pub rdata_truncated: bool,
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
    /// EDNS of the query / of the response (their OPT records).
    pub query_edns: Option<Edns>,
    pub response_edns: Option<Edns>,
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
