//! `sluice-datahub-server`: a DataHub-protocol server on loopback for Sluice's tests and
//! benchmarks, since the real service is a cloud service no test can install. It speaks the
//! protocol as the official SDK (`pydatahub`) does, and the SDK itself proves it
//! (`crates/datahub-server/tests/conformance.py`): signatures, JSON and protobuf record calls,
//! lz4 and zlib bodies, projects, TUPLE and BLOB topics, shards with hash-key ranges that
//! split and merge, cursors, and the documented limits. Data lives on disk (see `store`).
//!
//! For tests of failure paths, `SLUICE_DATAHUB_FAIL_EVERY=N` makes every N-th record put fail
//! with InternalServerError (a partial failure); a shard then stores none of that request's
//! later records, as a shard stores records in order.

mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use clap::Parser;
use prost::Message;
use serde_json::{json, Value as Json};
use sluice_datahub_protocol::api::{self, JsonRecord};
use sluice_datahub_protocol::{content_type, frame, header, pb, sign, Compression};
use store::{now_ms, refuse, Refusal, Store, Stored};

/// Largest record (DataHub's documented limit).
const MAX_RECORD: usize = 1024 * 1024;
/// Largest request body, uncompressed.
const MAX_REQUEST: usize = 4 * 1024 * 1024;

#[derive(Parser)]
#[command(about = "A DataHub-protocol server for tests (not the Alibaba Cloud service)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8280")]
    listen: SocketAddr,
    /// Where projects, topics and records are kept.
    #[arg(long)]
    data: PathBuf,
    /// The account's access id.
    #[arg(long, env = "SLUICE_DATAHUB_ACCESS_ID", default_value = "sluice")]
    access_id: String,
    /// The account's access key (secret).
    #[arg(
        long,
        env = "SLUICE_DATAHUB_ACCESS_KEY",
        default_value = "sluice-secret",
        hide_env_values = true
    )]
    access_key: String,
}

