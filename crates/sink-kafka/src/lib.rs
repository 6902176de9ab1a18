//! The Kafka destination. Schema sync creates (or checks) the mapped topics; delivery sends a
//! batch of formatted changes and returns only when every one of them was acknowledged by the
//! broker (`acks=all`, idempotent producer), so the checkpoint never passes an unacknowledged
//! change.
//!
//! Topics, keys, partitions and headers come from `sluice-mq` (shared by every message-queue
//! destination), not from librdkafka, so consumers can predict them: `partition =
//! (murmur2(bytes) & 0x7fffffff) % partitions`, Kafka's own default partitioner, over the
//! message key (mode `hash`) or over `db.table` (mode `table`); mode `one` uses partition 0.
#![deny(missing_docs)]

mod config;
mod security;
mod tls_check;
pub mod verify;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use sluice_core::sink::{DeliveryItem, Notifier, Sink, SinkError};
use sluice_core::{Secret, TableSpec};
use sluice_format::{Format, SourceInfo};
use sluice_mq::{PartitionMode, Routing, Shaper};

pub use config::{KafkaSettings, RawKafka};
pub use security::SASL_MECHANISMS;

/// Kafka destination settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topics, keys, partitions (shared by every message-queue destination).
    pub routing: Routing,
    /// Partitions for topics Sluice creates.
    pub partitions: i32,
    /// Replication factor for topics Sluice creates.
    pub replication_factor: i32,
    /// `compression.type`: none, gzip, snappy, lz4, zstd.
    pub compression: String,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// `batch.size` in bytes.
    pub batch_bytes: u32,
    /// Extra librdkafka properties (security: `security.protocol`, `sasl.*`, `ssl.*`). Any of
    /// them may be a secret (`sasl.password`), so every value prints redacted.
    pub properties: Vec<(String, Secret)>,
}

/// Delivery outcomes of one batch in flight.
#[derive(Default)]
struct Outcome {
    acked: usize,
    failed: Vec<(usize, KafkaError)>,
    /// How many messages the batch sent, once its send finished.
    expected: Option<usize>,
}

impl Outcome {
    /// Whoever waits for the batch has something to act on: every report is in, or one failed.
    fn settled(&self) -> bool {
        !self.failed.is_empty() || self.expected.is_some_and(|n| self.acked >= n)
    }
}

/// Outcomes of every batch in flight, by ticket.
type Outcomes = HashMap<u64, Outcome>;

/// The outcomes, and the signal a delivery report gives to whoever waits for a batch (the
/// destination reports completions; nobody polls).
#[derive(Default)]
struct Reports {
    outcomes: Mutex<Outcomes>,
    arrived: Condvar,
}

struct Ctx {
    reports: Arc<Reports>,
    broker_down: Arc<Mutex<Option<Instant>>>,
    /// Whether `broker_down` is set (spares every delivery report its lock).
    down: AtomicBool,
    last: LastError,
}

/// The last error the client reported by itself (a TLS handshake or SASL failure is known only
/// this way: requests merely time out), for the messages that say why brokers are unreachable.
#[derive(Clone, Default)]
struct LastError(Arc<Mutex<Option<String>>>);

impl LastError {
    fn set(&self, error: &KafkaError, reason: &str) {
        // "1/1 brokers are down" follows the failure that says why; keep that one.
        let all_down = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        );
        if let Ok(mut l) = self.0.lock() {
            if !(all_down && l.is_some()) {
                *l = Some(reason.to_string());
            }
        }
    }

    /// Whether the last error is one that waiting does not cure (a TLS or SASL failure).
    fn definite(&self) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .is_some_and(|r| r.contains("SSL") || r.contains("certificate") || r.contains("SASL"))
    }

    /// `; the client reported: <reason>` and the fix for a TLS or SASL failure, or nothing.
    fn explain(&self) -> String {
        let Some(reason) = self.0.lock().ok().and_then(|l| l.clone()) else {
            return String::new();
        };
        let fix = if reason.contains("SSL") || reason.contains("certificate") {
            " (check destination.security: ca_file must hold the CA that signed the broker's \
             certificate, the certificate must be within its validity dates and name the host in \
             destination.brokers, and a broker that asks for a client certificate needs cert_file \
             and key_file)"
        } else if reason.contains("SASL") || reason.contains("uthentication") {
            " (check destination.security: protocol, sasl_mechanism, username and password must \
             match a user and mechanism the broker accepts)"
        } else {
            ""
        };
        format!("; the client reported: {reason}{fix}")
    }
}

