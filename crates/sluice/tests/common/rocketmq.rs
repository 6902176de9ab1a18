//! RocketMQ end-to-end helpers: a project into the harness broker, and an independent consumer
//! (the rocketmq-rust client's pull consumer, run as its own process through `dev/services
//! rocketmq-probe`) whose messages take the shape the Kafka helpers read.

use super::*;
use sluice_testkit::ROCKETMQ_NAMESRV;

/// A MariaDB -> RocketMQ project file for the tables of `db`; `extra` is appended to the
/// destination section (indented by two spaces per line).
pub fn rocketmq_project(
    dir: &Path,
    name: &str,
    db: &str,
    format: &str,
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
  type: rocketmq
  namesrv: {namesrv}
  format: {format}
{extra}objects:
  include: [\"{db}.*\"]
stages:
  start: \"{start}\"
",
        mariadb = MARIADB.get(),
        namesrv = ROCKETMQ_NAMESRV.get(),
        sid = 3_500_000 + std::process::id() % 400_000,
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

/// Every message of `topic`, every queue from its first to its last offset, read by the
/// rocketmq-rust pull consumer, each as `{partition: queue id, offset, value: body as JSON,
/// headers: properties, key, tag}`.
pub fn rocketmq_consume(topic: &str) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    rocketmq_consume_at(&ROCKETMQ_NAMESRV.get(), topic)
}

/// [`rocketmq_consume`] from the name server at `namesrv`.
pub fn rocketmq_consume_at(
    namesrv: &str,
    topic: &str,
) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    let out = Command::new(repo_root().join("dev/services"))
        .args([
            "rocketmq-probe",
            "consume",
            "--namesrv",
            namesrv,
            "--topic",
            topic,
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "rocketmq consumer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut msgs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let m: Json = serde_json::from_str(line)?;
        let props = m["properties"].clone();
        msgs.push(serde_json::json!({
            "partition": m["queue"],
            "offset": m["offset"],
            "value": serde_json::from_str::<Json>(m["body"].as_str().unwrap_or("null"))?,
            "headers": props,
            "key": m["properties"]["KEYS"],
            "tag": m["properties"]["TAGS"],
        }));
    }
    Ok(msgs)
}
