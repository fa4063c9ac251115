//! Events encoded per second per core, for each schema: one flow record,
//! and one HTTP / DNS / TLS event, into a reused buffer (as a worker does).
//! Run: cargo bench -p benches --bench encode

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use output::schema::testdata::{dns, envelope, flow, http, tls};
use output::schema::{encode_app, encode_flow, EncodeOptions, Schema};

fn bench(c: &mut Criterion) {
    let opts = EncodeOptions::new("probe-1".into(), 256);
    let rec = flow();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    for schema in Schema::ALL {
        let mut buf = Vec::with_capacity(1 << 20);
        g.bench_function(format!("flow/{}", schema.as_str()), |b| {
            b.iter(|| {
                if buf.len() > (1 << 20) - 4096 {
                    buf.clear();
                }
                encode_flow(schema, &opts, black_box(&rec), &mut buf);
            })
        });
        for (name, ev) in [("http", http()), ("dns", dns()), ("tls", tls())] {
            let env = envelope(&rec, &ev);
            g.bench_function(format!("{name}/{}", schema.as_str()), |b| {
                b.iter(|| {
                    if buf.len() > (1 << 20) - 8192 {
                        buf.clear();
                    }
                    encode_app(schema, &opts, black_box(&env), &mut buf);
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
