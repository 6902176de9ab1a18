//! The Kafka destination's side of a verification: every message of a table's topic not read
//! yet (every partition, from where the last read ended, the first time from the beginning,
//! to at least the high watermark read at the start and on while what comes was written
//! before it), offered to a `Latest` (`sluice_core::verify`: the last message of a key by
//! source sequence wins, a stale one changes nothing, a delete removes the key).
//!
//! Message values are read in the formats of `sluice_mq::state::READABLE` (OMS, Canal, Maxwell); other
//! formats are refused.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use sluice_core::verify::{Latest, StateSide, VerifyColumn, VerifyError};
use sluice_core::TableId;
use sluice_mq::state::{image, readable};

use crate::{client_config, KafkaSettings};

/// A Kafka topic's state, read with a consumer of its own.
pub struct KafkaState {
    settings: KafkaSettings,
    /// Per table, where each partition's next read starts.
    next: HashMap<TableId, HashMap<i32, i64>>,
}

impl KafkaState {
    /// The side for `settings` (its format must be one of `sluice_mq::state::READABLE`).
    pub fn new(settings: &KafkaSettings) -> Result<Self, VerifyError> {
        readable("Kafka", &settings.format.name).map_err(VerifyError::Definite)?;
        Ok(Self {
            settings: settings.clone(),
            next: HashMap::new(),
        })
    }
}

fn unavailable(what: &str) -> impl Fn(rdkafka::error::KafkaError) -> VerifyError + '_ {
    move |e| VerifyError::Unavailable(format!("kafka: {what}: {e}"))
}

impl StateSide for KafkaState {
    fn read(
        &mut self,
        to: &TableId,
        columns: &[VerifyColumn],
        key_len: usize,
        latest: &mut Latest,
    ) -> Result<(), VerifyError> {
        let topic = self.settings.config.routing.topics.topic(to);
        let consumer: BaseConsumer = client_config(&self.settings.config)
            .set("group.id", "sluice-verify")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(unavailable("create a consumer"))?;
        let meta = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(30))
            .map_err(unavailable("read the topic's metadata"))?;
        let partitions: Vec<i32> = meta
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(VerifyError::Definite(format!(
                "kafka: topic {topic} (of {}.{}) does not exist",
                to.db, to.table
            )));
        }
        // Where each partition ends now; what comes later is not waited for.
        let next = self.next.entry(to.clone()).or_default();
        let mut ends = HashMap::new();
        let mut list = TopicPartitionList::new();
        for &p in &partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(30))
                .map_err(unavailable("read the offsets"))?;
            let from = next.get(&p).copied().unwrap_or(low).max(low);
            if high > from {
                ends.insert(p, high);
                list.add_partition_offset(&topic, p, Offset::Offset(from))
                    .map_err(unavailable("assign"))?;
            }
        }
        consumer.assign(&list).map_err(unavailable("assign"))?;
        // A key's messages are in one partition (its partition follows from the key or the
        // table), so offsets order them.
        let single = matches!(
            self.settings.config.routing.topics,
            sluice_mq::TopicMap::Single(_)
        );
        let mut quiet = Instant::now();
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(i64::MAX, |d| d.as_millis() as i64);
        loop {
            // Past every end, what is still fetched is read until a second passes without a
            // message, or a message written after this read began comes: a broker may report
            // a partition's end as the first offset of its last batch (tansu 0.6 does), and
            // the rest of that batch comes with it; on a busy topic the messages never stop.
            let draining = ends.is_empty();
            let wait = Duration::from_millis(if draining { 1000 } else { 500 });
            let Some(m) = consumer.poll(wait) else {
                if draining {
                    break;
                }
                if quiet.elapsed() > Duration::from_secs(60) {
                    return Err(VerifyError::Unavailable(format!(
                        "kafka: topic {topic} gave no message for 60 s before its end"
                    )));
                }
                continue;
            };
            quiet = Instant::now();
            let m = m.map_err(unavailable("read"))?;
            if draining && m.timestamp().to_millis().is_some_and(|t| t > started_ms) {
                // Left for the next read (`next` does not pass it).
                break;
            }
            let (p, off) = (m.partition(), m.offset());
            if ends.get(&p).is_some_and(|&end| off + 1 >= end) {
                ends.remove(&p);
            }
            next.insert(p, off + 1);
            let header = |name: &str| -> Option<String> {
                let h = m.headers()?;
                h.iter()
                    .find(|x| x.key == name)
                    .and_then(|x| x.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            if single
                && (header("sluice.db").as_deref() != Some(&to.db)
                    || header("sluice.table").as_deref() != Some(&to.table))
            {
                continue;
            }
            let Some(payload) = m.payload() else { continue };
            let Some(image) = image(&self.settings.format.name, payload, columns)
                .map_err(|e| VerifyError::Definite(format!("kafka: {topic} offset {off}: {e}")))?
            else {
                continue;
            };
            let seq = header("sluice.sequence").and_then(|s| s.parse().ok());
            latest.offer(seq, (p.into(), off), image, key_len);
        }
        Ok(())
    }
}
