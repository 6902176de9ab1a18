//! The calls the destination makes, signed as the SDK signs them, over one keep-alive HTTP/1.1
//! connection per client (each writer thread has its own).

use std::time::{Duration, SystemTime};

use base64::Engine;
use prost::Message;
use serde_json::{json, Value as Json};
use sluice_core::Secret;
use sluice_datahub_protocol::api::{self, RecordSchema};
use sluice_datahub_protocol::{content_type, frame, header, pb, sign, Compression};

/// How records are put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Protobuf bodies in the DHUB frame (the Java SDK's default).
    Protobuf,
    /// JSON bodies.
    Json,
}

/// Account and endpoint.
#[derive(Debug, Clone)]
pub struct Account {
    /// `http://host:port`, no trailing slash.
    pub endpoint: String,
    /// Access id.
    pub access_id: String,
    /// Access key (secret).
    pub access_key: Secret,
    /// STS token.
    pub security_token: Option<Secret>,
}

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// No answer (connection refused, reset, timed out).
    Transport(String),
    /// An error answer.
    Answer {
        /// HTTP status.
        status: u16,
        /// DataHub error code.
        code: String,
        /// Its message.
        message: String,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(m) => write!(f, "{m}"),
            CallError::Answer {
                status,
                code,
                message,
            } => write!(f, "HTTP {status} {code}: {message}"),
        }
    }
}

impl CallError {
    /// Worth retrying: no answer, throttling, or the server's own trouble.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Answer { status, code, .. } => {
                *status >= 500 || *status == 429 || transient_code(code)
            }
        }
    }

    /// The error code, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Answer { code, .. } => Some(code),
            CallError::Transport(_) => None,
        }
    }
}

/// Record-level codes that a later put may not meet again.
pub fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "InternalServerError" | "LimitExceeded" | "ServiceUnavailable" | "OperationDenied"
    )
}

/// A client of one account.
pub struct Client {
    account: Account,
    agent: ureq::Agent,
    protocol: Protocol,
    compression: Compression,
}

