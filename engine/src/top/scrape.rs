//! Reads a running flowtap's `/metrics` (Prometheus text format 0.0.4, as
//! `output::metrics` writes it) into samples, and turns two scrapes into
//! what `flowtap top` shows: rates over the interval between them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reading {addr}/metrics: {source}")]
    Read {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}/metrics answered `{status}`")]
    Status { addr: SocketAddr, status: String },
}

/// `GET /metrics` from `addr`: the body.
pub fn fetch(addr: SocketAddr, timeout: Duration) -> Result<String, ScrapeError> {
    let mut c = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| ScrapeError::Connect { addr, source })?;
    let read = |source| ScrapeError::Read { addr, source };
    c.set_read_timeout(Some(timeout)).map_err(read)?;
    c.set_write_timeout(Some(timeout)).map_err(read)?;
    c.write_all(b"GET /metrics HTTP/1.0\r\nHost: flowtap\r\nConnection: close\r\n\r\n")
        .map_err(read)?;
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).map_err(read)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    if !status.contains(" 200") {
        return Err(ScrapeError::Status { addr, status });
    }
    Ok(body.to_string())
}

/// Every sample of an exposition (comments and malformed lines skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' | ' ' => {}
                '=' => {
                    // A quoted value with \\, \" and \n escapes.
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        };
        rest = &inner[end + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// One scrape.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    pub fn new(text: &str) -> Scrape {
        Scrape {
            samples: parse(text),
        }
    }

    /// Sum of `metric` per value of `by` (samples without it are skipped),
    /// over the samples that `keep` accepts.
    pub fn sum_by(
        &self,
        metric: &str,
        by: &[&str],
        keep: impl Fn(&Sample) -> bool,
    ) -> BTreeMap<Vec<String>, f64> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == metric && keep(s)) {
            let key: Option<Vec<String>> =
                by.iter().map(|l| s.label(l).map(str::to_string)).collect();
            if let Some(key) = key {
                *out.entry(key).or_insert(0.0) += s.value;
            }
        }
        out
    }

    /// Sum of every sample of `metric`.
    pub fn total(&self, metric: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == metric)
            .map(|s| s.value)
            .sum()
    }
}

/// What grew between two scrapes, per key (a counter that went down, or a
/// series that disappeared, counts as 0: a restart or a label demoted to
/// `other`).
pub fn growth(
    before: &BTreeMap<Vec<String>, f64>,
    now: &BTreeMap<Vec<String>, f64>,
) -> BTreeMap<Vec<String>, f64> {
    now.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - before.get(k).copied().unwrap_or(0.0)).max(0.0),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_escaped_labels() {
        let text = "# HELP x y\n# TYPE x counter\n\
                    x{worker=\"0\",name=\"a \\\"b\\\" \\\\ c\"} 12\n\
                    y 3.5\n\
                    h_bucket{le=\"+Inf\"} 7\n\
                    broken{a=\"1\" 5\n";
        let s = parse(text);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0].name, "x");
        assert_eq!(s[0].label("worker"), Some("0"));
        assert_eq!(s[0].label("name"), Some("a \"b\" \\ c"));
        assert_eq!(s[0].value, 12.0);
        assert_eq!(s[1].name, "y");
        assert_eq!(s[1].value, 3.5);
        assert_eq!(s[2].label("le"), Some("+Inf"));
    }

    #[test]
    fn growth_sums_workers_and_ignores_resets() {
        let a = Scrape::new(
            "m{worker=\"0\",k=\"x\"} 10\nm{worker=\"1\",k=\"x\"} 5\nm{worker=\"0\",k=\"y\"} 9\n",
        );
        let b = Scrape::new(
            "m{worker=\"0\",k=\"x\"} 15\nm{worker=\"1\",k=\"x\"} 8\nm{worker=\"0\",k=\"y\"} 2\n",
        );
        let g = growth(
            &a.sum_by("m", &["k"], |_| true),
            &b.sum_by("m", &["k"], |_| true),
        );
        assert_eq!(g.get(&vec!["x".to_string()]), Some(&8.0));
        assert_eq!(g.get(&vec!["y".to_string()]), Some(&0.0));
    }
}
