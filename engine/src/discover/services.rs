//! IANA service names of common ports (a subset of the IANA "Service Name
//! and Transport Protocol Port Number Registry"), used for rule
//! descriptions and to tell a server port from a client's ephemeral one.

/// The IANA service name of `port` for IP protocol `proto` (6 TCP, 17 UDP,
/// 132 SCTP), if it is one of the common ones.
pub fn service_name(proto: u8, port: u16) -> Option<&'static str> {
    let tcp = proto == 6 || proto == 132;
    let udp = proto == 17;
    let both = tcp || udp;
    Some(match port {
        20 if tcp => "ftp-data",
        21 if tcp => "ftp",
        22 if tcp => "ssh",
        23 if tcp => "telnet",
        25 if tcp => "smtp",
        49 if both => "tacacs",
        53 if both => "domain",
        67 if udp => "bootps",
        68 if udp => "bootpc",
        69 if udp => "tftp",
        80 if tcp => "http",
        88 if both => "kerberos",
        110 if tcp => "pop3",
        111 if both => "sunrpc",
        119 if tcp => "nntp",
        123 if udp => "ntp",
        135 if tcp => "epmap",
        137 if udp => "netbios-ns",
        138 if udp => "netbios-dgm",
        139 if tcp => "netbios-ssn",
        143 if tcp => "imap",
        161 if udp => "snmp",
        162 if udp => "snmptrap",
        179 if tcp => "bgp",
        389 if both => "ldap",
        443 if tcp => "https",
        443 if udp => "https",
        445 if tcp => "microsoft-ds",
        465 if tcp => "submissions",
        500 if udp => "isakmp",
        514 if udp => "syslog",
        514 if tcp => "shell",
        515 if tcp => "printer",
        520 if udp => "router",
        546 if udp => "dhcpv6-client",
        547 if udp => "dhcpv6-server",
        587 if tcp => "submission",
        601 if tcp => "syslog-conn",
        631 if tcp => "ipp",
        636 if tcp => "ldaps",
        853 if both => "domain-s",
        873 if tcp => "rsync",
        993 if tcp => "imaps",
        995 if tcp => "pop3s",
        1080 if tcp => "socks",
        1194 if both => "openvpn",
        1433 if tcp => "ms-sql-s",
        1521 if tcp => "ncube-lm",
        1812 if udp => "radius",
        1813 if udp => "radius-acct",
        1883 if tcp => "mqtt",
        2049 if both => "nfs",
        2379 if tcp => "etcd-client",
        3268 if tcp => "msft-gc",
        3306 if tcp => "mysql",
        3389 if tcp => "ms-wbt-server",
        3478 if udp => "stun",
        4500 if udp => "ipsec-nat-t",
        4789 if udp => "vxlan",
        5060 if both => "sip",
        5061 if tcp => "sips",
        5353 if udp => "mdns",
        5432 if tcp => "postgresql",
        5671 if tcp => "amqps",
        5672 if tcp => "amqp",
        5900 if tcp => "rfb",
        5985 if tcp => "wsman",
        5986 if tcp => "wsmans",
        6081 if udp => "geneve",
        6379 if tcp => "redis",
        6443 if tcp => "sun-sr-https",
        6514 if tcp => "syslog-tls",
        8080 if tcp => "http-alt",
        8443 if tcp => "pcsync-https",
        9092 if tcp => "XmlIpcRegSvc",
        9100 if tcp => "jetdirect",
        9200 if tcp => "wap-wsp",
        11211 if both => "memcache",
        12201 if both => "gelf",
        27017 if tcp => "mongodb",
        _ => return None,
    })
}

/// How likely `port` is a server's port: a named service beats a system
/// port (< 1024), which beats a registered port below the Linux ephemeral
/// range (32768), which beats an ephemeral one.
pub fn server_rank(proto: u8, port: u16) -> u8 {
    if service_name(proto, port).is_some() {
        3
    } else if port < 1024 {
        2
    } else if port < 32768 {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ranks() {
        assert_eq!(service_name(6, 443), Some("https"));
        assert_eq!(service_name(17, 53), Some("domain"));
        assert_eq!(service_name(6, 53), Some("domain"));
        assert_eq!(service_name(17, 80), None);
        assert_eq!(service_name(6, 40000), None);
        assert!(server_rank(6, 3306) > server_rank(6, 1023));
        assert!(server_rank(6, 1023) > server_rank(6, 8000));
        assert!(server_rank(6, 8000) > server_rank(6, 50000));
    }
}