struct State {
    store: Mutex<Store>,
    access_id: String,
    access_key: String,
    requests: AtomicU64,
    fail_every: u64,
    records_seen: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = Store::open(&args.data)?;
    let state = Arc::new(State {
        store: Mutex::new(store),
        access_id: args.access_id,
        access_key: args.access_key,
        requests: AtomicU64::new(0),
        fail_every: std::env::var("SLUICE_DATAHUB_FAIL_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        records_seen: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(2 * MAX_REQUEST))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        println!("sluice-datahub-server listening on http://{}", args.listen);
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// What a call answers: a body of some content type, or nothing.
enum Answer {
    Empty(u16),
    Json(Json),
    Frame(Vec<u8>),
}

async fn handle(
    axum::extract::State(st): axum::extract::State<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = st.requests.fetch_add(1, Ordering::Relaxed);
    let request_id = format!("{:x}{:012x}", now_ms(), n);
    let accept = headers
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .and_then(Compression::parse)
        .unwrap_or(Compression::None);
    let st2 = st.clone();
    let result = tokio::task::spawn_blocking(move || serve(&st2, &method, &uri, &headers, &body))
        .await
        .unwrap_or_else(|e| Err(refuse(500, "InternalServerError", e.to_string())));
    let (status, ctype, bytes) = match result {
        Ok(Answer::Empty(code)) => (code, content_type::JSON, Vec::new()),
        Ok(Answer::Json(j)) => (200, content_type::JSON, j.to_string().into_bytes()),
        Ok(Answer::Frame(f)) => (200, content_type::PROTOBUF, f),
        Err(r) => (
            r.status,
            content_type::JSON,
            json!({"ErrorCode": r.code, "ErrorMessage": r.message})
                .to_string()
                .into_bytes(),
        ),
    };
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::REQUEST_ID, request_id)
        .header("content-type", ctype);
    // Answers are compressed as asked when that makes them smaller, as the service does.
    let body = if accept != Compression::None && bytes.len() > 64 {
        let z = accept.compress(&bytes);
        if z.len() < bytes.len() {
            resp = resp
                .header("content-encoding", accept.name())
                .header(header::RAW_SIZE, bytes.len().to_string());
            z
        } else {
            bytes
        }
    } else {
        bytes
    };
    resp.body(axum::body::Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn header_text<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn check_signature(st: &State, method: &Method, uri: &Uri, h: &HeaderMap) -> Result<(), Refusal> {
    let auth = header_text(h, "authorization");
    let Some((id, given)) = sign::parse_authorization(auth) else {
        return Err(refuse(
            401,
            "Unauthorized",
            "no DATAHUB Authorization header",
        ));
    };
    if id != st.access_id {
        return Err(refuse(
            401,
            "Unauthorized",
            format!("unknown AccessId {id}"),
        ));
    }
    let all: Vec<(String, String)> = h
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let canonical = sign::canonical(
        method.as_str(),
        header_text(h, "content-type"),
        header_text(h, "date"),
        &all,
        uri.path(),
        uri.query(),
    );
    if sign::signature(&st.access_key, &canonical) != given {
        return Err(refuse(
            401,
            "Unauthorized",
            "the request signature does not match (wrong access key?)",
        ));
    }
    Ok(())
}

fn bad(message: impl Into<String>) -> Refusal {
    refuse(400, "InvalidParameter", message)
}

fn serve(
    st: &State,
    method: &Method,
    uri: &Uri,
    h: &HeaderMap,
    body: &[u8],
) -> Result<Answer, Refusal> {
    check_signature(st, method, uri, h)?;
    let encoding = header_text(h, "content-encoding");
    let body = if encoding.is_empty() {
        body.to_vec()
    } else {
        let c = Compression::parse(encoding)
            .ok_or_else(|| bad(format!("unsupported Content-Encoding {encoding}")))?;
        let raw = header_text(h, header::RAW_SIZE).parse::<usize>().ok();
        if raw.is_some_and(|r| r > 2 * MAX_REQUEST) {
            return Err(refuse(400, "LimitExceeded", "request body too large"));
        }
        c.decompress(body, raw).map_err(bad)?
    };
    if body.len() > MAX_REQUEST {
        return Err(refuse(
            400,
            "LimitExceeded",
            format!("request is {} bytes; the limit is 4 MB", body.len()),
        ));
    }
    let protobuf = header_text(h, "content-type").starts_with(content_type::PROTOBUF);
    let action = header_text(h, header::REQUEST_ACTION).to_string();
    let segs: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let json_body = || -> Result<Json, Refusal> {
        if body.is_empty() {
            Ok(json!({}))
        } else {
            serde_json::from_slice(&body).map_err(|e| bad(format!("body is not JSON: {e}")))
        }
    };
    let mut store = st
        .store
        .lock()
        .map_err(|_| refuse(500, "InternalServerError", "poisoned"))?;
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["projects"]) => Ok(Answer::Json(json!({"ProjectNames": store.project_names()}))),
        ("POST", ["projects", p]) => {
            let b = json_body()?;
            store.create_project(p, b["Comment"].as_str().unwrap_or("").to_string())?;
            Ok(Answer::Empty(201))
        }
        ("GET", ["projects", p]) => {
            let pm = store.project(p)?;
            Ok(Answer::Json(json!({
                "ProjectName": p, "Comment": pm.comment,
                "CreateTime": pm.create_time, "LastModifyTime": pm.modify_time,
            })))
        }
        ("DELETE", ["projects", p]) => store.delete_project(p).map(|_| Answer::Empty(200)),
        ("GET", ["projects", p, "topics"]) => Ok(Answer::Json(
            json!({"TopicNames": store.project(p)?.topics.keys().collect::<Vec<_>>()}),
        )),
        ("POST", ["projects", p, "topics", t]) => {
            let b = json_body()?;
            match b["Action"].as_str() {
                Some(a) if a.eq_ignore_ascii_case("appendfield") => {
                    let name = b["FieldName"].as_str().ok_or_else(|| bad("FieldName"))?;
                    let ty = b["FieldType"].as_str().ok_or_else(|| bad("FieldType"))?;
                    store.append_field(p, t, name, ty)?;
                    Ok(Answer::Empty(200))
                }
                Some(a) => Err(refuse(
                    400,
                    "InvalidOperation",
                    format!("Action {a} is not supported by this server"),
                )),
                None => {
                    let req: api::CreateTopic =
                        serde_json::from_value(b).map_err(|e| bad(format!("create topic: {e}")))?;
                    store.create_topic(p, t, req)?;
                    Ok(Answer::Empty(201))
                }
            }
        }
        ("GET", ["projects", p, "topics", t]) => {
            let tm = store.topic(p, t)?;
            let topic = api::Topic {
                shard_count: tm.shard_count,
                lifecycle: tm.lifecycle,
                record_type: tm.record_type.clone(),
                record_schema: tm
                    .schema
                    .as_ref()
                    .map(|s| serde_json::to_string(s).unwrap_or_default()),
                comment: tm.comment.clone(),
                create_time: tm.create_time,
                last_modify_time: tm.modify_time,
            };
            Ok(Answer::Json(
                serde_json::to_value(topic).map_err(|e| bad(e.to_string()))?,
            ))
        }
        ("DELETE", ["projects", p, "topics", t]) => {
            store.delete_topic(p, t).map(|_| Answer::Empty(200))
        }
        ("GET", ["projects", p, "topics", t, "shards"]) => {
            let tm = store.topic(p, t)?;
            let shards: Vec<api::Shard> = tm.shards.iter().map(|s| tm.shard_json(s)).collect();
            Ok(Answer::Json(
                json!({"Shards": shards, "Protocol": "http1.1", "Interval": 500}),
            ))
        }
        ("POST", ["projects", p, "topics", t, "shards"]) if protobuf => {
            if action != "pub" {
                return Err(bad(format!(
                    "x-datahub-request-action {action:?} on shards: use pub"
                )));
            }
            let req = pb::PutRecordsRequest::decode(frame::decode(&body).map_err(bad)?)
                .map_err(|e| refuse(400, "MalformedRecord", format!("protobuf: {e}")))?;
            let records = req
                .records
                .into_iter()
                .map(|r| Incoming {
                    shard: r.shard_id,
                    hash_key: r.hash_key,
                    partition_key: r.partition_key,
                    attributes: r
                        .attributes
                        .map(|a| a.attributes.into_iter().map(|p| (p.key, p.value)).collect())
                        .unwrap_or_default(),
                    data: Ok(r.data.data.into_iter().map(|f| f.value).collect()),
                })
                .collect();
            let failed = put(st, &mut store, p, t, records, None)?;
            let resp = pb::PutRecordsResponse {
                failed_count: Some(failed.len() as i32),
                failed_records: failed
                    .into_iter()
                    .map(|(i, code, msg)| pb::FailedRecord {
                        index: i as i32,
                        error_code: Some(code.into()),
                        error_message: Some(msg),
                    })
                    .collect(),
            };
            Ok(Answer::Frame(frame::encode(&resp.encode_to_vec())))
        }
        ("POST", ["projects", p, "topics", t, "shards"]) => {
            let b = json_body()?;
            match b["Action"].as_str().unwrap_or("") {
                "pub" => {
                    let tuple = store.topic(p, t)?.is_tuple();
                    let list: Vec<JsonRecord> = serde_json::from_value(b["Records"].clone())
                        .map_err(|e| refuse(400, "MalformedRecord", format!("Records: {e}")))?;
                    let records = list.into_iter().map(|r| json_incoming(r, tuple)).collect();
                    let failed = put(st, &mut store, p, t, records, None)?;
                    Ok(Answer::Json(json!({
                        "FailedRecordCount": failed.len(),
                        "FailedRecords": failed.into_iter().map(|(i, c, m)| json!({"Index": i, "ErrorCode": c, "ErrorMessage": m})).collect::<Vec<_>>(),
                    })))
                }
                "split" => {
                    let id = b["ShardId"].as_str().ok_or_else(|| bad("ShardId"))?;
                    let key = b["SplitKey"]
                        .as_str()
                        .and_then(api::parse_hash_key)
                        .ok_or_else(|| bad("SplitKey: 32 hex digits"))?;
                    let new = store.split(p, t, id, key)?;
                    let new: Vec<Json> = new
                        .into_iter()
                        .map(|s| json!({"ShardId": s.shard_id, "BeginHashKey": s.begin_hash_key, "EndHashKey": s.end_hash_key}))
                        .collect();
                    Ok(Answer::Json(json!({"NewShards": new})))
                }
                "merge" => {
                    let id = b["ShardId"].as_str().ok_or_else(|| bad("ShardId"))?;
                    let adj = b["AdjacentShardId"]
                        .as_str()
                        .ok_or_else(|| bad("AdjacentShardId"))?;
                    let s = store.merge(p, t, id, adj)?;
                    Ok(Answer::Json(
                        json!({"ShardId": s.shard_id, "BeginHashKey": s.begin_hash_key, "EndHashKey": s.end_hash_key}),
                    ))
                }
                other => Err(refuse(
                    400,
                    "InvalidOperation",
                    format!("Action {other:?} on shards is not supported by this server"),
                )),
            }
        }
        ("POST", ["projects", p, "topics", t, "shards", s]) if protobuf => match action.as_str() {
            "pub" => {
                let req = pb::PutRecordsRequest::decode(frame::decode(&body).map_err(bad)?)
                    .map_err(|e| refuse(400, "MalformedRecord", format!("protobuf: {e}")))?;
                let records = req
                    .records
                    .into_iter()
                    .map(|r| Incoming {
                        shard: None,
                        hash_key: None,
                        partition_key: None,
                        attributes: r
                            .attributes
                            .map(|a| a.attributes.into_iter().map(|p| (p.key, p.value)).collect())
                            .unwrap_or_default(),
                        data: Ok(r.data.data.into_iter().map(|f| f.value).collect()),
                    })
                    .collect();
                // By shard, a put is all or nothing.
                let failed = put(st, &mut store, p, t, records, Some(s))?;
                if let Some((_, code, msg)) = failed.into_iter().next() {
                    return Err(refuse(400, code, msg));
                }
                Ok(Answer::Empty(200))
            }
            "sub" => {
                let req = pb::GetRecordsRequest::decode(frame::decode(&body).map_err(bad)?)
                    .map_err(|e| bad(format!("protobuf: {e}")))?;
                let (shard, from) = parse_cursor(&req.cursor)?;
                let tm = store.topic(p, t)?;
                let sid = tm.shard(s)?.id;
                if shard != sid {
                    return Err(refuse(
                        400,
                        "InvalidCursor",
                        "the cursor is of another shard",
                    ));
                }
                let width = tm.schema.as_ref().map(|s| s.fields.len());
                let all = store.records(p, t, sid);
                let limit = req.limit.unwrap_or(1).clamp(1, 1000) as usize;
                let from = (from as usize).min(all.len());
                let upto = (from + limit).min(all.len());
                let records: Vec<pb::RecordEntry> = all[from..upto]
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let seq = (from + i) as i64;
                        let mut e = store::entry_of(r, seq);
                        // Records put before a field was appended read with it as NULL.
                        if let Some(w) = width {
                            e.data
                                .data
                                .resize(w.max(e.data.data.len()), pb::FieldData { value: None });
                        }
                        e.cursor = Some(cursor_text(sid, seq as u64));
                        e.next_cursor = Some(cursor_text(sid, seq as u64 + 1));
                        e
                    })
                    .collect();
                let resp = pb::GetRecordsResponse {
                    next_cursor: cursor_text(sid, upto as u64),
                    record_count: records.len() as i32,
                    start_sequence: Some(from as i64),
                    records,
                };
                Ok(Answer::Frame(frame::encode(&resp.encode_to_vec())))
            }
            other => Err(bad(format!(
                "x-datahub-request-action {other:?}: use pub or sub"
            ))),
        },
        ("POST", ["projects", p, "topics", t, "shards", s]) => {
            let b = json_body()?;
            let tm = store.topic(p, t)?;
            let sid = tm.shard(s)?.id;
            let tuple = tm.is_tuple();
            let width = tm.schema.as_ref().map_or(0, |s| s.fields.len());
            let all = store.records(p, t, sid);
            match b["Action"].as_str().unwrap_or("") {
                "cursor" => {
                    let ty = b["Type"].as_str().unwrap_or("");
                    let seq: u64 = match ty {
                        "OLDEST" => 0,
                        "LATEST" => all.len().saturating_sub(1) as u64,
                        "SEQUENCE" => {
                            let n = b["Sequence"].as_i64().ok_or_else(|| bad("Sequence"))?;
                            if n < 0 || n as usize > all.len() {
                                return Err(refuse(
                                    400,
                                    "SeekOutOfRange",
                                    format!("sequence {n} is not in shard {s}"),
                                ));
                            }
                            n as u64
                        }
                        "SYSTEM_TIME" => {
                            let at = b["SystemTime"].as_i64().ok_or_else(|| bad("SystemTime"))?;
                            all.iter()
                                .position(|r| r.system_time >= at)
                                .unwrap_or(all.len()) as u64
                        }
                        other => return Err(bad(format!("cursor Type {other:?}"))),
                    };
                    let time = all.get(seq as usize).map_or(0, |r| r.system_time);
                    Ok(Answer::Json(
                        json!({"Cursor": cursor_text(sid, seq), "RecordTime": time, "Sequence": seq}),
                    ))
                }
                "sub" => {
                    let cursor = b["Cursor"].as_str().ok_or_else(|| bad("Cursor"))?;
                    let (shard, from) = parse_cursor(cursor)?;
                    if shard != sid {
                        return Err(refuse(
                            400,
                            "InvalidCursor",
                            "the cursor is of another shard",
                        ));
                    }
                    let limit = b["Limit"].as_i64().unwrap_or(1).clamp(1, 1000) as usize;
                    let from = (from as usize).min(all.len());
                    let upto = (from + limit).min(all.len());
                    let b64 = base64::engine::general_purpose::STANDARD;
                    let records: Vec<Json> = all[from..upto]
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            let data = if tuple {
                                let mut vals: Vec<Json> = r
                                    .data
                                    .iter()
                                    .map(|v| match v {
                                        Some(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
                                        None => Json::Null,
                                    })
                                    .collect();
                                // Records put before a field was appended read with it as NULL.
                                vals.resize(width.max(vals.len()), Json::Null);
                                Json::Array(vals)
                            } else {
                                Json::String(b64.encode(r.data.first().cloned().flatten().unwrap_or_default()))
                            };
                            let mut rec = json!({"Data": data, "Sequence": from + i, "SystemTime": r.system_time});
                            if !r.attributes.is_empty() {
                                rec["Attributes"] = r.attributes.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect::<serde_json::Map<_, _>>().into();
                            }
                            rec
                        })
                        .collect();
                    Ok(Answer::Json(json!({
                        "NextCursor": cursor_text(sid, upto as u64),
                        "RecordCount": records.len(),
                        "StartSeq": from,
                        "Records": records,
                    })))
                }
                "meter" => Ok(Answer::Json(json!({"ActiveTime": 0, "Storage": all.len()}))),
                other => Err(refuse(
                    400,
                    "InvalidOperation",
                    format!("Action {other:?} on a shard is not supported by this server"),
                )),
            }
        }
        _ => Err(refuse(
            404,
            "InvalidUriSpec",
            format!("{method} {} is not a call this server knows", uri.path()),
        )),
    }
}

