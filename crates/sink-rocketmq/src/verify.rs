//! The RocketMQ destination's side of a verification: the latest state per key of a table,
//! rebuilt from its topic. Every queue of the topic (as the name server routes it) is pulled
//! from its first stored offset to the offset that ended it when its turn came; messages are
//! read as the broker stores them (the commit-log layout, [`decode`]). The rule of which
//! message is a key's state is `sluice_mq::state`'s (source sequence from the `sluice.sequence`
//! property, then the queue offset).
//!
//! Message bodies are read in the formats of `sluice_mq::state::READABLE` (OMS, Canal, Maxwell); other formats are
//! refused. With `single_topic`, the messages whose `sluice.db` and `sluice.table` properties
//! name the table are its own.

use std::collections::HashMap;
use std::time::Duration;

use sluice_core::verify::{Latest, StateSide, VerifyColumn, VerifyError};
use sluice_core::TableId;
use sluice_mq::state::{image, readable};

use crate::remoting::{code, status, Command, Connection};
use crate::{route, RocketmqSettings};

/// The consumer group named in pulls; it subscribes to nothing (each pull carries its own
/// subscription) and commits no offset.
const GROUP: &str = "sluice-verify";

/// Messages asked for in one pull.
const PULL_BATCH: usize = 32;

/// A RocketMQ topic's state, read with pulls of its own.
pub struct RocketmqState {
    settings: RocketmqSettings,
    rt: tokio::runtime::Runtime,
    /// Per table, where each queue's next read starts.
    next: HashMap<TableId, HashMap<route::Queue, i64>>,
}

impl RocketmqState {
    /// The side for `settings` (its format must be one of `sluice_mq::state::READABLE`).
    pub fn new(settings: &RocketmqSettings) -> Result<Self, VerifyError> {
        readable("RocketMQ", &settings.format.name).map_err(VerifyError::Definite)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| VerifyError::Definite(format!("runtime: {e}")))?;
        Ok(Self {
            settings: settings.clone(),
            rt,
            next: HashMap::new(),
        })
    }
}

/// One message as the broker stored it: the parts verification reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its offset in its queue.
    pub queue_offset: i64,
    /// Its body.
    pub body: Vec<u8>,
    /// Its properties (user and system).
    pub properties: HashMap<String, String>,
}

/// Reads the messages of a pull's body: each in the commit-log layout (total size, magic code,
/// body CRC, queue id, flag, queue offset, commit-log offset, system flag, born time and host,
/// store time and host, reconsume times, prepared transaction offset, body, topic, properties).
pub fn decode(mut b: &[u8]) -> Result<Vec<Stored>, String> {
    const MAGIC_V1: i32 = -626_843_481;
    const MAGIC_V2: i32 = -626_843_477;
    const COMPRESSED: i32 = 1;
    const BORN_HOST_V6: i32 = 1 << 4;
    const STORE_HOST_V6: i32 = 1 << 5;
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err("a message is cut short".into());
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn int<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], String> {
        take(b, N)?
            .try_into()
            .map_err(|_| "a message is cut short".to_string())
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let size = i32::from_be_bytes(int(&mut b)?);
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s >= 4 && s - 4 <= b.len())
            .ok_or_else(|| format!("a message of {size} bytes in a body of {}", b.len() + 4))?;
        let mut m = take(&mut b, size - 4)?;
        let magic = i32::from_be_bytes(int(&mut m)?);
        if magic != MAGIC_V1 && magic != MAGIC_V2 {
            return Err(format!("unknown message magic code {magic}"));
        }
        take(&mut m, 4 + 4 + 4)?; // body CRC, queue id, flag
        let queue_offset = i64::from_be_bytes(int(&mut m)?);
        take(&mut m, 8)?; // commit-log offset
        let sys_flag = i32::from_be_bytes(int(&mut m)?);
        let host = |v6: bool| if v6 { 16 + 4 } else { 4 + 4 };
        take(&mut m, 8 + host(sys_flag & BORN_HOST_V6 != 0))?;
        take(&mut m, 8 + host(sys_flag & STORE_HOST_V6 != 0))?;
        take(&mut m, 4 + 8)?; // reconsume times, prepared transaction offset
        let body_len = i32::from_be_bytes(int(&mut m)?).max(0) as usize;
        let body = take(&mut m, body_len)?.to_vec();
        if sys_flag & COMPRESSED != 0 {
            return Err(format!(
                "the message at queue offset {queue_offset} is compressed; Sluice writes none"
            ));
        }
        let topic_len = if magic == MAGIC_V2 {
            i16::from_be_bytes(int(&mut m)?).max(0) as usize
        } else {
            usize::from(u8::from_be_bytes(int(&mut m)?))
        };
        take(&mut m, topic_len)?;
        let props_len = i16::from_be_bytes(int(&mut m)?).max(0) as usize;
        let props = take(&mut m, props_len)?;
        let properties = props
            .split(|&c| c == 2)
            .filter_map(|kv| {
                let at = kv.iter().position(|&c| c == 1)?;
                Some((
                    String::from_utf8_lossy(&kv[..at]).into_owned(),
                    String::from_utf8_lossy(&kv[at + 1..]).into_owned(),
                ))
            })
            .collect();
        out.push(Stored {
            queue_offset,
            body,
            properties,
        });
    }
    Ok(out)
}

