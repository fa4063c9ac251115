//! Checks a document against the ECS 8.11 field list (names, types,
//! array-ness, allowed values); fields under `flowtap.` are ours. Used by
//! the tests of this crate and of the engine.

use std::collections::HashMap;

use serde_json::Value;

/// ECS 8.11 field list: name -> (type, normalize, allowed values).
fn ecs_fields() -> HashMap<String, (String, String, Vec<String>)> {
    include_str!("../../tests/data/ecs-8.11-fields.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut it = l.split('\t');
            let name = it.next().unwrap_or("").to_string();
            let ty = it.next().unwrap_or("").to_string();
            let norm = it.next().unwrap_or("").to_string();
            let allowed = it
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            (name, (ty, norm, allowed))
        })
        .collect()
}

/// Leaf paths of a JSON document (array elements share their array's path).
pub fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, v, out);
            }
        }
        Value::Array(a) if a.iter().any(Value::is_object) => {
            for e in a {
                leaves(prefix, e, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// Checks one ECS document against the field list; returns the problems.
pub fn ecs_problems(doc: &Value) -> Vec<String> {
    let fields = ecs_fields();
    let mut problems = Vec::new();
    let mut ls = Vec::new();
    leaves("", doc, &mut ls);
    for (path, v) in ls {
        if path.starts_with("flowtap.") {
            continue;
        }
        let Some((ty, norm, allowed)) = fields.get(&path) else {
            problems.push(format!("{path}: not an ECS 8.11 field"));
            continue;
        };
        let values: Vec<&Value> = match &v {
            Value::Array(a) => {
                if norm != "array" && !a.is_empty() {
                    problems.push(format!("{path}: array but ECS says single value"));
                }
                a.iter().collect()
            }
            other => vec![other],
        };
        for x in values {
            let ok = match ty.as_str() {
                "keyword" | "wildcard" | "text" | "match_only_text" | "constant_keyword" => {
                    x.is_string()
                }
                "ip" => x
                    .as_str()
                    .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
                "long" | "integer" | "short" | "byte" | "unsigned_long" => x.is_u64() || x.is_i64(),
                "float" | "scaled_float" | "double" => x.is_number(),
                "boolean" => x.is_boolean(),
                "date" => x
                    .as_str()
                    .is_some_and(|s| s.len() >= 19 && s.as_bytes().get(4) == Some(&b'-')),
                _ => true,
            };
            if !ok {
                problems.push(format!("{path}: {x} is not of ECS type {ty}"));
            }
            if !allowed.is_empty() {
                if let Some(s) = x.as_str() {
                    if !allowed.iter().any(|a| a == s) {
                        problems.push(format!("{path}: {s} not an allowed value"));
                    }
                }
            }
        }
    }
    problems
}
