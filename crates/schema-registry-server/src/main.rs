//! `sluice-schema-registry-server`: a schema registry that speaks the Confluent Schema Registry
//! REST API (Avro schemas only) on loopback, for Sluice's tests, since no Confluent registry
//! can be installed here. The official client proves it: Python confluent-kafka's
//! `SchemaRegistryClient` and `AvroDeserializer` read what Sluice writes through it
//! (crates/sluice/tests/kafka_avro.rs) and drive its API (tests/conformance.py).
//!
//! What it keeps: subjects, each a list of versions; schemas, each with one id across all
//! subjects (the same schema under two subjects has one id, as in Confluent's registry); a
//! global compatibility level and one per subject (default BACKWARD). A schema that breaks the
//! level against the subject's latest version (every version for the `_TRANSITIVE` levels) is
//! refused with 409, by Avro's schema-resolution rules (`apache-avro`'s checker). State is a
//! JSON file rewritten after each change, so a restart keeps every id.

mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use clap::Parser;
use serde_json::{json, Value as Json};
use store::{Refusal, Store};

#[derive(Parser)]
#[command(about = "A Confluent-compatible schema registry for tests (Avro only; not Confluent's)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8281")]
    listen: SocketAddr,
    /// The file that keeps subjects, versions and ids.
    #[arg(long)]
    data: PathBuf,
    /// `user:password`: every request must carry it as HTTP basic auth.
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY_AUTH", hide_env_values = true)]
    basic_auth: Option<String>,
}

struct State {
    store: Mutex<Store>,
    auth: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let state = Arc::new(State {
        store: Mutex::new(Store::open(&args.data)?),
        auth: args.basic_auth,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        println!(
            "sluice-schema-registry-server listening on http://{}",
            args.listen
        );
        axum::serve(listener, app).await?;
        Ok(())
    })
}

async fn handle(
    axum::extract::State(st): axum::extract::State<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = if authorized(&st, &headers) {
        match st.store.lock() {
            Ok(mut store) => serve(&mut store, &method, &uri, &body),
            Err(_) => Err(Refusal::new(500, 50001, "store poisoned")),
        }
    } else {
        Err(Refusal::new(401, 401, "Unauthorized"))
    };
    let (status, body) = match result {
        Ok(j) => (200, j),
        Err(r) => (
            r.status,
            json!({"error_code": r.code, "message": r.message}),
        ),
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/vnd.schemaregistry.v1+json")],
        body.to_string(),
    )
        .into_response()
}

fn authorized(st: &State, headers: &HeaderMap) -> bool {
    let Some(want) = &st.auth else {
        return true;
    };
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .ok()
        })
        .is_some_and(|d| d == want.as_bytes())
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

fn body_json(body: &[u8]) -> Result<Json, Refusal> {
    if body.is_empty() {
        return Ok(Json::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| Refusal::new(422, 42201, format!("the request is not JSON: {e}")))
}

/// The schema text of a register or lookup request (Avro only).
fn schema_of(body: &[u8]) -> Result<String, Refusal> {
    let b = body_json(body)?;
    if let Some(t) = b["schemaType"].as_str() {
        if t != "AVRO" {
            return Err(Refusal::new(
                422,
                42201,
                format!("schema type {t} is not supported by this registry (AVRO only)"),
            ));
        }
    }
    b["schema"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Refusal::new(422, 42201, "the request has no schema"))
}

fn serve(store: &mut Store, method: &Method, uri: &Uri, body: &[u8]) -> Result<Json, Refusal> {
    let segs: Vec<String> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let query = uri.query().unwrap_or("");
    let m = method.as_str();
    match (m, segs.as_slice()) {
        ("GET", []) => Ok(json!({})),
        ("GET", ["schemas", "types"]) => Ok(json!(["AVRO"])),
        ("GET", ["subjects"]) => Ok(json!(store.subjects())),
        ("POST", ["subjects", subject, "versions"]) => {
            let id = store.register(subject, &schema_of(body)?)?;
            Ok(json!({ "id": id }))
        }
        ("POST", ["subjects", subject]) => store.lookup(subject, &schema_of(body)?),
        ("GET", ["subjects", subject, "versions"]) => Ok(json!(store.versions(subject)?)),
        ("GET", ["subjects", subject, "versions", version]) => store.version(subject, version),
        ("GET", ["subjects", subject, "versions", version, "schema"]) => {
            let v = store.version(subject, version)?;
            serde_json::from_str(v["schema"].as_str().unwrap_or("null"))
                .map_err(|e| Refusal::new(500, 50001, e.to_string()))
        }
        ("DELETE", ["subjects", subject]) => Ok(json!(store.delete_subject(subject)?)),
        ("GET", ["schemas", "ids", id]) => {
            let id = parse_id(id)?;
            Ok(json!({ "schema": store.schema(id)? }))
        }
        ("GET", ["schemas", "ids", id, "schema"]) => {
            let id = parse_id(id)?;
            serde_json::from_str(&store.schema(id)?)
                .map_err(|e| Refusal::new(500, 50001, e.to_string()))
        }
        ("GET", ["schemas", "ids", id, "versions"]) => {
            let id = parse_id(id)?;
            Ok(json!(store.uses(id)?))
        }
        ("GET", ["schemas", "ids", id, "subjects"]) => {
            let id = parse_id(id)?;
            Ok(json!(store
                .uses(id)?
                .iter()
                .map(|u| u["subject"].clone())
                .collect::<Vec<_>>()))
        }
        ("GET", ["config"]) => Ok(json!({ "compatibilityLevel": store.level(None) })),
        ("GET", ["config", subject]) => match store.subject_level(subject) {
            Some(l) => Ok(json!({ "compatibilityLevel": l })),
            None if query.contains("defaultToGlobal=true") => {
                Ok(json!({ "compatibilityLevel": store.level(None) }))
            }
            None => Err(Refusal::new(
                404,
                40408,
                format!("Subject '{subject}' does not have subject-level compatibility configured"),
            )),
        },
        ("PUT", ["config"]) => {
            let l = level_of(body)?;
            store.set_level(None, &l)?;
            Ok(json!({ "compatibility": l }))
        }
        ("PUT", ["config", subject]) => {
            let l = level_of(body)?;
            store.set_level(Some(subject), &l)?;
            Ok(json!({ "compatibility": l }))
        }
        ("POST", ["compatibility", "subjects", subject, "versions", version]) => {
            let messages = store.check(subject, version, &schema_of(body)?)?;
            Ok(json!({ "is_compatible": messages.is_empty(), "messages": messages }))
        }
        _ => Err(Refusal::new(
            404,
            404,
            format!("{m} {} is not a call this registry knows", uri.path()),
        )),
    }
}

fn parse_id(s: &str) -> Result<u32, Refusal> {
    s.parse()
        .map_err(|_| Refusal::new(404, 40403, format!("Schema {s} not found")))
}

fn level_of(body: &[u8]) -> Result<String, Refusal> {
    body_json(body)?["compatibility"]
        .as_str()
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| Refusal::new(422, 42203, "the request has no compatibility"))
}
