//! Kafka transport on librdkafka (the `rdkafka` crate with its bundled
//! librdkafka). Each event is one message: key = the flow's Community ID (so
//! a flow's events land on one partition, in order), value = the encoded line
//! without its newline, topic = the sink's topic with `{type}` replaced by the
//! event type.
//!
//! Two buffers absorb an outage, one after the other:
//!
//! 1. librdkafka's own queue, bounded by `queue.buffering.max.messages` and
//!    `queue.buffering.max.kbytes` (defaults here: 100 000 messages, 64 MiB).
//!    Messages in it are retried until delivered: `message.timeout.ms`
//!    defaults to 0 (no timeout), so a broker that comes back gets every
//!    message it queued, in order per partition.
//! 2. When that queue stays full without progress (the broker accepts
//!    nothing for [`STALL`]) or librdkafka reports every broker down, the
//!    transport reports the sink down. The runner then spools to disk (when
//!    the sink has a spool) or holds the batch until its queue fills and the
//!    workers' when-full policy drops (counted in `events_dropped`) or
//!    waits. The runner hands nothing more to librdkafka until a metadata
//!    request succeeds again and the queue has room, so everything spooled
//!    goes out behind what librdkafka still holds: order per partition is
//!    kept and no event is handed over twice.
//!
//! `events_sent` counts messages librdkafka accepted; a delivery report with
//! an error (a permanent one such as an unknown topic, message too large or
//! authorization; or a timeout when `message.timeout.ms` is set) adds the
//! message to `events_failed`, as does a message still undelivered when the
//! sink closes (after a flush of up to [`CLOSE_FLUSH`]). Events that reach
//! the broker are thus `events_sent - events_failed`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::util::Timeout;

use super::batch::Batch;
use super::SinkCounters;
use super::{Partial, SinkError, Transport};
use crate::event::EventType;

/// A full librdkafka queue that does not shrink for this long means the
/// broker is not taking messages: report the sink down.
pub const STALL: Duration = Duration::from_secs(2);
/// How long a reachability probe (metadata request) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long closing waits for librdkafka to deliver what it holds.
pub const CLOSE_FLUSH: Duration = Duration::from_secs(10);

/// Properties flowtap sets unless the sink's `kafka.*` options do.
const DEFAULTS: &[(&str, &str)] = &[
    // Keep undelivered messages until they are delivered; the queue bound
    // below, then the spool or the when-full policy, cap what is held.
    ("message.timeout.ms", "0"),
    ("queue.buffering.max.messages", "100000"),
    ("queue.buffering.max.kbytes", "65536"),
    // One request in flight per broker: a retry cannot reorder a partition.
    // No idempotent producer by default: Tansu 0.6 (the test broker) stops
    // taking an idempotent producer's messages once it restarted with its
    // memory storage gone, and a wedged producer loses more than a rare
    // duplicate after a lost ack. Set kafka.enable.idempotence=true against
    // a real Kafka cluster for no duplicates and pipelined requests.
    ("enable.idempotence", "false"),
    ("max.in.flight.requests.per.connection", "1"),
    ("linger.ms", "20"),
    ("compression.type", "lz4"),
    // Same partition for the same key as the Java client (murmur2).
    ("partitioner", "murmur2_random"),
    ("client.id", "flowtap"),
];

/// What librdkafka's callbacks tell the sink thread.
struct Context {
    counters: Arc<SinkCounters>,
    /// Set when librdkafka reports every broker down; cleared by a probe.
    all_down: AtomicBool,
    /// Delivery failures seen so far (the first one is reported).
    failed: AtomicU64,
}

impl ClientContext for Context {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, _fac: &str, _msg: &str) {
        // librdkafka's chatter (reconnect attempts ...) stays quiet; the
        // runner reports down/up once per outage.
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                self.all_down.store(true, Ordering::Relaxed);
            }
            // Fatal errors (e.g. the idempotent producer fenced) end
            // delivery; every later message fails and is counted.
            Some(RDKafkaErrorCode::Fatal) => {
                eprintln!("flowtap: kafka: fatal error: {reason}");
            }
            _ => {}
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.counters.events_failed.fetch_add(1, Ordering::Relaxed);
            if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("flowtap: kafka: a message could not be delivered: {e} (counted in events_failed)");
            }
        }
    }
}