impl Client {
    /// A client (connects on first call).
    pub fn new(
        account: Account,
        protocol: Protocol,
        compression: Compression,
        timeout: Duration,
    ) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            account,
            agent,
            protocol,
            compression,
        }
    }

    /// The endpoint (for messages).
    pub fn endpoint(&self) -> &str {
        &self.account.endpoint
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        ctype: &str,
        action: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let mut signed: Vec<(String, String)> =
            vec![(header::CLIENT_VERSION.to_string(), "1.1".to_string())];
        if let Some(a) = action {
            signed.push((header::REQUEST_ACTION.to_string(), a.to_string()));
        }
        if let Some(t) = &self.account.security_token {
            signed.push((header::SECURITY_TOKEN.to_string(), t.expose().to_string()));
        }
        let mut encoding = None;
        let body = if self.compression != Compression::None && !body.is_empty() {
            let z = self.compression.compress(&body);
            if z.len() < body.len() {
                signed.push((header::RAW_SIZE.to_string(), body.len().to_string()));
                encoding = Some(self.compression.name());
                z
            } else {
                body
            }
        } else {
            body
        };
        let canonical = sign::canonical(method, ctype, &date, &signed, path, None);
        let signature = sign::signature(self.account.access_key.expose(), &canonical);
        let url = format!("{}{path}", self.account.endpoint);
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", ctype)
            .header("date", &date)
            .header(
                "authorization",
                sign::authorization(&self.account.access_id, &signature),
            );
        if self.compression != Compression::None {
            req = req.header("accept-encoding", self.compression.name());
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        for (k, v) in &signed {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(body)
            .map_err(|e| CallError::Transport(format!("request: {e}")))?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| CallError::Transport(format!("datahub {}: {e}", self.account.endpoint)))?;
        let status = resp.status().as_u16();
        let h = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (enc, raw) = (h("content-encoding"), h(header::RAW_SIZE));
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| CallError::Transport(format!("datahub answer: {e}")))?;
        let bytes = match Compression::parse(&enc) {
            Some(c) => c
                .decompress(&bytes, raw.parse().ok())
                .map_err(CallError::Transport)?,
            None => bytes,
        };
        if status >= 400 {
            let e: Option<api::ErrorBody> = serde_json::from_slice(&bytes).ok();
            return Err(CallError::Answer {
                status,
                code: e.as_ref().map(|e| e.code.clone()).unwrap_or_default(),
                message: e
                    .map(|e| e.message)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            });
        }
        Ok(bytes)
    }

    fn json_call(&self, method: &str, path: &str, body: Option<Json>) -> Result<Json, CallError> {
        let bytes = self.call(
            method,
            path,
            content_type::JSON,
            None,
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        )?;
        if bytes.is_empty() {
            return Ok(Json::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| CallError::Transport(format!("datahub answer is not JSON: {e}")))
    }

    /// Whether the project exists.
    pub fn project_exists(&self, project: &str) -> Result<bool, CallError> {
        match self.json_call("GET", &format!("/projects/{project}"), None) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NoSuchProject") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a project.
    pub fn create_project(&self, project: &str) -> Result<(), CallError> {
        match self.json_call(
            "POST",
            &format!("/projects/{project}"),
            Some(json!({"Comment": "created by Sluice"})),
        ) {
            Err(e) if e.code() == Some("ProjectAlreadyExist") => Ok(()),
            r => r.map(drop),
        }
    }

    /// A topic, or None when it does not exist.
    pub fn topic(&self, project: &str, topic: &str) -> Result<Option<api::Topic>, CallError> {
        match self.json_call("GET", &format!("/projects/{project}/topics/{topic}"), None) {
            Ok(j) => serde_json::from_value(j)
                .map(Some)
                .map_err(|e| CallError::Transport(format!("datahub topic answer: {e}"))),
            Err(e) if e.code() == Some("NoSuchTopic") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a topic; one that appeared meanwhile (another part of a sharded project)
    /// is left to the caller to check.
    pub fn create_topic(
        &self,
        project: &str,
        topic: &str,
        req: &api::CreateTopic,
    ) -> Result<(), CallError> {
        let body = serde_json::to_value(req).map_err(|e| CallError::Transport(e.to_string()))?;
        match self.json_call(
            "POST",
            &format!("/projects/{project}/topics/{topic}"),
            Some(body),
        ) {
            Err(e) if e.code() == Some("TopicAlreadyExist") => Ok(()),
            r => r.map(drop),
        }
    }

    /// Appends a field to a TUPLE topic.
    pub fn append_field(
        &self,
        project: &str,
        topic: &str,
        name: &str,
        ty: &str,
    ) -> Result<(), CallError> {
        self.json_call(
            "POST",
            &format!("/projects/{project}/topics/{topic}"),
            Some(json!({"Action": "appendfield", "FieldName": name, "FieldType": ty})),
        )
        .map(drop)
    }

    /// The topic's shards.
    pub fn shards(&self, project: &str, topic: &str) -> Result<Vec<api::Shard>, CallError> {
        let j = self.json_call(
            "GET",
            &format!("/projects/{project}/topics/{topic}/shards"),
            None,
        )?;
        serde_json::from_value::<api::ShardList>(j)
            .map(|l| l.shards)
            .map_err(|e| CallError::Transport(format!("datahub shards answer: {e}")))
    }

    /// Puts records (each naming its shard); returns the ones not stored: index, code,
    /// message.
    pub fn put(
        &self,
        project: &str,
        topic: &str,
        tuple: bool,
        records: &[pb::RecordEntry],
    ) -> Result<Vec<(usize, String, String)>, CallError> {
        let path = format!("/projects/{project}/topics/{topic}/shards");
        match self.protocol {
            Protocol::Protobuf => {
                let req = pb::PutRecordsRequest {
                    records: records.to_vec(),
                };
                let bytes = self.call(
                    "POST",
                    &path,
                    content_type::PROTOBUF,
                    Some("pub"),
                    frame::encode(&req.encode_to_vec()),
                )?;
                let body = frame::decode(&bytes).map_err(CallError::Transport)?;
                let resp = pb::PutRecordsResponse::decode(body)
                    .map_err(|e| CallError::Transport(format!("datahub put answer: {e}")))?;
                Ok(resp
                    .failed_records
                    .into_iter()
                    .map(|f| {
                        (
                            f.index.max(0) as usize,
                            f.error_code.unwrap_or_default(),
                            f.error_message.unwrap_or_default(),
                        )
                    })
                    .collect())
            }
            Protocol::Json => {
                let b64 = base64::engine::general_purpose::STANDARD;
                let list: Vec<Json> = records
                    .iter()
                    .map(|r| {
                        let data = if tuple {
                            Json::Array(
                                r.data
                                    .data
                                    .iter()
                                    .map(|f| match &f.value {
                                        Some(v) => {
                                            Json::String(String::from_utf8_lossy(v).into_owned())
                                        }
                                        None => Json::Null,
                                    })
                                    .collect(),
                            )
                        } else {
                            Json::String(
                                b64.encode(
                                    r.data
                                        .data
                                        .first()
                                        .and_then(|f| f.value.as_deref())
                                        .unwrap_or_default(),
                                ),
                            )
                        };
                        let mut rec = json!({"Data": data, "ShardId": r.shard_id});
                        if let Some(a) = &r.attributes {
                            rec["Attributes"] = a
                                .attributes
                                .iter()
                                .map(|p| (p.key.clone(), Json::String(p.value.clone())))
                                .collect::<serde_json::Map<_, _>>()
                                .into();
                        }
                        rec
                    })
                    .collect();
                let answer = self.json_call(
                    "POST",
                    &path,
                    Some(json!({"Action": "pub", "Records": list})),
                )?;
                let a: api::PutAnswer = serde_json::from_value(answer)
                    .map_err(|e| CallError::Transport(format!("datahub put answer: {e}")))?;
                Ok(a.failed
                    .into_iter()
                    .map(|f| (f.index.max(0) as usize, f.code, f.message))
                    .collect())
            }
        }
    }
}

impl Client {
    /// The records of a shard from its record `from` (its oldest when None), oldest first, up
    /// to its last record when the read began (a cursor, then protobuf gets of up to 1,000).
    pub fn records(
        &self,
        project: &str,
        topic: &str,
        shard: &str,
        from: Option<i64>,
    ) -> Result<Vec<pb::RecordEntry>, CallError> {
        let path = format!("/projects/{project}/topics/{topic}/shards/{shard}");
        let seek = match from {
            Some(n) => json!({"Action": "cursor", "Type": "SEQUENCE", "Sequence": n}),
            None => json!({"Action": "cursor", "Type": "OLDEST"}),
        };
        let at = match self.json_call("POST", &path, Some(seek)) {
            Ok(a) => a,
            // Past the last record: nothing new.
            Err(e) if from.is_some() && e.code() == Some("SeekOutOfRange") => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        // The last record now: what is put while this reads is left for the next read.
        let last = self
            .json_call(
                "POST",
                &path,
                Some(json!({"Action": "cursor", "Type": "LATEST"})),
            )
            .ok()
            .and_then(|l| l["Sequence"].as_i64());
        let mut cursor = at["Cursor"]
            .as_str()
            .ok_or_else(|| CallError::Transport("datahub cursor answer has no Cursor".into()))?
            .to_string();
        let mut out = Vec::new();
        loop {
            let req = pb::GetRecordsRequest {
                cursor: cursor.clone(),
                limit: Some(1000),
            };
            let bytes = self.call(
                "POST",
                &path,
                content_type::PROTOBUF,
                Some("sub"),
                frame::encode(&req.encode_to_vec()),
            )?;
            let body = frame::decode(&bytes).map_err(CallError::Transport)?;
            let resp = pb::GetRecordsResponse::decode(body)
                .map_err(|e| CallError::Transport(format!("datahub get answer: {e}")))?;
            let more = !resp.records.is_empty();
            let before_end = |r: &pb::RecordEntry| last.zip(r.sequence).is_none_or(|(l, s)| s <= l);
            out.extend(resp.records.into_iter().take_while(before_end));
            // An empty page, or the last record there was when the read began, ends it.
            let at_end = last.zip(out.last().and_then(|r| r.sequence));
            if !more || at_end.is_some_and(|(l, s)| s >= l) {
                return Ok(out);
            }
            cursor = resp.next_cursor;
        }
    }
}

/// A TUPLE topic's schema from its topic answer.
pub fn schema_of(t: &api::Topic) -> Option<RecordSchema> {
    t.record_schema
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
}
