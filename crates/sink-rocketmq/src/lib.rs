//! The RocketMQ destination, over RocketMQ's classic remoting protocol (name server routes,
//! broker sends). Topics, message keys, queues and properties come from `sluice-mq`, as for
//! Kafka; a partition number is an index into the topic's write queues (see `route`).
//!
//! Invariants:
//! - Sends are synchronous per queue: a queue's next message leaves only after the broker
//!   answered SEND_OK for the one before it, so each queue holds its messages in batch order.
//!   Queues (lanes, one per broker queue id, each with its own connection) send in parallel.
//! - A batch is acknowledged only when every one of its messages got SEND_OK. Any other
//!   answer (FLUSH_DISK_TIMEOUT and SLAVE_NOT_AVAILABLE included: stored, but not as durably
//!   as asked) fails the batch; once one fails, no lane sends a later batch's messages until
//!   the pipeline has collected every batch in flight and sends them again, oldest first, so
//!   no queue receives a message before an earlier one of its own that was not acknowledged.
//! - Nothing is sent for a batch holding a message the broker cannot take (over
//!   `max_message_bytes`): the batch fails naming table, key and position.
#![deny(missing_docs)]

mod acl;
mod config;
mod remoting;
mod route;
pub mod verify;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_core::sink::{DeliveryItem, Sink, SinkError};
use sluice_core::{Event, TableSpec};
use sluice_format::{Format, SourceInfo};
use sluice_mq::tickets::{batch_error, Failure, Tracker};
use sluice_mq::{Routing, Shaper};
use tokio::sync::mpsc;

pub use acl::Credentials;
pub use config::{topic_problem, RawRocketmq, RocketmqSettings};
use remoting::{code, status, Command, Connection};
use route::Queue;

/// RocketMQ destination settings.
#[derive(Debug, Clone)]
pub struct RocketmqConfig {
    /// Name server addresses, tried in order.
    pub namesrv: Vec<String>,
    /// Topics, keys, partitions (shared by every message-queue destination).
    pub routing: Routing,
    /// Tag template (`{db}`, `{table}`).
    pub tag: String,
    /// Producer group named in every send.
    pub producer_group: String,
    /// How long one request may take (connect, send, answer).
    pub send_timeout: Duration,
    /// Create missing topics on every master broker.
    pub create_topics: bool,
    /// Read and write queues of a topic Sluice creates.
    pub queues: i32,
    /// Largest message body sent (the broker's `maxMessageSize`, 4 MiB by default); a batch
    /// request's body stays under it too.
    pub max_message_bytes: usize,
    /// Most messages in one batch request (1: every message is its own request).
    pub batch_messages: usize,
    /// ACL credentials every request is signed with.
    pub credentials: Option<Arc<Credentials>>,
}

/// One message ready for its lane.
struct Outgoing {
    index: usize,
    cmd: Command,
}

/// One message for a queue, before it is put in a request.
struct Single {
    index: usize,
    topic: String,
    broker: String,
    queue: i32,
    /// Its properties, encoded.
    props: String,
    body: Vec<u8>,
}

/// The request for a run of messages of one topic to one queue: a plain send for one, a batch
/// send for more (each message keeps its own properties).
fn request(group: &str, born: u64, run: Vec<Single>) -> Outgoing {
    let index = run.first().map_or(0, |m| m.index);
    let (topic, broker, queue) = run
        .first()
        .map(|m| (m.topic.clone(), m.broker.clone(), m.queue))
        .unwrap_or_default();
    let batch = run.len() > 1;
    let (props, body) = if batch {
        let mut body =
            Vec::with_capacity(run.iter().map(|m| m.body.len() + m.props.len() + 22).sum());
        for m in &run {
            // A batch entry as the Java client's MessageDecoder writes it: total size, magic
            // code 0, body CRC 0, flag, body, properties.
            let size = 4 + 4 + 4 + 4 + 4 + m.body.len() + 2 + m.props.len();
            body.extend_from_slice(&(size as i32).to_be_bytes());
            body.extend_from_slice(&0i32.to_be_bytes());
            body.extend_from_slice(&0i32.to_be_bytes());
            body.extend_from_slice(&0i32.to_be_bytes());
            body.extend_from_slice(&(m.body.len() as i32).to_be_bytes());
            body.extend_from_slice(&m.body);
            body.extend_from_slice(&(m.props.len() as i16).to_be_bytes());
            body.extend_from_slice(m.props.as_bytes());
        }
        ("WAIT\u{1}true\u{2}".to_string(), body)
    } else {
        let mut run = run;
        run.pop().map(|m| (m.props, m.body)).unwrap_or_default()
    };
    let mut cmd = Command::request(
        if batch {
            code::SEND_BATCH_MESSAGE
        } else {
            code::SEND_MESSAGE_V2
        },
        [
            ("a", group.to_string()),
            ("b", topic),
            ("c", "TBW102".to_string()),
            ("d", "4".to_string()),
            ("e", queue.to_string()),
            ("f", "0".to_string()),
            ("g", born.to_string()),
            ("h", "0".to_string()),
            ("i", props),
            ("j", "0".to_string()),
            ("k", "false".to_string()),
            ("m", batch.to_string()),
            ("n", broker),
        ],
    );
    cmd.body = body;
    Outgoing { index, cmd }
}

