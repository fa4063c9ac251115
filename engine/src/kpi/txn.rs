//! Every registered protocol's transactions (see the registry's
//! `Protocol::transaction`): by operation (SQL verb, Redis command, AMQP
//! method, HTTP method, DNS query type) and outcome, latency per
//! operation, and the server's error codes.

use std::fmt::Write as _;

use dissect::app::registry::{FieldValue, Outcome, Transaction};
use output::metrics::{fig, Exposition, Histogram, Kind};

use super::{each_value, list_label, AppMetricsSection, Merge, TopN};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Operation {
    /// By [`Outcome::index`].
    outcomes: [u64; 3],
    latency: Histogram,
}

impl Merge for Operation {
    fn merge(&mut self, o: &Self) {
        for (a, b) in self.outcomes.iter_mut().zip(o.outcomes) {
            *a += b;
        }
        self.latency.add(&o.latency);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ProtoTransactions {
    operations: TopN<String, Operation>,
    errors: TopN<String, u64>,
}

impl ProtoTransactions {
    pub(super) fn new(cfg: &AppMetricsSection) -> ProtoTransactions {
        ProtoTransactions {
            operations: TopN::new(cfg.operations),
            errors: TopN::new(cfg.error_codes),
        }
    }

    pub(super) fn observe(&mut self, t: &Transaction<'_>, scratch: &mut String) {
        let op = self.operations.entry(t.operation);
        op.outcomes[t.outcome.index()] += 1;
        if let Some(ns) = t.latency_ns {
            op.latency.observe_ns(ns);
        }
        if let Some(code) = t.error_code {
            let code = match code {
                FieldValue::Str(s) => s,
                FieldValue::Num(n) => {
                    scratch.clear();
                    let _ = write!(scratch, "{n}");
                    scratch.as_str()
                }
            };
            *self.errors.entry(code) += 1;
        }
    }

    pub(super) fn rebalance(&mut self) {
        self.operations.rebalance();
        self.errors.rebalance();
    }

    pub(super) fn list(&self, proto: &str, e: &mut Exposition) {
        e.declare_all(&[
            (
                "flowtap_app_transactions_total",
                Kind::Counter,
                TRANSACTIONS,
            ),
            (
                "flowtap_app_transaction_latency_seconds",
                Kind::Histogram,
                LATENCY,
            ),
            (
                "flowtap_app_transaction_errors_total",
                Kind::Counter,
                ERRORS,
            ),
        ]);
        for (operation, op) in each_value(&self.operations, |o| o.clone()) {
            if op.outcomes.iter().all(|&n| n == 0) {
                continue;
            }
            for outcome in Outcome::ALL {
                let n = op.outcomes[outcome.index()];
                if n > 0 {
                    let l = [
                        ("proto", proto),
                        ("operation", operation.as_str()),
                        ("outcome", outcome.as_str()),
                    ];
                    fig(
                        e,
                        "",
                        "flowtap_app_transactions_total",
                        Kind::Counter,
                        TRANSACTIONS,
                        &l,
                        n,
                    );
                }
            }
            let l = [("proto", proto), ("operation", operation.as_str())];
            e.histogram(
                "flowtap_app_transaction_latency_seconds",
                LATENCY,
                &l,
                &op.latency,
            );
        }
        for (code, n) in each_value(&self.errors, |c| c.clone()) {
            if *n > 0 {
                let l = [("proto", proto), ("code", code.as_str())];
                fig(
                    e,
                    "",
                    "flowtap_app_transaction_errors_total",
                    Kind::Counter,
                    ERRORS,
                    &l,
                    *n,
                );
            }
        }
        list_label(e, &format!("{proto}_operation"), &self.operations);
        list_label(e, &format!("{proto}_error_code"), &self.errors);
    }
}

const TRANSACTIONS: &str = "Application transactions (one per event) by protocol, operation (SQL verb, Redis command, AMQP method, HTTP method, DNS query type, TLS handshake) and outcome (ok, error, unanswered).";
const LATENCY: &str = "Application request to response, by protocol and operation.";
const ERRORS: &str = "Transactions the server answered with an error, by protocol and error code (SQLSTATE, MySQL error number, Redis error prefix, AMQP reply code, HTTP status).";
