//! `normalize_statements` on real database captures: every PostgreSQL and
//! MySQL statement of the corpus keeps its shape and loses its literals
//! (customer data, names, numbers), and nothing else in the events changes.

mod common;

use common::{corpus, run_flowtap, tmp_dir, RunOutput};
use serde_json::Value;

/// Every PostgreSQL and MySQL capture of the corpus but the one whose last
/// record is cut (exit status 2, damaged input; it has one statement).
const CAPTURES: &[&str] = &[
    "postgresql/ndpi-pgsql.pcap",
    "postgresql/ndpi-pgsql2.pcapng",
    "postgresql/sv-pgsql.pgsql-simple-query-rollback--input.pcap",
    "postgresql/sv-pgsql.pgsql-ssl-rejected-md5-auth-simple-query--input.pcap",
    "mysql/ndpi-mysql.pcapng",
    "mysql/sv-community-id-sameip--input.pcap",
    "mysql/zeek-mysql__caching_sha2_password.pcap",
    "mysql/zeek-mysql__selects_with_new_proto.pcap",
];

fn db_events(r: &RunOutput) -> Vec<Value> {
    assert!(r.status.success(), "{}", r.stderr);
    r.events
        .iter()
        .filter(|e| e["event_type"] == "pgsql" || e["event_type"] == "mysql")
        .cloned()
        .collect()
}

#[test]
fn statements_lose_their_literals_on_request() {
    let cfg = tmp_dir("db-statements").join("normalize.toml");
    std::fs::write(
        &cfg,
        "[app.pgsql]\nnormalize_statements = true\n[app.mysql]\nnormalize_statements = true\n",
    )
    .expect("config");
    let mut all = Vec::new();
    for rel in CAPTURES {
        let plain = db_events(&run_flowtap(&corpus().join(rel), 1, &[]));
        let norm = db_events(&run_flowtap(
            &corpus().join(rel),
            1,
            &["--config", cfg.to_str().expect("path")],
        ));
        assert_eq!(plain.len(), norm.len(), "{rel}: the same events");
        for (p, n) in plain.iter().zip(&norm) {
            let t = p["event_type"].as_str().expect("type");
            // Everything but the statement is the same.
            let (mut p2, mut n2) = (p.clone(), n.clone());
            p2[t].as_object_mut().expect("object").remove("statement");
            n2[t].as_object_mut().expect("object").remove("statement");
            assert_eq!(p2, n2, "{rel}");
            if let (Some(ps), Some(ns)) = (p[t]["statement"].as_str(), n[t]["statement"].as_str()) {
                if matches!(n[t]["command"].as_str(), Some("init_db" | "field_list")) {
                    assert_eq!(ps, ns, "{rel}: a schema or table name is not a statement");
                    continue;
                }
                assert!(!ns.contains('\''), "{rel}: a string literal is left: {ns}");
                all.push((ps.to_string(), ns.to_string()));
            }
        }
    }
    let has = |plain: &str, norm: &str| all.iter().any(|(p, n)| p == plain && n == norm);
    for (plain, norm) in [
        (
            "DELETE FROM new_table WHERE NAME='Remus';",
            "DELETE FROM new_table WHERE NAME=?;",
        ),
        (
            "select id,name from flag_names where id>0",
            "select id,name from flag_names where id>?",
        ),
        (
            "select * from rules where sid = 2021701;",
            "select * from rules where sid = ?;",
        ),
        (
            "select @@version_comment limit 1",
            "select @@version_comment limit ?",
        ),
        (
            "delete from foo where name like '%oo%'",
            "delete from foo where name like ?",
        ),
        ("BEGIN;", "BEGIN;"),
    ] {
        assert!(has(plain, norm), "{plain:?} -> {norm:?} among {all:#?}");
    }
    let changed = all.iter().filter(|(p, n)| p != n).count();
    eprintln!("{} statements, {changed} with literals replaced", all.len());
    assert!(changed >= 10, "{changed} statements had literals");
}

/// Each flow record counts the application events of its flow
/// (`app_transactions`, EVE's `tx_cnt` as Suricata names it) and those the
/// server answered with an error (`app_errors`: an SQL error, an error
/// reply, an HTTP 5xx): on every database capture of the corpus (and an
/// HTTP one), the counts equal the events written.
#[test]
fn flow_records_count_transactions_and_errors() {
    let mut totals = (0u64, 0u64);
    let captures = CAPTURES.iter().chain(&[
        "redis/ndpi-resp.pcap",
        "http/sv-http-all-headers--input.pcap",
    ]);
    for rel in captures {
        let run = run_flowtap(&corpus().join(rel), 1, &[]);
        assert!(run.status.success(), "{rel}: {}", run.stderr);
        let mut per_flow: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
        for e in &run.events {
            let t = e["event_type"].as_str().unwrap_or("");
            if matches!(t, "flow" | "stats") {
                continue;
            }
            let o = &e[t];
            let error = match t {
                "http" => o["status"].as_u64().is_some_and(|s| s >= 500),
                "pgsql" | "mysql" | "redis" => o.get("error").is_some(),
                _ => false,
            };
            let c = per_flow
                .entry(e["flow_id"].as_u64().expect("flow_id"))
                .or_default();
            c.0 += 1;
            c.1 += u64::from(error);
        }
        for f in run.of_type("flow") {
            let want = per_flow
                .get(&f["flow_id"].as_u64().expect("flow_id"))
                .copied()
                .unwrap_or_default();
            let got = (
                f["flow"]["app_transactions"].as_u64().unwrap_or(0),
                f["flow"]["app_errors"].as_u64().unwrap_or(0),
            );
            assert_eq!(got, want, "{rel}: {f}");
            totals.0 += got.0;
            totals.1 += got.1;
        }
    }
    eprintln!(
        "{} transactions, {} errors counted in flow records",
        totals.0, totals.1
    );
    assert!(totals.0 >= 50 && totals.1 >= 3, "{totals:?}");
}