/// A batch's messages for one lane, in batch order.
struct Job {
    ticket: u64,
    msgs: Vec<Outgoing>,
}

/// The RocketMQ destination.
pub struct RocketmqSink {
    cfg: RocketmqConfig,
    shaper: Shaper,
    rt: tokio::runtime::Runtime,
    /// Write queues of each topic checked or created.
    topics: HashMap<String, Arc<Vec<Queue>>>,
    /// One lane per (broker address, queue id).
    lanes: HashMap<(String, i32), mpsc::UnboundedSender<Job>>,
    tracker: Arc<Tracker>,
    /// Set by a lane whose send failed: later jobs fail without sending until every batch in
    /// flight was collected.
    halted: Arc<AtomicBool>,
    next_ticket: u64,
    acked_bytes: u64,
    /// Makes each message's UNIQ_KEY unique.
    counter: Arc<AtomicU64>,
    started: u64,
}

/// A name-server or broker failure as the pipeline sees it: unreachable is transient, refused
/// is definite.
fn route_error(e: route::RouteError) -> SinkError {
    match e {
        route::RouteError::Unreachable(m) => SinkError::Unavailable(m),
        route::RouteError::Refused(m) => SinkError::Rejected(m),
    }
}

/// Whether the name servers answer and know at least one master broker (the service's
/// precheck and connection test).
pub fn reachable(cfg: &RocketmqConfig) -> Result<(), SinkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SinkError::Config(format!("runtime: {e}")))?;
    let brokers = rt
        .block_on(route::brokers(
            &cfg.namesrv,
            cfg.send_timeout,
            cfg.credentials.as_ref(),
        ))
        .map_err(route_error)?;
    if brokers.is_empty() {
        return Err(SinkError::Unavailable(format!(
            "rocketmq: the name server {} knows no master broker; start a broker registered with it",
            cfg.namesrv.join(";")
        )));
    }
    Ok(())
}

impl RocketmqSink {
    /// A sink writing `format` (connects on first use).
    pub fn new(
        cfg: RocketmqConfig,
        format: Box<dyn Format>,
        source: SourceInfo,
    ) -> Result<Self, SinkError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-rocketmq")
            .enable_all()
            .build()
            .map_err(|e| SinkError::Config(format!("runtime: {e}")))?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Self {
            shaper: Shaper::new(cfg.routing.clone(), format, source),
            cfg,
            rt,
            topics: HashMap::new(),
            lanes: HashMap::new(),
            tracker: Arc::new(Tracker::default()),
            halted: Arc::new(AtomicBool::new(false)),
            next_ticket: 0,
            acked_bytes: 0,
            counter: Arc::new(AtomicU64::new(0)),
            started,
        })
    }

    /// The write queues of `topic`: read from the name server, or created when missing and
    /// allowed.
    fn ensure(&mut self, topic: &str) -> Result<Arc<Vec<Queue>>, SinkError> {
        ensure(&self.cfg, &self.rt, &mut self.topics, topic)
    }
}

