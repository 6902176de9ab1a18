//! `sluice-rocketmq-probe roundtrip --namesrv ADDR --topic TOPIC`: creates TOPIC on every broker
//! the name server knows (automatic topic creation is off in the harness), sends one message with
//! the rocketmq-rust client's producer, and waits until its push consumer receives that same
//! message. Prints `round trip ok: TOPIC ...` and exits 0 only after the round trip.
//!
//! `sluice-rocketmq-probe consume --namesrv ADDR --topic TOPIC`: reads every queue of TOPIC from
//! its first to its last offset with the client's pull consumer and prints one JSON line per
//! message: `topic`, `queue`, `offset`, `properties` (keys, tags and user properties) and
//! `body` (as UTF-8 text).
//!
//! `sluice-rocketmq-probe produce --namesrv ADDR --topic TOPIC --count N [--batch B]`: the producer alone,
//! for benchmarks (see `produce`).
//!
//! `sluice-rocketmq-probe send --namesrv ADDR --topic TOPIC --body TEXT [--queue ID] [--property K=V ...]`:
//! one message with those user properties, as a tampering writer would (the verification tests).

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[allow(deprecated)]
use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext,
    ConsumeConcurrentlyStatus, DefaultMQAdminExt, DefaultMQPullConsumer, DefaultMQProducer, DefaultMQPushConsumer,
    MQAdminMutationExt, MQAdminReadExt, MQPushConsumer, MessageListenerConcurrently, SendStatus,
    TelemetryHandle,
};
use rocketmq_model::common::config::TopicConfig;
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Forward(std::sync::Mutex<mpsc::Sender<Vec<u8>>>);

impl MessageListenerConcurrently for Forward {
    fn consume_message(
        &self,
        msgs: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> ClientResult<ConsumeConcurrentlyStatus> {
        if let Ok(tx) = self.0.lock() {
            for m in msgs {
                let _ = tx.send(m.body().map(|b| b.to_vec()).unwrap_or_default());
            }
        }
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One message as a JSON line.
fn line_of(m: &MessageExt) -> String {
    let mut props: Vec<String> = m
        .properties()
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k.as_str()), json_str(v.as_str())))
        .collect();
    props.sort();
    let body = m.body().map(|b| String::from_utf8_lossy(&b).to_string()).unwrap_or_default();
    format!(
        "{{\"topic\":{},\"queue\":{},\"offset\":{},\"properties\":{{{}}},\"body\":{}}}",
        json_str(m.topic().as_str()),
        m.queue_id(),
        m.queue_offset(),
        props.join(","),
        json_str(&body)
    )
}

