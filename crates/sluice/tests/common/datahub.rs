//! DataHub end-to-end helpers: a project into a DataHub-protocol server, and an independent
//! reader (the official SDK, pydatahub, in its own process through `dev/services
//! datahub-python`), with the table rebuilt from what it read.

use super::*;
use sluice_testkit::DATAHUB;

/// The DataHub project the tests write into.
pub const DH_PROJECT: &str = "sluice_it";

/// The shared server's endpoint.
pub fn datahub_endpoint() -> String {
    format!("http://{}", DATAHUB.get())
}

/// A MariaDB -> DataHub project file for the tables of `db` into `endpoint`; `extra` is
/// appended to the destination section.
pub fn datahub_project(
    dir: &Path,
    name: &str,
    db: &str,
    endpoint: &str,
    start: &str,
    extra: &str,
) -> PathBuf {
    let extra: String = extra.lines().map(|l| format!("  {l}\n")).collect();
    let yaml = format!(
        "name: {name}
source:
  type: mariadb
  url: mysql://root@{mariadb}
  server_id: {sid}
destination:
  type: datahub
  endpoint: {endpoint}
  project: {DH_PROJECT}
  access_id: sluice
  access_key_env: SLUICE_TEST_DATAHUB_KEY
{extra}objects:
  include: [\"{db}.*\"]
stages:
  start: \"{start}\"
",
        mariadb = MARIADB.get(),
        sid = 3_100_000 + std::process::id() % 400_000,
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

/// Every record of `topic`, read by the SDK, as JSON objects (see dev/probes/datahub_read.py).
pub fn datahub_read(endpoint: &str, topic: &str) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    let out = Command::new(repo_root().join("dev/services"))
        .arg("datahub-python")
        .arg(repo_root().join("dev/probes/datahub_read.py"))
        .args([endpoint, DH_PROJECT, topic])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "datahub reader failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut recs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        recs.push(serde_json::from_str(line)?);
    }
    Ok(recs)
}

/// BLOB records in the shape the Kafka helpers read: `{partition: shard, offset: sequence,
/// value: payload as JSON, headers: attributes, key}`.
pub fn blob_messages(recs: &[Json]) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    use base64::Engine;
    let mut out = Vec::new();
    for r in recs {
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(r["blob"].as_str().unwrap_or(""))?;
        out.push(serde_json::json!({
            "partition": r["shard"].as_str().unwrap_or("0").parse::<i64>()?,
            "offset": r["sequence"],
            "value": serde_json::from_slice::<Json>(&bytes)?,
            "headers": r["attributes"],
            "key": r["attributes"]["sluice.key"],
        }));
    }
    Ok(out)
}

/// Rebuilds each key's row from TUPLE records in read order, as a consumer applies them:
/// after images replace, deletes remove. With `strict` (a run without crashes, so without
/// replays), also checks that no key's sequence ever goes back. Returns the rows by `key`
/// column, each reduced to `columns`.
pub fn rebuild_tuple_with(
    recs: &[Json],
    key: &str,
    columns: &[&str],
    strict: bool,
) -> Result<BTreeMap<String, Json>, String> {
    let mut state = BTreeMap::new();
    let mut last_seq: BTreeMap<String, i64> = BTreeMap::new();
    for r in recs {
        let f = &r["fields"];
        let k = f[key]
            .as_str()
            .ok_or_else(|| format!("no {key} in {r}"))?
            .to_string();
        if let Some(seq) = f["sluice_sequence"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
        {
            let prev = last_seq.entry(k.clone()).or_insert(seq);
            if strict && seq < *prev {
                return Err(format!("key {k}: sequence {seq} after {prev} ({r})"));
            }
            *prev = seq;
        }
        let row: serde_json::Map<String, Json> = columns
            .iter()
            .map(|c| (c.to_string(), f[*c].clone()))
            .collect();
        match (f["sluice_op"].as_str(), f["sluice_image"].as_str()) {
            (Some("delete"), _) => {
                state.remove(&k);
            }
            (Some("update"), Some("B")) => {}
            (Some("insert" | "update" | "snapshot"), Some("A")) => {
                state.insert(k, Json::Object(row));
            }
            other => return Err(format!("unexpected op/image {other:?} in {r}")),
        }
    }
    Ok(state)
}

/// [`rebuild_tuple_with`], strict.
pub fn rebuild_tuple(
    recs: &[Json],
    key: &str,
    columns: &[&str],
) -> Result<BTreeMap<String, Json>, String> {
    rebuild_tuple_with(recs, key, columns, true)
}

/// [`rebuild_tuple_with`] after crashes: replays may repeat older records of a key, so only
/// the order of the last ones (the state) is checked.
pub fn rebuild_tuple_replayed(
    recs: &[Json],
    key: &str,
    columns: &[&str],
) -> Result<BTreeMap<String, Json>, String> {
    rebuild_tuple_with(recs, key, columns, false)
}
