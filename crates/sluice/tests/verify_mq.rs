//! `sluice verify` of message-queue destinations against real brokers (Kafka, RocketMQ) and
//! the DataHub-protocol server: the state per key rebuilt from the topic and compared with the
//! source. For each transport: equal to what the project promises; the keys a row filter kept
//! out reported missing once the filter is removed; a stale message written after the latest
//! one (higher offset, lower sequence) changes nothing, a later one (higher sequence) is
//! believed, a key the source never had is extra; `--apply` re-delivers what differs so that
//! an independent consumer rebuilding the state ends equal to the source, and the changes
//! after it are numbered after it; with the project running and a writer changing the table
//! all along, no false difference (and `--apply` is refused). The type matrix compares equal
//! through the OMS, Canal and Maxwell formats and through DataHub TUPLE fields, by the verification
//! stage and by `sluice verify`. A logical table over three instances in one DataHub topic is
//! compared as the union of its shards, each difference traced to its instance.

mod common;

use common::datahub::*;
use common::dbdest::{type_table, TYPE_ROWS};
use common::rocketmq::*;
use common::*;
use sluice_testkit::{TempKafka, ROCKETMQ_NAMESRV};

type Rebuilt = Result<BTreeMap<String, Json>, Box<dyn std::error::Error>>;

fn verify(file: &Path) -> Result<(i32, String), Box<dyn std::error::Error>> {
    let file = file.display().to_string();
    sluice_said(["verify", "-f", &file, "--chunk-rows", "300"])
}