/// A record of a put, before it is checked.
struct Incoming {
    shard: Option<String>,
    hash_key: Option<String>,
    partition_key: Option<String>,
    attributes: Vec<(String, String)>,
    data: Result<Vec<Option<Vec<u8>>>, String>,
}

fn json_incoming(r: JsonRecord, tuple: bool) -> Incoming {
    let data = match (&r.data, tuple) {
        (Json::Array(vals), true) => vals
            .iter()
            .map(|v| match v {
                Json::Null => Ok(None),
                Json::String(s) => Ok(Some(s.clone().into_bytes())),
                Json::Number(n) => Ok(Some(n.to_string().into_bytes())),
                Json::Bool(b) => Ok(Some(b.to_string().into_bytes())),
                other => Err(format!("a TUPLE value must be a string, not {other}")),
            })
            .collect(),
        (Json::String(s), false) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(|b| vec![Some(b)])
            .map_err(|e| format!("BLOB data is not base64: {e}")),
        (_, true) => Err("a TUPLE record's Data is an array".into()),
        (_, false) => Err("a BLOB record's Data is a base64 string".into()),
    };
    Incoming {
        shard: r.shard_id,
        hash_key: r.hash_key,
        partition_key: r.partition_key,
        attributes: r.attributes.unwrap_or_default().into_iter().collect(),
        data,
    }
}

