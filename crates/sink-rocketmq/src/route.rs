//! Where a topic's messages can go: its write queues, read from the name server's route, and
//! creating a topic on every master broker of the cluster.
//!
//! The queues of a topic are listed as the Java producer lists them (brokers by name, then
//! queue ids from 0), and a partition number is an index into that list: partition `p` of a
//! topic is the same queue for every run as long as the topic's queues do not change.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::acl::Credentials;
use crate::remoting::{code, status, Command, Connection, RemotingError};

/// Signing credentials of every call (ACL), if any.
pub type Creds<'a> = Option<&'a Arc<Credentials>>;

/// Write permission bit of a topic's `perm`.
const PERM_WRITE: i64 = 2;

/// One write queue of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Queue {
    /// The broker's name.
    pub broker: String,
    /// The master broker's address.
    pub addr: String,
    /// The queue id on that broker.
    pub id: i32,
}

/// A name-server or broker call that failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// No server answered.
    #[error("{0}")]
    Unreachable(String),
    /// A server answered with a refusal.
    #[error("{0}")]
    Refused(String),
}

impl From<RemotingError> for RouteError {
    fn from(e: RemotingError) -> Self {
        RouteError::Unreachable(e.to_string())
    }
}

/// Asks each name server in turn; the first that answers decides.
async fn ask_namesrv(
    namesrv: &[String],
    cmd: &mut Command,
    timeout: Duration,
    creds: Creds<'_>,
) -> Result<Command, RouteError> {
    let mut last = String::from("no name server configured");
    for addr in namesrv {
        match Connection::open(addr, timeout, creds.cloned()).await {
            Ok(mut c) => match c.call(cmd, timeout).await {
                Ok(r) => return Ok(r),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
    }
    Err(RouteError::Unreachable(format!(
        "rocketmq name server {}: {last}",
        namesrv.join(";")
    )))
}

/// The write queues of `topic`; None when the name server does not know the topic.
pub async fn queues(
    namesrv: &[String],
    topic: &str,
    timeout: Duration,
    creds: Creds<'_>,
) -> Result<Option<Vec<Queue>>, RouteError> {
    let mut cmd = Command::request(
        code::GET_ROUTEINFO_BY_TOPIC,
        [
            ("topic", topic.to_string()),
            ("acceptStandardJsonOnly", "true".to_string()),
        ],
    );
    let resp = ask_namesrv(namesrv, &mut cmd, timeout, creds).await?;
    match resp.code {
        status::SUCCESS => {}
        status::TOPIC_NOT_EXIST => return Ok(None),
        _ => {
            return Err(RouteError::Refused(format!(
                "rocketmq name server: route of topic {topic}: {}",
                resp.why()
            )))
        }
    }
    let route = parse(&resp.body)?;
    let masters = masters(route.get("brokerDatas"));
    let mut datas: Vec<(String, i64, i64)> = route
        .get("queueDatas")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|q| {
                    Some((
                        q.get("brokerName")?.as_str()?.to_string(),
                        q.get("writeQueueNums")?.as_i64()?,
                        q.get("perm").and_then(Value::as_i64).unwrap_or(6),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    datas.sort();
    let mut out = Vec::new();
    for (broker, writes, perm) in datas {
        let Some(addr) = masters.iter().find(|(n, _)| *n == broker).map(|(_, a)| a) else {
            continue;
        };
        if perm & PERM_WRITE == 0 {
            continue;
        }
        for id in 0..writes.clamp(0, i64::from(i32::MAX)) as i32 {
            out.push(Queue {
                broker: broker.clone(),
                addr: addr.clone(),
                id,
            });
        }
    }
    Ok(Some(out))
}

/// Every master broker the name server knows: (name, address), by name.
pub async fn brokers(
    namesrv: &[String],
    timeout: Duration,
    creds: Creds<'_>,
) -> Result<Vec<(String, String)>, RouteError> {
    let mut cmd = Command::request(code::GET_BROKER_CLUSTER_INFO, []);
    let resp = ask_namesrv(namesrv, &mut cmd, timeout, creds).await?;
    if resp.code != status::SUCCESS {
        return Err(RouteError::Refused(format!(
            "rocketmq name server: cluster info: {}",
            resp.why()
        )));
    }
    let info = parse(&resp.body)?;
    let table = info.get("brokerAddrTable").and_then(Value::as_object);
    let datas: Vec<Value> = table
        .map(|t| t.values().cloned().collect())
        .unwrap_or_default();
    let mut out = masters(Some(&Value::Array(datas)));
    out.sort();
    Ok(out)
}

/// Creates (or updates) `topic` with `queue_count` read and write queues on the broker at
/// `addr`.
pub async fn create(
    addr: &str,
    topic: &str,
    queue_count: i32,
    timeout: Duration,
    creds: Creds<'_>,
) -> Result<(), RouteError> {
    let mut cmd = Command::request(
        code::UPDATE_AND_CREATE_TOPIC,
        [
            ("topic", topic.to_string()),
            ("defaultTopic", "TBW102".to_string()),
            ("readQueueNums", queue_count.to_string()),
            ("writeQueueNums", queue_count.to_string()),
            ("perm", "6".to_string()),
            ("topicFilterType", "SINGLE_TAG".to_string()),
            ("topicSysFlag", "0".to_string()),
            ("order", "false".to_string()),
        ],
    );
    let mut c = Connection::open(addr, timeout, creds.cloned()).await?;
    let resp = c.call(&mut cmd, timeout).await?;
    if resp.code != status::SUCCESS {
        let hint = if resp.code == status::NO_PERMISSION {
            "; check destination.access_key and secret_key (ACL), or create the topic yourself"
        } else {
            ""
        };
        return Err(RouteError::Refused(format!(
            "rocketmq broker {addr} refused to create topic {topic}: {}{hint}",
            resp.why()
        )));
    }
    Ok(())
}

/// (broker name, master address) of each broker data entry.
fn masters(datas: Option<&Value>) -> Vec<(String, String)> {
    datas
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|b| {
                    let name = b.get("brokerName")?.as_str()?.to_string();
                    let addr = b.get("brokerAddrs")?.get("0")?.as_str()?.to_string();
                    Some((name, addr))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse(body: &[u8]) -> Result<Value, RouteError> {
    let text = String::from_utf8_lossy(body);
    serde_json::from_str(&quote_bare_keys(&text))
        .map_err(|e| RouteError::Refused(format!("rocketmq name server: unreadable route: {e}")))
}

/// Java name servers write the broker id keys of `brokerAddrs` bare (`{0:"host:port"}`, which
/// is not JSON); quote number keys outside strings so either form reads.
fn quote_bare_keys(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut in_string = false;
    let mut escaped = false;
    let mut after_open = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if after_open && (c.is_ascii_digit() || c == '-') {
            let mut num = String::from(c);
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                num.push(d);
                chars.next();
            }
            let rest: String = chars.clone().take_while(|c| c.is_whitespace()).collect();
            if chars.clone().nth(rest.chars().count()) == Some(':') {
                out.push('"');
                out.push_str(&num);
                out.push('"');
            } else {
                out.push_str(&num);
            }
            after_open = false;
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                after_open = false;
            }
            '{' | ',' => after_open = true,
            c if c.is_whitespace() => {}
            _ => after_open = false,
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_number_keys_are_quoted_and_nothing_else_changes() {
        let java = r#"{"brokerAddrs":{0:"127.0.0.1:10911", 1 :"h:2"},"n":[1,2],"s":"{3:x}"}"#;
        let v: Value = serde_json::from_str(&quote_bare_keys(java)).expect("json");
        assert_eq!(v["brokerAddrs"]["0"], "127.0.0.1:10911");
        assert_eq!(v["brokerAddrs"]["1"], "h:2");
        assert_eq!(v["n"], serde_json::json!([1, 2]));
        assert_eq!(v["s"], "{3:x}");
        let standard = r#"{"brokerAddrs":{"0":"a"},"x":{"k":-1}}"#;
        assert_eq!(quote_bare_keys(standard), standard);
    }

    #[test]
    fn masters_are_the_broker_id_zero_addresses() {
        let v: Value = serde_json::from_str(
            r#"[{"brokerName":"b","brokerAddrs":{"0":"h:1","1":"h:2"}},{"brokerName":"c","brokerAddrs":{"1":"h:3"}}]"#,
        )
        .expect("json");
        assert_eq!(
            masters(Some(&v)),
            vec![("b".to_string(), "h:1".to_string())]
        );
    }
}