/// The Kafka transport of one sink.
pub struct KafkaSink {
    /// Its own thread serves librdkafka's events (delivery reports, errors)
    /// as they come, so the queue length it reports is current.
    producer: ThreadedProducer<Context>,
    /// Topic per event type (`{type}` replaced).
    topics: [String; EventType::COUNT],
    /// Queue length under which a stalled sink may resume.
    resume_below: i32,
}

impl KafkaSink {
    /// Builds the producer (no connection yet). A property librdkafka does
    /// not accept is an error naming it.
    pub fn new(
        brokers: &str,
        topic: &str,
        properties: &[(String, String)],
        counters: Arc<SinkCounters>,
    ) -> Result<KafkaSink, SinkError> {
        let mut cfg = ClientConfig::new();
        for (k, v) in DEFAULTS {
            cfg.set(*k, *v);
        }
        cfg.set("bootstrap.servers", brokers);
        for (k, v) in properties {
            cfg.set(k, v);
        }
        let max_messages = cfg
            .get("queue.buffering.max.messages")
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(100_000);
        let ctx = Context {
            counters,
            all_down: AtomicBool::new(false),
            failed: AtomicU64::new(0),
        };
        let producer: ThreadedProducer<Context> = cfg
            .create_with_context(ctx)
            .map_err(|e| SinkError::Kafka(e.to_string()))?;
        let topics = std::array::from_fn(|i| {
            let t = EventType::from_index(i).map_or("", EventType::as_str);
            topic.replace("{type}", t)
        });
        Ok(KafkaSink {
            producer,
            topics,
            resume_below: (max_messages / 2).max(1),
        })
    }

    fn ctx(&self) -> &Context {
        self.producer.context()
    }

    /// The topic events of type `t` go to.
    pub fn topic(&self, t: EventType) -> &str {
        &self.topics[t.index()]
    }
}

impl Transport for KafkaSink {
    /// Checks that a broker answers (a metadata request) and that
    /// librdkafka's queue has room again after a stall.
    fn connect(&mut self) -> Result<(), SinkError> {
        self.probe()
    }

    fn peer_closed(&mut self) -> bool {
        self.ctx().all_down.load(Ordering::Relaxed)
    }

    fn send(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        self.produce(batch, from)
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.flush_or_purge()
    }
}

impl KafkaSink {
    fn probe(&mut self) -> Result<(), SinkError> {
        let probe = self.topics[EventType::Flow.index()].clone();
        self.producer
            .client()
            .fetch_metadata(Some(&probe), Timeout::After(PROBE_TIMEOUT))
            .map_err(|e| SinkError::Kafka(format!("no broker answers: {e}")))?;
        self.ctx().all_down.store(false, Ordering::Relaxed);
        let queued = self.producer.in_flight_count();
        if queued >= self.resume_below {
            return Err(SinkError::Kafka(format!(
                "{queued} messages still queued for the broker"
            )));
        }
        Ok(())
    }