struct ProbeCtx(LastError);

impl ClientContext for ProbeCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("kafka: {error}: {reason}");
        self.0.set(&error, reason);
    }
}

impl ProducerContext for ProbeCtx {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        self.last.set(&error, reason);
        // All brokers down: remember since when, for status; librdkafka keeps retrying.
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        ) {
            if let Ok(mut d) = self.broker_down.lock() {
                d.get_or_insert_with(Instant::now);
            }
            self.down.store(true, Ordering::Relaxed);
        }
        tracing::warn!("kafka: {error}: {reason}");
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<(u64, usize)>;
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (ticket, index) = *opaque;
        let settled = match self.reports.outcomes.lock() {
            Ok(mut all) => {
                let o = all.entry(ticket).or_default();
                match result {
                    Ok(_) => o.acked += 1,
                    Err((e, _)) => o.failed.push((index, e.clone())),
                }
                o.settled()
            }
            Err(_) => true,
        };
        // The waiter is woken once per batch, not once per message.
        if settled {
            self.reports.arrived.notify_all();
        }
        if self.down.swap(false, Ordering::Relaxed) {
            if let Ok(mut d) = self.broker_down.lock() {
                *d = None;
            }
        }
    }
}

/// The topics checked or created, and what checks and creates them.
struct Topics {
    admin: AdminClient<DefaultClientContext>,
    rt: tokio::runtime::Runtime,
    /// Partition count of each topic checked or created.
    known: HashMap<String, i32>,
    /// Partitions and replication factor of a topic Sluice creates.
    partitions: i32,
    replication_factor: i32,
    /// Whether partitions are chosen by hash (a topic of another size is then worth a warning).
    hashed: bool,
}

impl Topics {
    /// Partition count of an existing topic, or None when it does not exist.
    fn existing(producer: &ThreadedProducer<Ctx>, topic: &str) -> Result<Option<i32>, SinkError> {
        let last = &producer.context().last;
        let md = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(kafka_err("read topic metadata", last))?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as i32))
    }

    /// Creates `topic` unless it exists; records its partition count.
    fn ensure(&mut self, producer: &ThreadedProducer<Ctx>, topic: &str) -> Result<i32, SinkError> {
        if let Some(n) = self.known.get(topic) {
            return Ok(*n);
        }
        let n = match Self::existing(producer, topic)? {
            Some(n) => {
                if self.hashed && n != self.partitions {
                    tracing::warn!(
                        "topic {topic} exists with {n} partitions (configured {}); hashing over its {n}",
                        self.partitions
                    );
                }
                n
            }
            None => {
                let new = NewTopic::new(
                    topic,
                    self.partitions,
                    TopicReplication::Fixed(self.replication_factor),
                );
                let results = self
                    .rt
                    .block_on(self.admin.create_topics(&[new], &AdminOptions::new()))
                    .map_err(kafka_err("create topics", &producer.context().last))?;
                for r in results {
                    match r {
                        Ok(_) => {}
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((t, code)) => {
                            return Err(SinkError::Rejected(format!(
                                "kafka refused to create topic {t}: {code}; create it yourself \
                                 ({} partitions) or grant the CREATE permission",
                                self.partitions
                            )))
                        }
                    }
                }
                self.partitions
            }
        };
        self.known.insert(topic.to_string(), n);
        Ok(n)
    }
}

/// The Kafka destination.
pub struct KafkaSink {
    shaper: Shaper,
    producer: ThreadedProducer<Ctx>,
    reports: Arc<Reports>,
    broker_down: Arc<Mutex<Option<Instant>>>,
    topics: Topics,
    notifier: Option<Notifier>,
    /// Next batch ticket, and how many messages (and payload bytes) each batch in flight sent.
    next_ticket: u64,
    sent: HashMap<u64, (usize, u64)>,
    /// Key and payload bytes of every acknowledged message.
    acked_bytes: u64,
}

fn kafka_err<'a>(what: &'a str, last: &'a LastError) -> impl Fn(KafkaError) -> SinkError + 'a {
    move |e| SinkError::Unavailable(format!("kafka: {what}: {e}{}", last.explain()))
}

/// The brokers and the user's client properties, which every client of the sink starts from.
fn client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", &cfg.brokers);
    for (k, v) in &cfg.properties {
        base.set(k, v.expose());
    }
    base
}

