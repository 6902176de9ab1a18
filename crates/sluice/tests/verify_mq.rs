//! `sluice verify` of a Kafka destination (OMS format) against a real broker: the state per
//! key rebuilt from the topic and compared with the source. Equal to what the project
//! promises; the keys a row filter kept out reported missing once the filter is removed; a stale message written after the latest one (higher offset, lower
//! sequence) changes nothing, a later one (higher sequence) is believed; a running project is
//! refused.

mod common;

use common::*;
use sluice_testkit::TempKafka;

fn verify(file: &Path) -> Result<(i32, String), Box<dyn std::error::Error>> {
    let file = file.display().to_string();
    sluice_said(["verify", "-f", &file, "--chunk-rows", "300"])
}

/// One message to `topic`, by confluent-kafka (not our producer).
fn produce(bootstrap: &str, topic: &str, key: &str, value: &str, seq: &str) -> TestResult {
    let out = Command::new(services_cache().join("pytools/bin/python"))
        .arg(repo_root().join("crates/sluice/tests/verify/produce.py"))
        .args([bootstrap, topic, key, value, seq])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_topic_rebuilt_by_sequence_is_compared_with_the_source() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    let kafka = TempKafka::start_memory()?;
    let mut c = conn().await?;
    let db = unique_name("vfykafka");
    new_table(&mut c, &db).await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('s', seq), seq / 4 FROM {db}.seq_1_to_1000"
    ))
    .await?;
    let dir = temp_dir(&db);
    let file = dir.join("project.yaml");
    std::fs::write(
        &file,
        format!(
            "name: {db}
source:
  type: mariadb
  url: mysql://root@{src}
  server_id: {sid}
destination:
  type: kafka
  brokers: {brokers}
  format: oms
objects:
  include: [\"{db}.t\"]
  filters:
    {db}.t: \"id <= 900\"
stages:
  full: true
options:
  heartbeat_secs: 1
",
            src = MARIADB.get(),
            brokers = kafka.addr,
            sid = 3_600_000 + std::process::id() % 100_000,
        ),
    )?;
    run_until_caught_up(&file)?;
    c.query_drop(format!("UPDATE {db}.t SET v = 'changed' WHERE id = 5"))
        .await?;
    run_until_caught_up(&file)?;

    // What the project promises (the rows its filter keeps) is there.
    let (code, text) = verify(&file)?;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("{db}.t -> {db}.t: 900 rows, 900 equal")),
        "{text}"
    );
    // Without the filter, the rows it kept out are missing from the topic.
    let yaml = std::fs::read_to_string(&file)?
        .replace(&format!("  filters:\n    {db}.t: \"id <= 900\"\n"), "");
    std::fs::write(&file, yaml)?;
    let (code, text) = verify(&file)?;
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains(&format!(
            "{db}.t -> {db}.t: 1000 rows, 900 equal, 100 missing, 0 extra, 0 different"
        )) && text.contains("missing   id=901"),
        "{text}"
    );
    let topic = format!("{db}.t");
    let image = |v: &str| {
        format!(
            "{{\"recordType\":\"UPDATE\",\"postStruct\":{{\"id\":\"5\",\"v\":\"{v}\",\"amt\":\"1.25\"}},\"prevStruct\":{{\"id\":\"5\",\"v\":\"changed\",\"amt\":\"1.25\"}}}}"
        )
    };
    // A stale message after the latest: a higher offset, a lower sequence. Nothing changes.
    produce(&kafka.addr, &topic, "5", &image("stale"), "0")?;
    let (code, text) = verify(&file)?;
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("900 equal, 100 missing, 0 extra, 0 different"),
        "{text}"
    );
    // A later one (higher sequence) is the state: now id 5 differs in v.
    produce(
        &kafka.addr,
        &topic,
        "5",
        &image("later"),
        "18446744073709551614",
    )?;
    let (code, text) = verify(&file)?;
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("899 equal, 100 missing, 0 extra, 1 different")
            && text.contains("different id=5: v"),
        "{text}"
    );
    // While the project runs, it is refused, saying why.
    let mut child = spawn_run(&file)?;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (code, text) = verify(&file)?;
    sigterm(&child)?;
    child.wait()?;
    assert!(
        code == 1 && text.contains("the project is running: stop it first"),
        "{text}"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
