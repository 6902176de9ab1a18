//! RocketMQ's classic remoting protocol, the part a producer needs (and the pull that
//! verification reads a topic back with): one request at a time on a connection (sends are
//! synchronous per queue, so nothing here multiplexes).
//!
//! A frame is `total length (i32 BE) | serialize type (1 byte) + header length (3 bytes) |
//! header | body`, where `total length` counts everything after itself. Headers are JSON
//! (serialize type 0) and name the serialization again in `serializeTypeCurrentRPC`, which the
//! rocketmq-rust server requires (it closes the connection without it). Request and response
//! share an `opaque` number; the response flag is bit 0 of `flag`.

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::acl::Credentials;

/// Request codes used here (RocketMQ's `RequestCode`).
pub mod code {
    /// Read messages of one queue from an offset.
    pub const PULL_MESSAGE: i32 = 11;
    /// The offset after a queue's last message.
    pub const GET_MAX_OFFSET: i32 = 30;
    /// A queue's first offset still stored.
    pub const GET_MIN_OFFSET: i32 = 31;
    /// Create or update a topic on a broker.
    pub const UPDATE_AND_CREATE_TOPIC: i32 = 17;
    /// A topic's route (brokers, queue counts) from the name server.
    pub const GET_ROUTEINFO_BY_TOPIC: i32 = 105;
    /// The brokers of every cluster, from the name server.
    pub const GET_BROKER_CLUSTER_INFO: i32 = 106;
    /// Send one message (the short-named header).
    pub const SEND_MESSAGE_V2: i32 = 310;
    /// Send several messages of one topic to one queue, stored as a unit.
    pub const SEND_BATCH_MESSAGE: i32 = 320;
}

/// Response codes (RocketMQ's `ResponseCode`) this client acts on.
pub mod status {
    /// Done (for a send: SEND_OK).
    pub const SUCCESS: i32 = 0;
    /// Stored, not yet flushed to disk in time.
    pub const FLUSH_DISK_TIMEOUT: i32 = 10;
    /// Stored, no replica available.
    pub const SLAVE_NOT_AVAILABLE: i32 = 11;
    /// Stored, not replicated in time.
    pub const FLUSH_SLAVE_TIMEOUT: i32 = 12;
    /// The message is refused (too large, bad properties).
    pub const MESSAGE_ILLEGAL: i32 = 13;
    /// Not allowed (topic not writable, ACL).
    pub const NO_PERMISSION: i32 = 16;
    /// The topic does not exist (name server or broker).
    pub const TOPIC_NOT_EXIST: i32 = 17;
    /// A pull found no message at the offset (yet).
    pub const PULL_NOT_FOUND: i32 = 19;
    /// A pull should be tried again at once.
    pub const PULL_RETRY_IMMEDIATELY: i32 = 20;
    /// A pull's offset is out of the queue's range (`nextBeginOffset` says where to go).
    pub const PULL_OFFSET_MOVED: i32 = 21;
}

/// Frames larger than this are refused on read: no RocketMQ answer comes near it, and a
/// corrupt length must not allocate gigabytes.
const MAX_FRAME: usize = 64 << 20;

/// A remoting failure: the connection is unusable afterwards.
#[derive(Debug, thiserror::Error)]
pub enum RemotingError {
    /// Connect, read, write or timeout.
    #[error("{0}")]
    Io(String),
    /// The peer sent something this client cannot read.
    #[error("unreadable answer: {0}")]
    Protocol(String),
}

#[derive(Serialize, Deserialize)]
struct Header {
    code: i32,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remark: Option<String>,
    // Servers write `null` when there are none.
    #[serde(rename = "extFields", default, skip_serializing_if = "Option::is_none")]
    ext_fields: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "serializeTypeCurrentRPC", default)]
    serialize_type: Option<String>,
}