/// Whether the brokers answer a metadata request within 30 s (the service's precheck and
/// connection test).
pub fn reachable(cfg: &KafkaConfig) -> Result<(), SinkError> {
    // A plain TCP connection first: a broker that refuses connections is said at once,
    // rather than after librdkafka's retries run out.
    let connects = cfg.brokers.split(',').any(|b| {
        use std::net::ToSocketAddrs;
        let b = b.trim();
        let b = b.rsplit_once("://").map_or(b, |(_, rest)| rest);
        b.to_socket_addrs()
            .ok()
            .into_iter()
            .flatten()
            .any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok())
    });
    if !connects {
        return Err(SinkError::Unavailable(format!(
            "kafka: no broker of {} accepts a connection; check destination.brokers and that the brokers run",
            cfg.brokers
        )));
    }
    let last = LastError::default();
    // Threaded: its thread serves the error callbacks that say why (a TLS or SASL failure).
    // Its own log lines stay quiet: the reason goes into the one message returned, instead of
    // a log line per retry.
    let producer: ThreadedProducer<ProbeCtx> = client_config(cfg)
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Critical)
        .create_with_context(ProbeCtx(last.clone()))
        .map_err(|e| SinkError::Config(format!("kafka client: {e}")))?;
    // Asked in rounds, so that a failure waiting cannot cure (TLS, SASL) is said at once.
    let mut failure = None;
    for _ in 0..6 {
        match producer
            .client()
            .fetch_metadata(None, Duration::from_secs(5))
        {
            Ok(_) => return Ok(()),
            Err(e) => failure = Some(e),
        }
        if last.definite() {
            break;
        }
    }
    let tls = tls_check::diagnose(&cfg.brokers, &cfg.properties)
        .map_or_else(String::new, |d| format!("; {d}"));
    Err(SinkError::Unavailable(format!(
        "kafka brokers {} did not answer a metadata request ({}){tls}{}; check destination.brokers and that the brokers run",
        cfg.brokers,
        failure.map_or_else(String::new, |e| e.to_string()),
        last.explain()
    )))
}

/// librdkafka's `builtin.features`: what this build of the client supports (`ssl`,
/// `sasl_plain`, `sasl_scram`, `sasl_gssapi`, codecs, ...).
pub fn builtin_features() -> Result<String, SinkError> {
    ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
        .map_err(|e| SinkError::Config(format!("kafka client: {e}")))
}

impl KafkaSink {
    /// Connects (lazily: librdkafka connects on first use) with `cfg`, writing `format`.
    pub fn new(
        cfg: KafkaConfig,
        format: Box<dyn Format>,
        source: SourceInfo,
    ) -> Result<Self, SinkError> {
        let base = client_config(&cfg);
        let last = LastError::default();
        let reports = Arc::new(Reports::default());
        let broker_down = Arc::new(Mutex::new(None));
        let producer: ThreadedProducer<Ctx> = base
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // Never give up on a message by time: a broker outage of any length is waited
            // out (the batch in flight bounds memory); only permanent errors fail.
            .set("message.timeout.ms", "0")
            .set("compression.type", &cfg.compression)
            .set("linger.ms", cfg.linger_ms.to_string())
            .set("batch.size", cfg.batch_bytes.to_string())
            .create_with_context(Ctx {
                reports: reports.clone(),
                broker_down: broker_down.clone(),
                down: AtomicBool::new(false),
                last: last.clone(),
            })
            .map_err(|e| SinkError::Config(format!("kafka producer: {e}")))?;
        let admin = base
            .create()
            .map_err(|e| SinkError::Config(format!("kafka admin client: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SinkError::Config(format!("runtime: {e}")))?;
        let hashed = cfg.routing.mode != PartitionMode::One;
        Ok(Self {
            shaper: Shaper::new(cfg.routing, format, source),
            producer,
            reports,
            broker_down,
            topics: Topics {
                admin,
                rt,
                known: HashMap::new(),
                partitions: cfg.partitions,
                replication_factor: cfg.replication_factor,
                hashed,
            },
            notifier: None,
            next_ticket: 0,
            sent: HashMap::new(),
            acked_bytes: 0,
        })
    }

    /// Since when all brokers have been unreachable, if they are.
    pub fn outage_since(&self) -> Option<Instant> {
        self.broker_down.lock().ok().and_then(|d| *d)
    }

    /// Creates `topic` unless it exists; records its partition count.
    pub fn ensure_topic(&mut self, topic: &str) -> Result<i32, SinkError> {
        self.topics.ensure(&self.producer, topic)
    }
}

/// Errors that retrying cannot fix.
fn permanent(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

impl Sink for KafkaSink {
    fn set_notifier(&mut self, n: Notifier) {
        self.notifier = Some(n);
    }

    fn prepare(&mut self, tables: &[TableSpec]) -> Result<(), SinkError> {
        for t in self.shaper.routing().topics(tables) {
            self.ensure_topic(&t)?;
        }
        Ok(())
    }

    fn send(&mut self, items: &[DeliveryItem]) -> Result<u64, SinkError> {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        // Shape everything first: a bad record fails before anything is sent.
        let (topics, producer) = (&mut self.topics, &self.producer);
        let msgs = self
            .shaper
            .shape(items, &mut |topic| topics.ensure(producer, topic))?;
        if let Ok(mut o) = self.reports.outcomes.lock() {
            o.insert(ticket, Outcome::default());
        }
        let mut sent = 0usize;
        let mut bytes = 0u64;
        for m in &msgs {
            let item = &items[m.index];
            let mut headers = OwnedHeaders::new();
            for (key, value) in sluice_mq::headers(item) {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                });
            }
            let mut record = BaseRecord::with_opaque_to(&m.topic, Box::new((ticket, m.index)))
                .partition(m.partition)
                .key(&m.key)
                .payload(&m.payload)
                .headers(headers);
            // The local queue is full: wait for deliveries to make room.
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => {
                        let (t, p) = sluice_mq::describe(&item.event);
                        return Err(SinkError::Rejected(format!(
                            "kafka refused a message for {t} (key {}) at {p}: {e}",
                            sluice_mq::key_text(&m.key)
                        )));
                    }
                }
            }
            sent += 1;
            bytes += (m.key.len() + m.payload.len()) as u64;
        }
        self.sent.insert(ticket, (sent, bytes));
        if let Ok(mut o) = self.reports.outcomes.lock() {
            let o = o.entry(ticket).or_default();
            o.expected = Some(sent);
            if o.settled() {
                self.reports.arrived.notify_all();
            }
        }
        Ok(ticket)
    }