fn ensure(
    cfg: &RocketmqConfig,
    rt: &tokio::runtime::Runtime,
    topics: &mut HashMap<String, Arc<Vec<Queue>>>,
    topic: &str,
) -> Result<Arc<Vec<Queue>>, SinkError> {
    if let Some(q) = topics.get(topic) {
        return Ok(q.clone());
    }
    if let Some(p) = topic_problem(topic) {
        return Err(SinkError::Config(format!("rocketmq topic: {p}")));
    }
    let timeout = cfg.send_timeout;
    let found = rt
        .block_on(route::queues(
            &cfg.namesrv,
            topic,
            timeout,
            cfg.credentials.as_ref(),
        ))
        .map_err(route_error)?;
    let queues = match found {
        Some(q) if !q.is_empty() => {
            if cfg.routing.mode != sluice_mq::PartitionMode::One
                && q.len() as i32 != cfg.queues
                && cfg.create_topics
            {
                tracing::warn!(
                    "rocketmq topic {topic} exists with {} write queues (configured {}); hashing over its {}",
                    q.len(),
                    cfg.queues,
                    q.len()
                );
            }
            q
        }
        Some(_) => {
            return Err(SinkError::Rejected(format!(
                "rocketmq topic {topic} has no writable queue on any master broker; give it write \
                 queues (mqadmin updateTopic -t {topic} -w N) or grant write permission"
            )))
        }
        None if cfg.create_topics => {
            let brokers = rt
                .block_on(route::brokers(
                    &cfg.namesrv,
                    timeout,
                    cfg.credentials.as_ref(),
                ))
                .map_err(route_error)?;
            if brokers.is_empty() {
                return Err(SinkError::Unavailable(format!(
                    "rocketmq: no broker is registered with the name server {} yet, so topic {topic} cannot be created",
                    cfg.namesrv.join(";")
                )));
            }
            let mut queues = Vec::new();
            for (name, addr) in &brokers {
                rt.block_on(route::create(
                    addr,
                    topic,
                    cfg.queues,
                    timeout,
                    cfg.credentials.as_ref(),
                ))
                .map_err(route_error)?;
                queues.extend((0..cfg.queues).map(|id| Queue {
                    broker: name.clone(),
                    addr: addr.clone(),
                    id,
                }));
            }
            tracing::info!(
                "rocketmq: created topic {topic} with {} queues on {} broker(s)",
                cfg.queues,
                brokers.len()
            );
            queues
        }
        None => {
            return Err(SinkError::Config(format!(
                "rocketmq topic {topic} does not exist (name server {}); create it \
                 (mqadmin updateTopic -n {} -c CLUSTER -t {topic} -w {q} -r {q}) or set \
                 destination.create_topics: true",
                cfg.namesrv.join(";"),
                cfg.namesrv.join(";"),
                q = cfg.queues
            )))
        }
    };
    let queues = Arc::new(queues);
    topics.insert(topic.to_string(), queues.clone());
    Ok(queues)
}

/// Values may not hold the property separators.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\u{1}', '\u{2}']) {
        s.replace(['\u{1}', '\u{2}'], "\u{FFFD}").into()
    } else {
        s.into()
    }
}

/// The tag of a change: the template filled with its database and table; empty for changes
/// of no table.
fn tag_of(template: &str, e: &Event) -> String {
    let (db, table) = match e {
        Event::Row(r) => (r.table.id.db.as_str(), r.table.id.table.as_str()),
        Event::Ddl(d) => match &d.table {
            Some(t) => (t.db.as_str(), t.table.as_str()),
            None => return String::new(),
        },
        _ => return String::new(),
    };
    template.replace("{db}", db).replace("{table}", table)
}

/// What a broker's answer other than SUCCESS means: only SEND_OK counts as delivered, and of
/// the rest only a refusal of the message itself (or of its sender) is not worth retrying.
fn classify(addr: &str, r: &Command) -> Failure {
    let why = format!("rocketmq broker {addr} answered {}", r.why());
    match r.code {
        status::MESSAGE_ILLEGAL => Failure::Refused(why),
        status::NO_PERMISSION => Failure::Refused(format!(
            "{why}; check destination.access_key and secret_key (ACL) and the topic's write permission"
        )),
        status::FLUSH_DISK_TIMEOUT | status::SLAVE_NOT_AVAILABLE | status::FLUSH_SLAVE_TIMEOUT => {
            Failure::Transient(format!("{why}: stored but not as durably as required; sent again"))
        }
        _ => Failure::Transient(why),
    }
}