/// One request or response.
#[derive(Debug, Clone, Default)]
pub struct Command {
    /// Request code, or response status.
    pub code: i32,
    /// The server's explanation of a status.
    pub remark: Option<String>,
    /// The command's header fields.
    pub ext: BTreeMap<String, String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Command {
    /// A request with `code` and header fields.
    pub fn request(code: i32, ext: impl IntoIterator<Item = (&'static str, String)>) -> Self {
        Self {
            code,
            remark: None,
            ext: ext.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            body: Vec::new(),
        }
    }

    /// The remark, or the status code when there is none, for messages.
    pub fn why(&self) -> String {
        match &self.remark {
            Some(r) if !r.is_empty() => format!("{r} (code {})", self.code),
            _ => format!("code {}", self.code),
        }
    }
}

/// Encodes `cmd` as a request frame with `opaque`.
pub fn encode(cmd: &Command, opaque: i32) -> Result<Vec<u8>, RemotingError> {
    let header = Header {
        code: cmd.code,
        // "OTHER" is known to every server version (the Java enum gained RUST late).
        language: Some("OTHER".into()),
        version: 0,
        opaque,
        flag: 0,
        remark: cmd.remark.clone(),
        ext_fields: (!cmd.ext.is_empty()).then(|| {
            cmd.ext
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect()
        }),
        serialize_type: Some("JSON".into()),
    };
    let header = serde_json::to_vec(&header).map_err(|e| RemotingError::Protocol(e.to_string()))?;
    if header.len() >= 1 << 24 {
        return Err(RemotingError::Protocol("header over 16 MiB".into()));
    }
    let total = 4 + header.len() + cmd.body.len();
    let total =
        i32::try_from(total).map_err(|_| RemotingError::Protocol("frame over 2 GiB".into()))?;
    let mut out = Vec::with_capacity(4 + total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    // Serialize type 0 (JSON) in the high byte, the header length in the low three.
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&cmd.body);
    Ok(out)
}

/// Decodes a frame (without its leading total length): the command, its opaque and whether
/// it is a response.
pub fn decode(frame: &[u8]) -> Result<(Command, i32, bool), RemotingError> {
    let bad = |m: &str| RemotingError::Protocol(m.to_string());
    let mark: [u8; 4] = frame
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("short frame"))?;
    let mark = u32::from_be_bytes(mark);
    if mark >> 24 != 0 {
        return Err(bad("binary (ROCKETMQ) header; only JSON headers are read"));
    }
    let hlen = (mark & 0x00ff_ffff) as usize;
    let header = frame
        .get(4..4 + hlen)
        .ok_or_else(|| bad("header past the frame"))?;
    let h: Header =
        serde_json::from_slice(header).map_err(|e| RemotingError::Protocol(e.to_string()))?;
    let ext = h
        .ext_fields
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    Ok((
        Command {
            code: h.code,
            remark: h.remark,
            ext,
            body: frame[4 + hlen..].to_vec(),
        },
        h.opaque,
        h.flag & 1 == 1,
    ))
}

/// A connection that sends one request at a time and waits for its answer.
pub struct Connection {
    stream: BufReader<TcpStream>,
    next_opaque: i32,
    addr: String,
    /// Every request is signed with these (ACL).
    creds: Option<Arc<Credentials>>,
}

impl Connection {
    /// Connects to `addr` within `timeout`.
    pub async fn open(
        addr: &str,
        timeout: Duration,
        creds: Option<Arc<Credentials>>,
    ) -> Result<Self, RemotingError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RemotingError::Io(format!("connect to {addr}: timed out")))?
            .map_err(|e| RemotingError::Io(format!("connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream: BufReader::new(stream),
            next_opaque: 1,
            addr: addr.to_string(),
            creds,
        })
    }

    /// Sends `cmd` (signed in place first, when the connection has credentials) and returns its
    /// response (requests the server makes of us meanwhile, which a producer does not serve,
    /// are skipped).
    pub async fn call(
        &mut self,
        cmd: &mut Command,
        timeout: Duration,
    ) -> Result<Command, RemotingError> {
        let opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.wrapping_add(1).max(1);
        // Signing does not depend on the opaque, and re-signing replaces the signature: a
        // command sent again on a new connection is signed again, never copied to be signed.
        if let Some(c) = &self.creds {
            c.sign(cmd);
        }
        let frame = encode(cmd, opaque)?;
        let addr = self.addr.clone();
        let io = |e: std::io::Error| RemotingError::Io(format!("{addr}: {e}"));
        tokio::time::timeout(timeout, async {
            self.stream.get_mut().write_all(&frame).await.map_err(io)?;
            loop {
                let total = self.stream.read_u32().await.map_err(io)? as usize;
                if !(4..=MAX_FRAME).contains(&total) {
                    return Err(RemotingError::Protocol(format!("frame of {total} bytes")));
                }
                let mut buf = vec![0u8; total];
                self.stream.read_exact(&mut buf).await.map_err(io)?;
                let (resp, got, is_response) = decode(&buf)?;
                if is_response && got == opaque {
                    return Ok(resp);
                }
            }
        })
        .await
        .map_err(|_| {
            RemotingError::Io(format!(
                "{}: no answer within {} ms",
                self.addr,
                timeout.as_millis()
            ))
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_as_written() {
        let mut cmd = Command::request(code::SEND_MESSAGE_V2, [("b", "t1".to_string())]);
        cmd.body = b"payload".to_vec();
        let frame = encode(&cmd, 7).expect("encode");
        let total = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(total, frame.len() - 4);
        let (back, opaque, response) = decode(&frame[4..]).expect("decode");
        assert_eq!((back.code, opaque, response), (310, 7, false));
        assert_eq!(back.ext.get("b").map(String::as_str), Some("t1"));
        assert_eq!(back.body, b"payload");
        let header = std::str::from_utf8(&frame[8..frame.len() - 7]).expect("utf8");
        assert!(
            header.contains("\"serializeTypeCurrentRPC\":\"JSON\""),
            "{header}"
        );
    }

    #[test]
    fn null_fields_of_an_answer_read_as_absent() {
        let header =
            br#"{"code":17,"extFields":null,"remark":null,"language":"RUST","opaque":3,"flag":1}"#;
        let mut frame = (header.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(header);
        let (cmd, opaque, response) = decode(&frame).expect("decode");
        assert_eq!((cmd.code, opaque, response), (17, 3, true));
        assert!(cmd.ext.is_empty() && cmd.remark.is_none() && cmd.body.is_empty());
    }

    #[test]
    fn a_binary_header_is_refused_not_misread() {
        let mut frame = 5u32.to_be_bytes().to_vec();
        frame[0] = 1;
        frame.extend_from_slice(b"{}xxx");
        assert!(matches!(decode(&frame), Err(RemotingError::Protocol(_))));
    }
}