/// A project of `db`.t (full and incremental sync; only the rows with id <= 900) into the
/// destination whose section lines (after `type`) are `destination`.
fn filtered_project(db: &str, destination: &str) -> PathBuf {
    let dir = temp_dir(db);
    let file = dir.join("project.yaml");
    let destination: String = destination.lines().map(|l| format!("  {l}\n")).collect();
    let _ = std::fs::write(
        &file,
        format!(
            "name: {db}
source:
  type: mariadb
  url: mysql://root@{src}
  server_id: {sid}
destination:
{destination}objects:
  include: [\"{db}.t\"]
  filters:
    {db}.t: \"id <= 900\"
stages:
  full: true
options:
  heartbeat_secs: 1
",
            src = MARIADB.get(),
            sid = 3_600_000 + std::process::id() % 100_000,
        ),
    );
    file
}

/// Writes a message as a tampering writer would: `kind`, `id`, `v`, source sequence.
type Tamper<'a> = &'a dyn Fn(&str, &str, &str, &str) -> TestResult;

/// The whole story on one transport (see the module doc): `tamper` writes into the topic,
/// `rebuild` rebuilds the table as an independent consumer does.
async fn found_and_redelivered(
    db: &str,
    file: &Path,
    tamper: Tamper<'_>,
    rebuild: &dyn Fn() -> Rebuilt,
) -> TestResult {
    let mut c = conn().await?;
    run_until_caught_up(file)?;
    c.query_drop(format!("UPDATE {db}.t SET v = 'changed' WHERE id = 5"))
        .await?;
    run_until_caught_up(file)?;

    // What the project promises (the rows its filter keeps) is there.
    let (code, text) = verify(file)?;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("{db}.t -> {db}.t: 900 rows, 900 equal")),
        "{text}"
    );
    // A stale message after the latest: a higher offset, a lower sequence. Nothing changes.
    tamper("UPDATE", "5", "stale", "0")?;
    let (code, text) = verify(file)?;
    assert!(code == 0 && text.contains("900 rows, 900 equal"), "{text}");
    // A later one (higher sequence) is the state: now id 5 differs in v. A key the source
    // never had is extra.
    tamper("UPDATE", "5", "later", "1000000")?;
    tamper("INSERT", "5000", "x", "1000000")?;
    let (code, text) = verify(file)?;
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("899 equal, 0 missing, 1 extra, 1 different")
            && text.contains("different id=5: v")
            && text.contains("extra     id=5000"),
        "{text}"
    );
    // Without the filter, the rows it kept out are missing too.
    let yaml = std::fs::read_to_string(file)?
        .replace(&format!("  filters:\n    {db}.t: \"id <= 900\"\n"), "");
    std::fs::write(file, yaml)?;
    let (code, text) = verify(file)?;
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains(&format!(
            "{db}.t -> {db}.t: 1000 rows, 899 equal, 100 missing, 1 extra, 1 different"
        )) && text.contains("missing   id=901"),
        "{text}"
    );
    // --apply re-delivers the 101 rows that differ and a delete of the extra key, numbered
    // after the highest sequence found; verified again, the destination is equal.
    let (code, text) = sluice_said(["verify", "-f", &file.display().to_string(), "--apply"])?;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("re-delivered 102 key(s)")
            && text.contains(&format!("{db}.t -> {db}.t: 1000 rows, 1000 equal")),
        "{text}"
    );
    // An independent consumer rebuilding the table ends equal to the source.
    assert_eq!(rebuild()?, source_rows(&mut c, db).await?);
    // The changes that follow are numbered after the re-delivery: a later update of id 5
    // wins over its re-delivered row.
    c.query_drop(format!("UPDATE {db}.t SET v = 'after' WHERE id = 5"))
        .await?;
    // Not delivered yet, the project stopped: the report says its checkpoint is behind.
    let (code, text) = verify(file)?;
    assert!(
        code == 3
            && text.contains("different id=5: v")
            && text.contains("the project's checkpoint is behind the source"),
        "{text}"
    );
    run_until_caught_up(file)?;
    let (code, text) = verify(file)?;
    assert!(code == 0 && text.contains("1000 equal"), "{text}");
    // While the project runs and a writer changes the table all along, a verification reports
    // no difference that is not real; --apply is refused, saying why.
    let mut child = spawn_run(file)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = mixed_writer(db.to_string(), 1200, 7, stop.clone());
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let busy = verify(file)?;
    let refused = sluice_said(["verify", "-f", &file.display().to_string(), "--apply"])?;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await??;
    sigterm(&child)?;
    child.wait()?;
    assert!(
        busy.0 == 0 && busy.1.contains("0 missing, 0 extra, 0 different"),
        "{}",
        busy.1
    );
    assert!(written > 50, "the writer made only {written} changes");
    assert!(
        refused.0 == 1
            && refused
                .1
                .contains("the project is running: stop it before --apply"),
        "{}",
        refused.1
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// `db`.t with 1000 rows (id, v, amt = id / 4).
async fn thousand_rows(db: &str) -> TestResult {
    let mut c = conn().await?;
    new_table(&mut c, db).await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('s', seq), seq / 4 FROM {db}.seq_1_to_1000"
    ))
    .await?;
    Ok(())
}

/// A whole OMS record as a tampering writer would put it (the sequence in allMetaData too,
/// as Sluice writes it).
fn oms(kind: &str, id: &str, v: &str, seq: &str) -> String {
    serde_json::json!({
        "recordType": kind,
        "postStruct": {"id": id, "v": v, "amt": "1.25"},
        "allMetaData": {"storeDataSequence": seq.parse::<u64>().unwrap_or(0), "record_primary_value": id},
    })
    .to_string()
}

/// Puts one TUPLE record into `topic` with the official SDK (fields `NAME=VALUE`).
fn datahub_put(topic: &str, fields: &[String]) -> TestResult {
    helper(
        Command::new(repo_root().join("dev/services"))
            .arg("datahub-python")
            .arg(repo_root().join("dev/probes/datahub_put.py"))
            .args([&datahub_endpoint(), DH_PROJECT, topic])
            .args(fields),
    )
}