    fn wait(&mut self, ticket: u64, items: &[DeliveryItem]) -> Result<(), SinkError> {
        let (sent, bytes) = self.sent.remove(&ticket).unwrap_or((0, 0));
        // Wait for every delivery report. librdkafka retries by itself through an outage
        // (no message timeout); meanwhile the outage is reported, once a second.
        let mut noted: Option<Instant> = None;
        let Ok(mut all) = self.reports.outcomes.lock() else {
            return Err(SinkError::Unavailable(
                "delivery bookkeeping poisoned".into(),
            ));
        };
        let result = loop {
            let (acked, failed) = all
                .get(&ticket)
                .map(|o| (o.acked, o.failed.first().cloned()))
                .unwrap_or_default();
            if let Some((i, e)) = failed {
                let (t, p) = sluice_mq::describe(&items[i].event);
                let key = sluice_mq::key_text(&sluice_mq::key_of(&items[i].event));
                let msg = format!("kafka did not accept the change of {t} (key {key}) at {p}: {e}");
                break Err(if permanent(&e) {
                    SinkError::Rejected(msg)
                } else {
                    SinkError::Unavailable(msg)
                });
            }
            if acked >= sent {
                break Ok(());
            }
            if let (Some(since), Some(n)) = (self.outage_since(), &self.notifier) {
                if since.elapsed() > Duration::from_secs(2)
                    && noted.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
                {
                    let text = format!(
                        "kafka brokers unreachable for {} s; {} of {sent} messages of the batch acknowledged; waiting{}",
                        since.elapsed().as_secs(),
                        acked,
                        self.producer.context().last.explain()
                    );
                    tracing::warn!("{text}");
                    n(Some(&text));
                    noted = Some(Instant::now());
                }
            }
            // Woken by the next delivery report; at least once a second to report an outage.
            all = match self
                .reports
                .arrived
                .wait_timeout(all, Duration::from_secs(1))
            {
                Ok((guard, _)) => guard,
                Err(_) => {
                    return Err(SinkError::Unavailable(
                        "delivery bookkeeping poisoned".into(),
                    ))
                }
            };
        };
        all.remove(&ticket);
        drop(all);
        if let (Some(_), Some(n)) = (noted, &self.notifier) {
            n(None);
        }
        if result.is_ok() {
            self.acked_bytes += bytes;
        }
        result
    }

    fn acknowledged_bytes(&self) -> u64 {
        self.acked_bytes
    }
}