    fn produce(&mut self, batch: &Batch, from: usize) -> Result<(), Partial> {
        for i in from..batch.len() {
            let Some((meta, line)) = batch.event(i) else {
                break;
            };
            let key = meta.key();
            let mut record: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(&self.topics[meta.kind.index()]).payload(line);
            if !key.is_empty() {
                record = record.key(key);
            }
            // Waits while librdkafka's queue is full, as long as it drains.
            let mut stalled_since = Instant::now();
            let mut queued = i32::MAX;
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(5));
                        let now = self.producer.in_flight_count();
                        if now < queued {
                            queued = now;
                            stalled_since = Instant::now();
                        } else if stalled_since.elapsed() >= STALL {
                            return Err(Partial {
                                sent: i - from,
                                error: SinkError::Kafka(format!(
                                    "the broker took nothing for {}s ({now} messages queued)",
                                    STALL.as_secs()
                                )),
                            });
                        }
                        if self.ctx().all_down.load(Ordering::Relaxed) {
                            return Err(Partial {
                                sent: i - from,
                                error: SinkError::Kafka("all brokers are down".into()),
                            });
                        }
                    }
                    Err((
                        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                        _,
                    )) => {
                        return Err(Partial {
                            sent: i - from,
                            error: SinkError::TooLarge(line.len()),
                        });
                    }
                    Err((e, _)) => {
                        // This message cannot be produced at all (invalid
                        // topic, fatal producer state): count it, go on.
                        return Err(Partial {
                            sent: i - from,
                            error: SinkError::Rejected(e.to_string()),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn flush_or_purge(&mut self) -> Result<(), SinkError> {
        if self.producer.flush(Timeout::After(CLOSE_FLUSH)).is_err() {
            let left = self.producer.in_flight_count();
            eprintln!(
                "flowtap: kafka: {left} message(s) still undelivered after {}s; counted as failed",
                CLOSE_FLUSH.as_secs()
            );
            // Purged messages get a failed delivery report, counted there.
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            let _ = self.producer.flush(Timeout::After(Duration::from_secs(2)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn build(kv: &[(&str, &str)]) -> Result<KafkaSink, SinkError> {
        KafkaSink::new(
            "127.0.0.1:9",
            "flowtap-{type}",
            &props(kv),
            Arc::new(SinkCounters::default()),
        )
    }

    #[test]
    fn topic_per_type() {
        let k = build(&[]).expect("producer");
        assert_eq!(k.topic(EventType::Flow), "flowtap-flow");
        assert_eq!(k.topic(EventType::Stats), "flowtap-stats");
        let one =
            KafkaSink::new("h:1", "all", &[], Arc::new(SinkCounters::default())).expect("producer");
        assert_eq!(
            one.topic(EventType::App(dissect::app::AppProto::Dns)),
            "all"
        );
    }

    /// The bundled librdkafka has TLS and every SASL mechanism built in:
    /// librdkafka refuses these at creation when it lacks the support.
    #[test]
    fn tls_and_sasl_mechanisms_are_built_in() {
        let ca = std::env::temp_dir().join(format!("flowtap-kafka-ca-{}.pem", std::process::id()));
        std::fs::write(&ca, TEST_CA).expect("write ca");
        let ca_path = ca.to_str().expect("path");
        for mech in [
            "PLAIN",
            "SCRAM-SHA-256",
            "SCRAM-SHA-512",
            "OAUTHBEARER",
            "GSSAPI",
        ] {
            build(&[
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanism", mech),
                ("sasl.username", "u"),
                ("sasl.password", "p"),
                // GSSAPI's default kinit command names the keytab; no
                // kinit run here (0 turns the ticket refresh off)
                ("sasl.kerberos.keytab", "/etc/flowtap/flowtap.keytab"),
                ("sasl.kerberos.min.time.before.relogin", "0"),
                ("ssl.ca.location", ca_path),
            ])
            .unwrap_or_else(|e| panic!("{mech}: {e}"));
        }
        let _ = std::fs::remove_file(&ca);
    }

    /// Every codec is built into the bundled librdkafka (it refuses a
    /// codec it was built without when the producer is created).
    #[test]
    fn every_compression_codec_is_built_in() {
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            build(&[("compression.type", codec)]).unwrap_or_else(|e| panic!("{codec}: {e}"));
        }
    }

    #[test]
    fn a_bad_property_is_named() {
        let e = build(&[("no.such.thing", "1")]).err().expect("refused");
        assert!(e.to_string().contains("no.such.thing"), "{e}");
        let e = build(&[
            ("security.protocol", "ssl"),
            ("ssl.ca.location", "/nonexistent/ca.pem"),
        ])
        .err()
        .expect("refused");
        assert!(e.to_string().contains("ssl.ca.location"), "{e}");
    }

    /// A self-signed CA certificate (public part only), for loading.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBiTCCAS+gAwIBAgIUb/HBg1RNos85+qML7YRy5eu69c8wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPZmxvd3RhcC10ZXN0LWNhMB4XDTI2MTEyMjE0NDU0M1oXDTM2
MTExOTE0NDU0M1owGjEYMBYGA1UEAwwPZmxvd3RhcC10ZXN0LWNhMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEtl+Kp5WAXELtdm2H9+mOsgMolAdUDXC1QgE9JFOo
XVLGoY55n14LqdbuBjFoCfcINd6QvNZJCxCCsGk4lXVPw6NTMFEwHQYDVR0OBBYE
FPnKyZ9QUddnF2nXFhtM4L6FmcZpMB8GA1UdIwQYMBaAFPnKyZ9QUddnF2nXFhtM
4L6FmcZpMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgcgNWvyoJ
+j3mQiojPVmxvA2YCyFWc915m8XhNT1oRlQCIQDoGBCQD3GaTDECgbUyJBwS6oDK
NmkkC/twP19kOavwhA==
-----END CERTIFICATE-----
";
}
