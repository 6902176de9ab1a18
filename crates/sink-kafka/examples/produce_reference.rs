//! The reference of `bench/kafka-catchup`: librdkafka alone (through the same `rdkafka` build
//! Sluice uses) producing the messages Sluice produced, to the same broker, with Sluice's
//! producer settings (acks=all, idempotent, lz4, linger 5 ms, 1 MB batches).
//!
//! `produce_reference BROKERS FROM_TOPIC TO_TOPIC N`: reads up to 2,000 messages of FROM_TOPIC
//! (keys, values, headers), creates TO_TOPIC with FROM_TOPIC's partition count, produces N
//! messages cycling through the sample, waits for every delivery report, and prints
//! `librdkafka_produce: R msg/s`.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Default)]
struct Counted {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counted {}

impl ProducerContext for Counted {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

type Sample = Vec<(Vec<u8>, Vec<u8>, Vec<(String, Vec<u8>)>)>;

fn sample(brokers: &str, topic: &str) -> Result<(Sample, i32), Box<dyn Error>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "sluice-produce-reference")
        .set("enable.auto.commit", "false")
        .create()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = md
        .topics()
        .first()
        .map(|t| t.partitions().len() as i32)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("topic {topic} has no partitions"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < 2000 && Instant::now() < deadline {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| (x.key.to_string(), x.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                    headers,
                ));
            }
            Some(Err(e)) => return Err(e.into()),
            None if !out.is_empty() => break,
            None => {}
        }
    }
    if out.is_empty() {
        return Err(format!("no message read from {topic}").into());
    }
    Ok((out, partitions))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, from, to, n] = args.as_slice() else {
        return Err("usage: produce_reference BROKERS FROM_TOPIC TO_TOPIC N".into());
    };
    let n: u64 = n.parse()?;
    let (sample, partitions) = sample(brokers, from)?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let topic = NewTopic::new(to, partitions, TopicReplication::Fixed(1));
    for r in rt.block_on(admin.create_topics(&[topic], &AdminOptions::new()))? {
        r.map_err(|(t, e)| format!("create {t}: {e}"))?;
    }
    let producer: ThreadedProducer<Counted> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "0")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create_with_context(Counted::default())?;
    let size: usize = sample
        .iter()
        .map(|(k, v, _)| k.len() + v.len())
        .sum::<usize>()
        / sample.len();
    let t0 = Instant::now();
    for i in 0..n {
        let (key, value, hs) = &sample[(i % sample.len() as u64) as usize];
        let mut headers = OwnedHeaders::new();
        for (k, v) in hs {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record = BaseRecord::to(to).key(key).payload(value).headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let ctx = producer.context();
    while ctx.delivered.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = t0.elapsed().as_secs_f64();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{failed} messages were not delivered").into());
    }
    println!(
        "librdkafka_produce: {:.0} msg/s ({n} messages of {size} bytes of key and value, {secs:.2}s)",
        n as f64 / secs
    );
    Ok(())
}