/// Runs a helper program and fails with its error output.
fn helper(cmd: &mut Command) -> TestResult {
    let out = cmd.output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_topic_rebuilt_by_sequence_is_compared_and_corrected() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    let kafka = TempKafka::start_memory()?;
    let db = unique_name("vfykafka");
    thousand_rows(&db).await?;
    let file = filtered_project(
        &db,
        &format!("type: kafka\nbrokers: {}\nformat: oms", kafka.addr),
    );
    let topic = format!("{db}.t");
    // confluent-kafka, not our producer.
    let tamper = |kind: &str, id: &str, v: &str, seq: &str| {
        helper(
            Command::new(services_cache().join("pytools/bin/python"))
                .arg(repo_root().join("crates/sluice/tests/verify/produce.py"))
                .args([&kafka.addr, &topic, id, &oms(kind, id, v, seq), seq]),
        )
    };
    let rebuild = || -> Rebuilt { Ok(rebuild_oms(&consume_from(&kafka.addr, &topic, 0)?)?) };
    found_and_redelivered(&db, &file, &tamper, &rebuild).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rocketmq_topic_rebuilt_by_sequence_is_compared_and_corrected() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Rocketmq]);
    let db = unique_name("vfyrmq");
    thousand_rows(&db).await?;
    let file = filtered_project(
        &db,
        &format!(
            "type: rocketmq\nnamesrv: {}\nformat: oms\ncreate_topics: true\nqueues: 2",
            ROCKETMQ_NAMESRV.get()
        ),
    );
    let topic = format!("{db}_t");
    // The rocketmq-rust client's producer, not ours, into the key's queue (as Sluice hashes
    // it: a key's messages are in one queue, which a consumer reads in order).
    let tamper = |kind: &str, id: &str, v: &str, seq: &str| {
        let queue = (murmur2(id.as_bytes()) & 0x7fff_ffff) % 2;
        helper(
            Command::new(repo_root().join("dev/services"))
                .args(["rocketmq-probe", "send", "--namesrv"])
                .arg(ROCKETMQ_NAMESRV.get())
                .args(["--topic", &topic, "--body", &oms(kind, id, v, seq)])
                .args(["--queue", &queue.to_string()])
                .args(["--property", &format!("sluice.sequence={seq}")]),
        )
    };
    let rebuild = || -> Rebuilt { Ok(rebuild_oms(&rocketmq_consume(&topic)?)?) };
    found_and_redelivered(&db, &file, &tamper, &rebuild).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datahub_tuple_topic_rebuilt_by_sequence_is_compared_and_corrected() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Datahub]);
    std::env::set_var("SLUICE_TEST_DATAHUB_KEY", "sluice-secret");
    let db = unique_name("vfydh");
    thousand_rows(&db).await?;
    let file = filtered_project(
        &db,
        &format!(
            "type: datahub\nendpoint: {}\nproject: {DH_PROJECT}\naccess_id: sluice\n\
             access_key_env: SLUICE_TEST_DATAHUB_KEY\nshard_count: 1",
            datahub_endpoint()
        ),
    );
    let topic = format!("{db}_t");
    // The official SDK, not our client.
    let tamper = |kind: &str, id: &str, v: &str, seq: &str| {
        datahub_put(
            &topic,
            &[
                format!("sluice_op={}", kind.to_lowercase()),
                "sluice_image=A".into(),
                format!("sluice_sequence={seq}"),
                format!("id={id}"),
                format!("v={v}"),
                "amt=1.25".into(),
            ],
        )
    };
    // Records in shard order, as a consumer applies them (one shard).
    let rebuild = || -> Rebuilt {
        let recs = datahub_read(&datahub_endpoint(), &topic)?;
        Ok(rebuild_tuple_replayed(&recs, "id", &["id", "v", "amt"])?)
    };
    found_and_redelivered(&db, &file, &tamper, &rebuild).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_type_matrix_compares_equal_through_each_readable_format_and_tuple_fields() -> TestResult
{
    ensure_up(&[Service::Mariadb, Service::Kafka, Service::Datahub]);
    std::env::set_var("SLUICE_TEST_DATAHUB_KEY", "sluice-secret");
    let db = unique_name("vfymqtypes");
    let mut c = conn().await?;
    type_table(&mut c, &db, TYPE_ROWS).await?;
    let kafka = TempKafka::start_memory()?;
    for (kind, destination) in [
        (
            "kafka",
            format!("type: kafka\nbrokers: {}\nformat: oms", kafka.addr),
        ),
        (
            "canal",
            format!(
                "type: kafka\nbrokers: {}\nformat: canal\ntopic: \"{{db}}.{{table}}.canal\"",
                kafka.addr
            ),
        ),
        (
            "maxwell",
            format!(
                "type: kafka\nbrokers: {}\nformat: maxwell\ntopic: \"{{db}}.{{table}}.maxwell\"",
                kafka.addr
            ),
        ),
        (
            "shareplex",
            format!(
                "type: kafka\nbrokers: {}\nformat: shareplex\ntopic: \"{{db}}.{{table}}.shareplex\"",
                kafka.addr
            ),
        ),
        (
            "datahub",
            format!(
                "type: datahub\nendpoint: {}\nproject: {DH_PROJECT}\naccess_id: sluice\n\
                 access_key_env: SLUICE_TEST_DATAHUB_KEY\ntopic: \"{{db}}_{{table}}_m\"",
                datahub_endpoint()
            ),
        ),
    ] {
        let file = filtered_project(&db, &destination);
        // With the verification stage, which runs once the project has caught up.
        let yaml = std::fs::read_to_string(&file)?
            .replace(&format!("  filters:\n    {db}.t: \"id <= 900\"\n"), "")
            .replace(&format!("name: {db}"), &format!("name: {db}-{kind}"))
            .replace("  full: true\n", "  full: true\n  verify: true\n");
        std::fs::write(&file, yaml)?;
        run_until_caught_up(&file)?;
        let status = status_of(&file);
        assert!(
            status.contains(&format!(
                "verified:   {db}.t -> {db}.t 5 rows: 5 equal, 0 missing, 0 extra, 0 different"
            )),
            "{kind}: {status}"
        );
        let (code, text) = verify(&file)?;
        assert!(
            code == 0 && text.contains(&format!("{db}.t -> {db}.t: 5 rows, 5 equal")),
            "{kind}: {text}"
        );
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logical_table_in_a_datahub_topic_is_compared_as_the_union_of_its_shards() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Datahub]);
    std::env::set_var("SLUICE_TEST_DATAHUB_KEY", "sluice-secret");
    let u = unique_name("vfydhshard");
    let file = logical_orders(
        &u,
        &format!(
            "type: datahub\nendpoint: {}\nproject: {DH_PROJECT}\naccess_id: sluice\n\
             access_key_env: SLUICE_TEST_DATAHUB_KEY",
            datahub_endpoint()
        ),
    )
    .await?;
    run_until_caught_up(&file)?;
    let (code, text) = verify(&file)?;
    assert!(
        code == 0
            && text.contains(&format!(
                "{u}.orders -> {u}_dest.orders: 600 rows, 600 equal"
            )),
        "{text}"
    );
    // A delete of one key and a changed value of another, written after everything else
    // (pydatahub): each found, named by the instance its source row is in.
    let topic = format!("{u}_dest_orders");
    for (op, image, id, v) in [
        ("delete", "B", "1105", "s105"),
        ("update", "A", "2007", "x"),
    ] {
        datahub_put(
            &topic,
            &[
                format!("sluice_op={op}"),
                format!("sluice_image={image}"),
                "sluice_sequence=1000000".into(),
                format!("id={id}"),
                format!("v={v}"),
                "amt=1.75".into(),
            ],
        )?;
    }
    let (code, text) = verify(&file)?;
    assert_eq!(code, 3, "{text}");
    for want in [
        "missing   id=1105 (instance s1)",
        "different id=2007: v (instance s2)",
        "600 rows, 598 equal, 1 missing, 0 extra, 1 different",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let (code, text) = sluice_said(["verify", "-f", &file.display().to_string(), "--apply"])?;
    assert!(
        code == 1 && text.contains("re-delivery for a sharded source is not built yet"),
        "{text}"
    );
    drop_logical_orders(&u).await
}