/// Stores what it can of `records` and returns the failed ones (index, code, message). Each
/// shard stores records in request order and none after the first of its own that failed.
fn put(
    st: &State,
    store: &mut Store,
    p: &str,
    t: &str,
    records: Vec<Incoming>,
    by_shard: Option<&str>,
) -> Result<Vec<(usize, &'static str, String)>, Refusal> {
    let tm = store.topic(p, t)?.clone();
    if records.is_empty() {
        return Err(bad("no records"));
    }
    let fixed = match by_shard {
        Some(s) => {
            let sh = tm.shard(s)?;
            if !sh.active {
                return Err(refuse(
                    400,
                    "InvalidShardOperation",
                    format!("shard {s} is closed"),
                ));
            }
            Some(sh.id)
        }
        None => None,
    };
    let mut failed = Vec::new();
    let mut stopped: Vec<u32> = Vec::new();
    let mut ok: Vec<(u32, Stored)> = Vec::new();
    let now = now_ms();
    let mut rr = 0usize;
    for (i, mut r) in records.into_iter().enumerate() {
        // The values move into the stored record (checked first), not copied.
        let data = std::mem::replace(&mut r.data, Ok(Vec::new()));
        let shard = match (fixed, &r.shard, &r.hash_key, &r.partition_key) {
            (Some(s), ..) => Ok(s),
            (None, Some(s), ..) => match tm.shard(s) {
                Ok(sh) if sh.active => Ok(sh.id),
                Ok(_) => Err(("InvalidShardOperation", format!("shard {s} is closed"))),
                Err(e) => Err((e.code, e.message)),
            },
            (None, None, Some(h), _) => api::parse_hash_key(h)
                .and_then(|k| tm.shard_for(k))
                .ok_or(("InvalidParameter", format!("HashKey {h:?}"))),
            (None, None, None, Some(pk)) => {
                use md5::Digest;
                let d = md5::Md5::digest(pk.as_bytes());
                let k = u128::from_be_bytes(d.into());
                tm.shard_for(k)
                    .ok_or(("InvalidParameter", "no active shard".to_string()))
            }
            (None, None, None, None) => {
                let active: Vec<u32> = tm
                    .shards
                    .iter()
                    .filter(|s| s.active)
                    .map(|s| s.id)
                    .collect();
                rr += 1;
                active
                    .get(rr % active.len().max(1))
                    .copied()
                    .ok_or(("InvalidParameter", "no active shard".to_string()))
            }
        };
        let checked = shard.and_then(|s| {
            if stopped.contains(&s) {
                return Err((
                    "InternalServerError",
                    format!("an earlier record of shard {s} failed; put it again after that one"),
                ));
            }
            let data = data.map_err(|m| ("MalformedRecord", m))?;
            let size: usize = data
                .iter()
                .map(|v| v.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
                + r.attributes
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            if size > MAX_RECORD {
                return Err((
                    "InvalidParameter",
                    format!("record is {size} bytes; the limit is 1 MB"),
                ));
            }
            match &tm.schema {
                Some(schema) => {
                    if data.len() != schema.fields.len() {
                        return Err((
                            "MalformedRecord",
                            format!(
                                "record has {} fields; the schema has {}",
                                data.len(),
                                schema.fields.len()
                            ),
                        ));
                    }
                    for (f, v) in schema.fields.iter().zip(&data) {
                        match v {
                            None if f.notnull => {
                                return Err((
                                    "MalformedRecord",
                                    format!("field {} is NOT NULL", f.name),
                                ))
                            }
                            None => {}
                            Some(b) => {
                                let text = std::str::from_utf8(b).map_err(|_| {
                                    ("MalformedRecord", format!("field {} is not UTF-8", f.name))
                                })?;
                                if let Some(why) = store::value_problem(&f.ty, text) {
                                    return Err((
                                        "MalformedRecord",
                                        format!("field {}: {why}", f.name),
                                    ));
                                }
                            }
                        }
                    }
                }
                None if data.len() != 1 => {
                    return Err(("MalformedRecord", "a BLOB record holds one value".into()))
                }
                None => {}
            }
            if st.fail_every > 0
                && (st.records_seen.fetch_add(1, Ordering::Relaxed) + 1)
                    .is_multiple_of(st.fail_every)
            {
                return Err((
                    "InternalServerError",
                    "injected failure (SLUICE_DATAHUB_FAIL_EVERY)".into(),
                ));
            }
            Ok((s, data))
        });
        match checked {
            Ok((s, data)) => ok.push((
                s,
                Stored {
                    system_time: now,
                    attributes: r.attributes,
                    data,
                },
            )),
            Err((code, msg)) => {
                if let Some(s) = shard_of(&tm, fixed, &r) {
                    stopped.push(s);
                }
                failed.push((i, code, msg));
            }
        }
    }
    if by_shard.is_some() && !failed.is_empty() {
        return Ok(failed);
    }
    store.append(p, t, ok)?;
    Ok(failed)
}

/// The shard a record was meant for, when it names one.
fn shard_of(tm: &store::TopicMeta, fixed: Option<u32>, r: &Incoming) -> Option<u32> {
    fixed
        .or_else(|| r.shard.as_deref().and_then(|s| s.parse().ok()))
        .or_else(|| {
            r.hash_key
                .as_deref()
                .and_then(api::parse_hash_key)
                .and_then(|k| tm.shard_for(k))
        })
}

fn cursor_text(shard: u32, seq: u64) -> String {
    format!("{shard:08x}{seq:016x}")
}

fn parse_cursor(c: &str) -> Result<(u32, u64), Refusal> {
    let bad = || refuse(400, "InvalidCursor", format!("cursor {c:?} is not valid"));
    if c.len() != 24 {
        return Err(bad());
    }
    let shard = u32::from_str_radix(&c[..8], 16).map_err(|_| bad())?;
    let seq = u64::from_str_radix(&c[8..], 16).map_err(|_| bad())?;
    Ok((shard, seq))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