fn unavailable(what: String) -> impl Fn(crate::remoting::RemotingError) -> VerifyError {
    move |e| VerifyError::Unavailable(format!("rocketmq: {what}: {e}"))
}

/// A queue offset from a response header.
fn offset(resp: &Command, field: &str) -> Result<i64, VerifyError> {
    resp.ext
        .get(field)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| VerifyError::Unavailable(format!("rocketmq: the answer has no {field}")))
}

/// Calls and expects SUCCESS.
async fn ask(
    c: &mut Connection,
    mut cmd: Command,
    timeout: Duration,
    what: &str,
) -> Result<Command, VerifyError> {
    let resp = c
        .call(&mut cmd, timeout)
        .await
        .map_err(unavailable(what.to_string()))?;
    if resp.code != status::SUCCESS {
        return Err(VerifyError::Definite(format!(
            "rocketmq: {what}: {}",
            resp.why()
        )));
    }
    Ok(resp)
}

impl RocketmqState {
    /// The messages of one queue from `from` (its first stored offset when None) to its end
    /// now, in offset order, offered to `each`; returns where the next read starts.
    async fn read_queue(
        &self,
        topic: &str,
        q: &route::Queue,
        from: Option<i64>,
        each: &mut dyn FnMut(Stored) -> Result<(), VerifyError>,
    ) -> Result<i64, VerifyError> {
        let cfg = &self.settings.config;
        let timeout = cfg.send_timeout;
        let what = format!("queue {} of {topic} on {}", q.id, q.addr);
        let mut c = Connection::open(&q.addr, timeout, cfg.credentials.clone())
            .await
            .map_err(unavailable(what.clone()))?;
        let header = || [("topic", topic.to_string()), ("queueId", q.id.to_string())];
        let low = ask(
            &mut c,
            Command::request(code::GET_MIN_OFFSET, header()),
            timeout,
            &what,
        )
        .await?;
        let high = ask(
            &mut c,
            Command::request(code::GET_MAX_OFFSET, header()),
            timeout,
            &what,
        )
        .await?;
        let low = offset(&low, "offset")?;
        let (mut at, end) = (from.unwrap_or(low).max(low), offset(&high, "offset")?);
        let mut empty_pulls = 0;
        while at < end {
            let mut cmd = Command::request(
                code::PULL_MESSAGE,
                [
                    ("consumerGroup", GROUP.to_string()),
                    ("topic", topic.to_string()),
                    ("queueId", q.id.to_string()),
                    ("queueOffset", at.to_string()),
                    ("maxMsgNums", PULL_BATCH.to_string()),
                    // The subscription comes with the pull (no suspend, no commit).
                    ("sysFlag", "4".to_string()),
                    ("commitOffset", "0".to_string()),
                    ("suspendTimeoutMillis", "0".to_string()),
                    ("subscription", "*".to_string()),
                    ("subVersion", "0".to_string()),
                    ("expressionType", "TAG".to_string()),
                ],
            );
            let resp = c
                .call(&mut cmd, timeout)
                .await
                .map_err(unavailable(what.clone()))?;
            match resp.code {
                status::SUCCESS if !resp.body.is_empty() => {
                    let msgs = decode(&resp.body).map_err(|e| {
                        VerifyError::Definite(format!("rocketmq: {what} offset {at}: {e}"))
                    })?;
                    // Read on after the last message returned, whatever the answer says comes
                    // next (which could skip stored messages); messages past `end` (the queue
                    // grew meanwhile) are read too, so none is left out.
                    let last = msgs.last().map_or(at, |m| m.queue_offset);
                    for m in msgs {
                        if m.queue_offset >= at {
                            each(m)?;
                        }
                    }
                    at = (last + 1).max(at + 1);
                    empty_pulls = 0;
                }
                status::PULL_OFFSET_MOVED => at = offset(&resp, "nextBeginOffset")?.max(at + 1),
                // Stored but not yet visible (a consume queue being rebuilt): try again, for
                // a while.
                status::SUCCESS | status::PULL_NOT_FOUND | status::PULL_RETRY_IMMEDIATELY
                    if empty_pulls < 100 =>
                {
                    empty_pulls += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => {
                    return Err(VerifyError::Unavailable(format!(
                        "rocketmq: {what}: pull at offset {at} of {end}: {}",
                        resp.why()
                    )))
                }
            }
        }
        Ok(at.max(end))
    }
}

impl StateSide for RocketmqState {
    fn read(
        &mut self,
        to: &TableId,
        columns: &[VerifyColumn],
        key_len: usize,
        latest: &mut Latest,
    ) -> Result<(), VerifyError> {
        let cfg = &self.settings.config;
        let topic = cfg.routing.topics.topic(to);
        let single = matches!(cfg.routing.topics, sluice_mq::TopicMap::Single(_));
        let queues = self
            .rt
            .block_on(route::queues(
                &cfg.namesrv,
                &topic,
                cfg.send_timeout,
                cfg.credentials.as_ref(),
            ))
            .map_err(|e| match e {
                route::RouteError::Unreachable(m) => VerifyError::Unavailable(m),
                route::RouteError::Refused(m) => VerifyError::Definite(m),
            })?
            .filter(|q| !q.is_empty())
            .ok_or_else(|| {
                VerifyError::Definite(format!(
                    "rocketmq: topic {topic} (of {}.{}) does not exist",
                    to.db, to.table
                ))
            })?;
        let mut next = self.next.remove(to).unwrap_or_default();
        for (n, q) in queues.iter().enumerate() {
            let mut each = |m: Stored| -> Result<(), VerifyError> {
                let prop = |k: &str| m.properties.get(k).map(String::as_str);
                if single
                    && (prop("sluice.db") != Some(&to.db)
                        || prop("sluice.table") != Some(&to.table))
                {
                    return Ok(());
                }
                let image = image(&self.settings.format.name, &m.body, columns).map_err(|e| {
                    VerifyError::Definite(format!(
                        "rocketmq: {topic} queue {} offset {}: {e}",
                        q.id, m.queue_offset
                    ))
                })?;
                if let Some(image) = image {
                    let seq = prop("sluice.sequence").and_then(|s| s.parse().ok());
                    latest.offer(seq, (n as i64, m.queue_offset), image, key_len);
                }
                Ok(())
            };
            let from = next.get(q).copied();
            let at = self
                .rt
                .block_on(self.read_queue(&topic, q, from, &mut each))?;
            next.insert(q.clone(), at);
        }
        self.next.insert(to.clone(), next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored message as the broker lays it out (IPv4 hosts, magic v1).
    fn stored(offset: i64, body: &[u8], props: &str) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(-626_843_481i32).to_be_bytes());
        m.extend_from_slice(&[0; 4 + 4 + 4]);
        m.extend_from_slice(&offset.to_be_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&0i32.to_be_bytes());
        m.extend_from_slice(&[0; 8 + 8 + 8 + 8 + 4 + 8]);
        m.extend_from_slice(&(body.len() as i32).to_be_bytes());
        m.extend_from_slice(body);
        m.push(5);
        m.extend_from_slice(b"topic");
        m.extend_from_slice(&(props.len() as i16).to_be_bytes());
        m.extend_from_slice(props.as_bytes());
        let mut out = ((m.len() + 4) as i32).to_be_bytes().to_vec();
        out.extend(m);
        out
    }

    #[test]
    fn stored_messages_read_back() {
        let mut body = stored(
            7,
            b"{\"a\":1}",
            "sluice.sequence\u{1}12\u{2}KEYS\u{1}5\u{2}",
        );
        body.extend(stored(8, b"x", ""));
        let got = decode(&body).expect("decode");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].queue_offset, 7);
        assert_eq!(got[0].body, b"{\"a\":1}");
        assert_eq!(got[0].properties["sluice.sequence"], "12");
        assert_eq!(got[0].properties["KEYS"], "5");
        assert_eq!(
            (got[1].queue_offset, got[1].body.as_slice()),
            (8, &b"x"[..])
        );
        assert!(decode(&body[..body.len() - 3]).is_err());
    }
}
