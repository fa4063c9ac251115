//! Address blocks (`10.0.0.0/8`, `2001:db8::/32`, a bare address) and
//! RFC 3339 times, for discovery's scope, grouping and output.

use std::fmt;
use std::net::IpAddr;

/// An address block. A bare address is a /32 (IPv4) or /128 (IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The network address (host bits cleared).
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n` or a bare address.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (
                a,
                Some(
                    l.parse::<u8>()
                        .map_err(|_| format!("prefix length {l:?} is not a number"))?,
                ),
            ),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IP address"))?;
        let max = max_len(&addr);
        let len = len.unwrap_or(max);
        if len > max {
            return Err(format!("prefix length {len} is longer than {max}"));
        }
        Ok(Cidr {
            addr: network(addr, len),
            len,
        })
    }

    /// The block of `len` bits that holds `ip`.
    pub fn of(ip: IpAddr, len: u8) -> Cidr {
        let len = len.min(max_len(&ip));
        Cidr {
            addr: network(ip, len),
            len,
        }
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                network(*ip, self.len) == self.addr
            }
            _ => false,
        }
    }

    /// One address, not a block.
    pub fn is_host(&self) -> bool {
        self.len == max_len(&self.addr)
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

fn max_len(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn network(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// Parses an RFC 3339 time as flowtap's schemas write it
/// (`2026-07-06T12:00:00.147655Z`, `...+0000`, `...+00:00`) into ns since the epoch.
pub fn parse_time_ns(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if digits < 9 {
                frac_ns = frac_ns * 10 + i64::from(c - b'0');
                digits += 1;
            }
            i += 1;
        }
        for _ in digits..9 {
            frac_ns *= 10;
        }
    }
    let offset_s = match b.get(i) {
        None | Some(b'Z') | Some(b'z') => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = s.get(i + 1..)?.replace(':', "");
            if rest.len() != 4 || !rest.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let oh: i64 = rest[..2].parse().ok()?;
            let om: i64 = rest[2..].parse().ok()?;
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns as u64)
}

/// ns since the epoch as `2026-07-06T12:00:00.147655Z` (microseconds).
pub fn format_time(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let micros = (ns % 1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.3.77/24").unwrap();
        assert_eq!(c.to_string(), "10.1.3.0/24");
        assert!(c.contains(&"10.1.3.200".parse().unwrap()));
        assert!(!c.contains(&"10.1.4.1".parse().unwrap()));
        assert!(!c.contains(&"::1".parse().unwrap()));
        assert_eq!(
            Cidr::parse("10.48.52.240").unwrap().to_string(),
            "10.48.52.240"
        );
        assert_eq!(
            Cidr::parse("2001:db8::1/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().len, 0);
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(&"8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn times_round_trip() {
        let ns = parse_time_ns("2026-07-06T12:00:00.147655Z").unwrap();
        assert_eq!(ns, 1_783_339_200_147_655_000);
        assert_eq!(format_time(ns), "2026-07-06T12:00:00.147655Z");
        assert_eq!(parse_time_ns("2026-07-06T12:00:00.147655+0000"), Some(ns));
        assert_eq!(parse_time_ns("2026-07-06T14:00:00.147655+02:00"), Some(ns));
        assert_eq!(
            parse_time_ns("2014-07-18T12:49:30Z"),
            Some(1_405_687_770_000_000_000)
        );
        assert_eq!(parse_time_ns("yesterday"), None);
        assert_eq!(parse_time_ns("2026-13-06T12:00:00Z"), None);
    }
}