/// A lane: sends its jobs' messages one at a time on its own connection.
async fn lane(
    addr: String,
    mut rx: mpsc::UnboundedReceiver<Job>,
    tracker: Arc<Tracker>,
    halted: Arc<AtomicBool>,
    timeout: Duration,
    creds: Option<Arc<Credentials>>,
) {
    let mut conn: Option<Connection> = None;
    while let Some(mut job) = rx.recv().await {
        let mut result = Ok(());
        for m in &mut job.msgs {
            if halted.load(Ordering::SeqCst) {
                result = Err((
                    m.index,
                    Failure::Transient("an earlier message failed; sent again in order".into()),
                ));
                break;
            }
            if conn.is_none() {
                match Connection::open(&addr, timeout, creds.clone()).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        result = Err((m.index, Failure::Transient(format!("rocketmq broker {e}"))));
                        break;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { break };
            match c.call(&mut m.cmd, timeout).await {
                Ok(r) if r.code == status::SUCCESS => {}
                Ok(r) => {
                    let f = classify(&addr, &r);
                    result = Err((m.index, f));
                    break;
                }
                Err(e) => {
                    conn = None;
                    result = Err((m.index, Failure::Transient(format!("rocketmq broker {e}"))));
                    break;
                }
            }
        }
        if result.is_err() {
            halted.store(true, Ordering::SeqCst);
        }
        tracker.report(job.ticket, result);
    }
}

impl Sink for RocketmqSink {
    fn prepare(&mut self, tables: &[TableSpec]) -> Result<(), SinkError> {
        // Every table's topic is checked before anything is sent, naming the table.
        for t in tables {
            config::checked_topic(&self.shaper.routing().topics, &t.dest)
                .map_err(SinkError::Config)?;
        }
        for t in self.shaper.routing().topics(tables) {
            self.ensure(&t)?;
        }
        Ok(())
    }

    fn send(&mut self, items: &[DeliveryItem]) -> Result<u64, SinkError> {
        // A failure halted the lanes; every batch in flight has been collected (the pipeline
        // sends them again now): start over, with routes read afresh.
        if self.tracker.idle() && self.halted.swap(false, Ordering::SeqCst) {
            self.topics.clear();
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let (cfg, rt, topics) = (&self.cfg, &self.rt, &mut self.topics);
        let mut routes: HashMap<String, Arc<Vec<Queue>>> = HashMap::new();
        let msgs = self.shaper.shape(items, &mut |topic| {
            let q = ensure(cfg, rt, topics, topic)?;
            let n = q.len() as i32;
            routes.insert(topic.to_string(), q);
            Ok(n)
        })?;
        let born = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut lanes: Vec<((String, i32), Vec<Single>)> = Vec::new();
        let mut bytes = 0u64;
        for m in msgs {
            let item = &items[m.index];
            let key = sluice_mq::key_text(&m.key);
            if m.payload.len() > self.cfg.max_message_bytes {
                let (t, p) = sluice_mq::describe(&item.event);
                return Err(SinkError::Rejected(format!(
                    "the message of {t} (key {key}) at {p} is {} bytes; the RocketMQ broker takes \
                     {} (max_message_bytes, the broker's maxMessageSize); exclude the table or \
                     its large columns",
                    m.payload.len(),
                    self.cfg.max_message_bytes
                )));
            }
            let Some(queue) = routes
                .get(&m.topic)
                .and_then(|q| q.get(usize::try_from(m.partition).unwrap_or(0)))
            else {
                return Err(SinkError::Unavailable(format!(
                    "rocketmq topic {}: queue {} not in its route",
                    m.topic, m.partition
                )));
            };
            let mut props = String::new();
            let mut prop = |k: &str, v: &str| {
                props.push_str(k);
                props.push('\u{1}');
                props.push_str(&clean(v));
                props.push('\u{2}');
            };
            if !key.is_empty() {
                prop("KEYS", &key);
            }
            let tag = tag_of(&self.cfg.tag, &item.event);
            if !tag.is_empty() {
                prop("TAGS", &tag);
            }
            prop("WAIT", "true");
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            prop(
                "UNIQ_KEY",
                &format!(
                    "{:08X}{:08X}{:016X}",
                    std::process::id(),
                    self.started as u32,
                    n
                ),
            );
            for (k, v) in sluice_mq::headers(item) {
                prop(k, &v);
            }
            if props.len() > i16::MAX as usize {
                let (t, p) = sluice_mq::describe(&item.event);
                return Err(SinkError::Rejected(format!(
                    "the properties of the message of {t} (key {key}) at {p} are {} bytes; RocketMQ takes {}",
                    props.len(),
                    i16::MAX
                )));
            }
            bytes += (m.key.len() + m.payload.len()) as u64;
            let one = Single {
                index: m.index,
                topic: m.topic,
                broker: queue.broker.clone(),
                queue: queue.id,
                props,
                body: m.payload,
            };
            let lane = (queue.addr.clone(), queue.id);
            match lanes.iter_mut().find(|(l, _)| *l == lane) {
                Some((_, v)) => v.push(one),
                None => lanes.push((lane, vec![one])),
            }
        }
        // Runs of one topic in a lane go as batches (one request, stored as a unit, in order).
        let mut jobs: Vec<((String, i32), Vec<Outgoing>)> = Vec::with_capacity(lanes.len());
        for (lane, msgs) in lanes {
            let mut out = Vec::new();
            let mut run: Vec<Single> = Vec::new();
            let mut run_bytes = 0usize;
            for m in msgs {
                let fits = run.first().is_some_and(|f| f.topic == m.topic)
                    && run.len() < self.cfg.batch_messages
                    && run_bytes + m.body.len() + m.props.len() + 22 <= self.cfg.max_message_bytes;
                if !fits && !run.is_empty() {
                    out.push(request(
                        &self.cfg.producer_group,
                        born,
                        std::mem::take(&mut run),
                    ));
                    run_bytes = 0;
                }
                run_bytes += m.body.len() + m.props.len() + 22;
                run.push(m);
            }
            if !run.is_empty() {
                out.push(request(&self.cfg.producer_group, born, run));
            }
            jobs.push((lane, out));
        }
        self.tracker.open(ticket, jobs.len(), bytes);
        for (lane_key, msgs) in jobs {
            let job = Job { ticket, msgs };
            let tx = self.lanes.entry(lane_key.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                self.rt.spawn(lane(
                    lane_key.0.clone(),
                    rx,
                    self.tracker.clone(),
                    self.halted.clone(),
                    self.cfg.send_timeout,
                    self.cfg.credentials.clone(),
                ));
                tx
            });
            if let Err(mpsc::error::SendError(job)) = tx.send(job) {
                // The lane ended (its runtime is shutting down): the job fails.
                self.lanes.remove(&lane_key);
                self.tracker.report(
                    job.ticket,
                    Err((0, Failure::Transient("rocketmq lane stopped".into()))),
                );
            }
        }
        Ok(ticket)
    }

    fn wait(&mut self, ticket: u64, items: &[DeliveryItem]) -> Result<(), SinkError> {
        let bytes = self
            .tracker
            .wait(ticket)?
            .map_err(|failed| batch_error("rocketmq", "acknowledge", items, failed))?;
        self.acked_bytes += bytes;
        Ok(())
    }

    fn acknowledged_bytes(&self) -> u64 {
        self.acked_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(index: usize, body: &str) -> Single {
        Single {
            index,
            topic: "t".into(),
            broker: "b".into(),
            queue: 2,
            props: format!("KEYS\u{1}{index}\u{2}"),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn only_send_ok_is_delivered_and_only_refusals_of_the_message_stop() {
        let answer = |code| Command {
            code,
            remark: Some("r".into()),
            ..Command::default()
        };
        for code in [10, 11, 12] {
            assert!(
                matches!(classify("b", &answer(code)), Failure::Transient(ref m) if m.contains("not as durably")),
                "{code}"
            );
        }
        for code in [1, 2, 14, 17, 215] {
            assert!(
                matches!(classify("b", &answer(code)), Failure::Transient(_)),
                "{code}"
            );
        }
        assert!(matches!(classify("b", &answer(13)), Failure::Refused(_)));
        assert!(
            matches!(classify("b", &answer(16)), Failure::Refused(ref m) if m.contains("access_key"))
        );
    }

    #[test]
    fn one_message_is_a_plain_send_and_several_a_batch_of_entries() {
        let one = request("g", 5, vec![single(3, "x")]);
        assert_eq!((one.index, one.cmd.code), (3, code::SEND_MESSAGE_V2));
        assert_eq!(one.cmd.body, b"x");
        assert_eq!(
            one.cmd.ext.get("i").map(String::as_str),
            Some("KEYS\u{1}3\u{2}")
        );
        assert_eq!(one.cmd.ext.get("e").map(String::as_str), Some("2"));

        let two = request("g", 5, vec![single(4, "ab"), single(5, "c")]);
        assert_eq!((two.index, two.cmd.code), (4, code::SEND_BATCH_MESSAGE));
        assert_eq!(two.cmd.ext.get("m").map(String::as_str), Some("true"));
        // Each entry: size, magic 0, crc 0, flag 0, body length, body, properties length, properties.
        let b = &two.cmd.body;
        let size = i32::from_be_bytes(b[..4].try_into().expect("4")) as usize;
        assert_eq!(size, 20 + 2 + 2 + "KEYS\u{1}4\u{2}".len());
        assert_eq!(&b[16..20], &2i32.to_be_bytes());
        assert_eq!(&b[20..22], b"ab");
        let plen = i16::from_be_bytes(b[22..24].try_into().expect("2")) as usize;
        assert_eq!(&b[24..24 + plen], "KEYS\u{1}4\u{2}".as_bytes());
        assert_eq!(b.len(), size + 20 + 1 + 2 + "KEYS\u{1}5\u{2}".len());
    }
}