/// Pulls every queue of `topic` from its first to its last offset (as they are when the
/// queue's turn comes), in offset order, with the client's pull consumer. Classic Pull
/// (deprecated in favour of the lite pull consumer) reads exact offset ranges of chosen
/// queues, which is what a test comparing every stored message needs.
#[allow(deprecated)]
async fn consume(runtime: Arc<ClientRuntime>, namesrv: &str, topic: &str) -> Result<(), Error> {
    let group = format!("sluice_probe_consume_{}", std::process::id());
    let consumer = DefaultMQPullConsumer::builder(runtime)
        .consumer_group(group)
        .name_server_addr(namesrv.to_string())
        .consumer_pull_timeout(Duration::from_secs(5))
        .build()?;
    consumer.start().await?;
    let mut queues = consumer.fetch_subscribe_message_queues(topic).await?;
    queues.sort_by_key(|q| (q.broker_name().to_string(), q.queue_id()));
    let mut count = 0usize;
    for q in &queues {
        let (mut offset, max) = (consumer.min_offset(q).await?, consumer.max_offset(q).await?);
        let mut empty = 0;
        while offset < max {
            let result = consumer.pull(q, "*", offset, 32).await?;
            let found = result.msg_found_list().unwrap_or_default();
            // A pull that finds nothing below the queue's end (a restarted broker still
            // rebuilding what it serves) may still answer a later next offset: never take it,
            // which would skip stored messages. Ask again, for 30 s at most.
            let Some(last) = found.last().map(|m| m.queue_offset()) else {
                empty += 1;
                if empty > 150 {
                    return Err(format!(
                        "queue {} of {topic}: nothing readable at offset {offset} of {max} for 30 s ({:?}, next {})",
                        q.queue_id(),
                        result.pull_status(),
                        result.next_begin_offset()
                    )
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            empty = 0;
            for m in found {
                println!("{}", line_of(m));
                count += 1;
            }
            // Go on after the last message read, whatever the answer said comes next.
            offset = last + 1;
        }
    }
    eprintln!("consumed {count} messages of {topic} from {} queues", queues.len());
    // The consumer's shutdown takes 20 s (it unregisters from every broker); its group is used
    // once and committed nothing, so the process ends here instead.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

/// The producer alone, for benchmarks: takes up to 2,000 messages of `topic` as samples (body,
/// keys, tags, user properties) and sends `count` messages cycling over them back into the same
/// topic (whose route the name server already knows), one task per write queue, each waiting
/// for every send result before its next send, as Sluice's lanes do; `batch` > 1 sends that
/// many per request (the producer's batch send). Prints
/// `rocketmq_produce: N msg/s (...)`.
#[allow(deprecated)]
async fn produce(runtime: Arc<ClientRuntime>, namesrv: &str, topic: &str, count: usize, batch: usize) -> Result<(), Error> {
    let consumer = DefaultMQPullConsumer::builder(runtime.clone())
        .consumer_group(format!("sluice_probe_sample_{}", std::process::id()))
        .name_server_addr(namesrv.to_string())
        .consumer_pull_timeout(Duration::from_secs(5))
        .build()?;
    consumer.start().await?;
    let mut samples: Vec<Message> = Vec::new();
    for q in consumer.fetch_subscribe_message_queues(topic).await? {
        let (mut offset, max) = (consumer.min_offset(&q).await?, consumer.max_offset(&q).await?);
        while offset < max && samples.len() < 2000 {
            let result = consumer.pull(&q, "*", offset, 32).await?;
            for m in result.msg_found_list().unwrap_or_default() {
                let mut b = Message::builder().topic(topic.to_string()).body_slice(&m.body().unwrap_or_default());
                for (k, v) in m.properties() {
                    b = match k.as_str() {
                        "KEYS" => b.keys(vec![v.to_string()]),
                        "TAGS" => b.tags(v.to_string()),
                        k if k.starts_with("sluice.") => b.raw_property(k.to_string(), v.to_string())?,
                        _ => b,
                    };
                }
                samples.push(b.build_unchecked());
            }
            let next = i64::try_from(result.next_begin_offset()).unwrap_or(max);
            if next <= offset {
                break;
            }
            offset = next;
        }
    }
    if samples.is_empty() {
        return Err(format!("topic {topic} has no message to take as a sample").into());
    }
    let bytes: usize = samples.iter().map(|m| m.body().map_or(0, |b| b.len())).sum();
    let mut producer = DefaultMQProducer::builder(runtime)
        .producer_group(format!("sluice_probe_produce_{}", std::process::id()))
        .name_server_addr(namesrv.to_string())
        .build();
    producer.start().await?;
    let queues = producer.fetch_publish_message_queues(topic).await?;
    if queues.is_empty() {
        return Err(format!("topic {topic} has no write queue").into());
    }
    let samples = Arc::new(samples);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, q) in queues.iter().cloned().enumerate() {
        let (producer, samples) = (producer.clone(), samples.clone());
        let share = count / queues.len() + usize::from(i < count % queues.len());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while n < share {
                if batch <= 1 {
                    let m = samples[n % samples.len()].clone();
                    let r = producer.send_to_queue_with_timeout(m, q.clone(), 5_000).await?;
                    if r.is_none_or(|r| r.send_status != SendStatus::SendOk) {
                        return Err::<(), Error>("a send was not SEND_OK".into());
                    }
                    n += 1;
                } else {
                    let k = batch.min(share - n);
                    let ms: Vec<Message> = (n..n + k).map(|i| samples[i % samples.len()].clone()).collect();
                    let r = producer.send_batch_to_queue_with_timeout(ms, q.clone(), 5_000).await?;
                    if r.send_status != SendStatus::SendOk {
                        return Err::<(), Error>("a batch send was not SEND_OK".into());
                    }
                    n += k;
                }
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "rocketmq_produce: {:.0} msg/s ({count} messages, {} bytes of body on average, {} queues, {batch} per request, {secs:.1} s)",
        count as f64 / secs,
        bytes / samples.len(),
        queues.len()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

/// Sends one message with `props` (`K=V`) to queue id `queue` (any when None), synchronously;
/// SEND_OK or an error.
async fn send_one(runtime: Arc<ClientRuntime>, namesrv: &str, topic: &str, body: &str, props: &[String], queue: Option<i32>) -> Result<(), Error> {
    let mut producer = DefaultMQProducer::builder(runtime)
        .producer_group(format!("sluice_probe_send_{}", std::process::id()))
        .name_server_addr(namesrv.to_string())
        .build();
    producer.start().await?;
    let mut b = Message::builder().topic(topic.to_string()).body_slice(body.as_bytes());
    for p in props {
        let (k, v) = p.split_once('=').ok_or("a --property is K=V")?;
        b = b.raw_property(k.to_string(), v.to_string())?;
    }
    let m = b.build_unchecked();
    let r = match queue {
        Some(id) => {
            let q = producer
                .fetch_publish_message_queues(topic)
                .await?
                .into_iter()
                .find(|q| q.queue_id() == id)
                .ok_or_else(|| format!("topic {topic} has no queue {id}"))?;
            producer.send_to_queue_with_timeout(m, q, 5_000).await?
        }
        None => producer.send_with_timeout(m, 5_000).await?,
    };
    producer.shutdown().await;
    match r {
        Some(r) if r.send_status == SendStatus::SendOk => {
            println!("sent to queue {:?} offset {}", r.message_queue, r.queue_offset);
            Ok(())
        }
        other => Err(format!("the send was not SEND_OK: {other:?}").into()),
    }
}

fn arg(args: &[String], name: &str) -> Result<String, Error> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .ok_or_else(|| format!("missing {name}").into())
}

async fn create_topic(runtime: Arc<ClientRuntime>, namesrv: &str, topic: &str) -> Result<usize, Error> {
    let mut admin = DefaultMQAdminExt::new(runtime);
    admin.set_namesrv_addr(namesrv);
    admin.start().await?;
    // The broker registers with the name server a moment after it starts: retry until it shows.
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        let brokers: Vec<String> = match admin.examine_broker_cluster_info().await {
            Ok(info) => info
                .broker_addr_table
                .unwrap_or_default()
                .values()
                .filter_map(|b| b.broker_addrs().get(&0).map(|a| a.to_string()))
                .collect(),
            Err(_) => Vec::new(),
        };
        if !brokers.is_empty() {
            let mut created = 0;
            for addr in &brokers {
                admin.upsert_topic_config(addr.as_str().into(), TopicConfig::with_queues(topic, 4, 4)).await?;
                created += 1;
            }
            break Ok(created);
        }
        if Instant::now() > deadline {
            break Err("no broker registered with the name server within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    admin.shutdown().await;
    result
}

async fn roundtrip(runtime: Arc<ClientRuntime>, namesrv: &str, topic: &str) -> Result<(), Error> {
    let brokers = create_topic(runtime.clone(), namesrv, topic).await?;
    let group = format!("{topic}_probe");
    let (tx, rx) = mpsc::channel();
    let mut consumer = DefaultMQPushConsumer::builder(runtime.clone())
        .consumer_group(group.clone())
        .name_server_addr(namesrv.to_string())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    consumer.subscribe(topic, "*").await?;
    consumer.register_message_listener_concurrently(Forward(std::sync::Mutex::new(tx)));
    consumer.start().await?;

    let mut producer = DefaultMQProducer::builder(runtime)
        .producer_group(format!("{group}_producer"))
        .name_server_addr(namesrv.to_string())
        .build();
    producer.start().await?;
    let body = format!("sluice-probe-{}-{}", std::process::id(), Instant::now().elapsed().as_nanos());
    let message = Message::builder()
        .topic(topic.to_string())
        .keys(vec!["sluice-probe".into()])
        .tags("probe")
        .body_slice(body.as_bytes())
        .build_unchecked();
    // The route of a fresh topic reaches the name server with the broker's next heartbeat.
    let deadline = Instant::now() + Duration::from_secs(45);
    let receipt = loop {
        match producer.send_with_timeout(message.clone(), 5_000).await {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                eprintln!("send not accepted yet ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let wait_until = Instant::now() + Duration::from_secs(45);
    let received = tokio::task::spawn_blocking(move || loop {
        let left = wait_until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) if b == body.as_bytes() => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    })
    .await?;
    producer.shutdown().await;
    consumer.shutdown().await;
    if !received {
        return Err(format!("message sent ({receipt:?}) but not received within 45 s").into());
    }
    println!("round trip ok: {topic} (created on {brokers} broker(s); {receipt:?})");
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verb = args.first().cloned().unwrap_or_default();
    if !["roundtrip", "consume", "produce", "send"].contains(&verb.as_str()) {
        return Err("usage: sluice-rocketmq-probe roundtrip|consume|produce|send --namesrv HOST:PORT --topic TOPIC [--count N] [--batch B] [--body TEXT --property K=V ...]".into());
    }
    let props: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--property")
        .map(|w| w[1].clone())
        .collect();
    let count: usize = arg(&args, "--count").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let batch: usize = arg(&args, "--batch").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let namesrv = arg(&args, "--namesrv")?;
    let topic = arg(&args, "--topic")?;
    let owner = RuntimeOwner::plan(RuntimeConfig {
        thread_name: "sluice-rocketmq-probe".to_string(),
        ..Default::default()
    })?
    .build()?;
    let runtime = ClientRuntime::try_new(
        owner.root_context().component("probe"),
        ClientRuntimeConfig::default(),
        TelemetryHandle::noop(),
    )?;
    let tokio_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = tokio_rt.block_on(async {
        let r = if verb == "produce" {
            tokio::time::timeout(Duration::from_secs(3600), produce(runtime.clone(), &namesrv, &topic, count, batch)).await
        } else if verb == "send" {
            let body = arg(&args, "--body").unwrap_or_default();
            let queue = arg(&args, "--queue").ok().and_then(|v| v.parse().ok());
            tokio::time::timeout(Duration::from_secs(60), send_one(runtime.clone(), &namesrv, &topic, &body, &props, queue)).await
        } else if verb == "consume" {
            tokio::time::timeout(Duration::from_secs(150), consume(runtime.clone(), &namesrv, &topic)).await
        } else {
            tokio::time::timeout(Duration::from_secs(120), roundtrip(runtime.clone(), &namesrv, &topic)).await
        };
        let _ = runtime.shutdown().await;
        r
    });
    match result {
        Ok(r) => r,
        Err(_) => Err("round trip did not finish within 120 s".into()),
    }
}
