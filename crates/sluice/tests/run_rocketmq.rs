//! MariaDB -> RocketMQ through the harness's real name server and broker, read back by a
//! consumer that is not ours (the rocketmq-rust client, in its own process).

mod common;

use common::rocketmq::{rocketmq_consume, rocketmq_project};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_reaches_rocketmq_and_rebuilds_the_table() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Rocketmq]);
    let db = unique_name("rmqf");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    write_range(&mut c, &db, 1, 60).await?;
    c.query_drop(format!(
        "UPDATE {db}.t SET amt = amt + 1, v = NULL WHERE id % 5 = 0"
    ))
    .await?;
    c.query_drop(format!("DELETE FROM {db}.t WHERE id % 9 = 0"))
        .await?;
    write_range(&mut c, &db, 50, 70).await?;
    let want = source_rows(&mut c, &db).await?;
    // Every format there is: a new one is covered here without an edit.
    for &format in sluice_format::FORMAT_NAMES {
        let dir = temp_dir(&format!("{db}-{format}"));
        let topic = format!("{db}_t_{}", format.replace('-', "_"));
        let file = rocketmq_project(
            &dir,
            &format!("{db}-{format}"),
            &db,
            format,
            &start,
            &format!(
                "topic: \"{{db}}_{{table}}_{}\"\ncreate_topics: true\nqueues: 3",
                format.replace('-', "_")
            ),
        );
        run_until_caught_up(&file)?;
        let msgs = rocketmq_consume(&topic)?;
        let got = if format.starts_with("oms") {
            rebuild_oms(&msgs)?
        } else {
            rebuild(format, &msgs)?
        };
        assert_eq!(got, want, "format {format}");
        // Keys are the primary key, the tag the table, and the change is described in user
        // properties; a key's messages stay in the one queue its hash picks.
        let mut queue_of: BTreeMap<String, i64> = BTreeMap::new();
        for m in msgs.iter().filter(|m| m["headers"]["sluice.op"] != "ddl") {
            let key = m["key"]
                .as_str()
                .ok_or("a row message without KEYS")?
                .to_string();
            assert_eq!(m["tag"], "t", "{m}");
            assert_eq!(m["headers"]["sluice.db"], db.as_str(), "{m}");
            assert_eq!(m["headers"]["sluice.table"], "t", "{m}");
            assert!(
                m["headers"]["sluice.position"]
                    .as_str()
                    .is_some_and(|p| !p.is_empty()),
                "{m}"
            );
            let q = m["partition"].as_i64().ok_or("no queue")?;
            let expected = i64::from(sluice_mq::pick(key.as_bytes(), 3));
            assert_eq!(q, expected, "key {key} in queue {q}, hash says {expected}");
            assert_eq!(*queue_of.entry(key).or_insert(q), q);
        }
        assert!(queue_of.len() > 20, "{} keys", queue_of.len());
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_check_uses_existing_queues_and_refuses_missing_or_illegal_topics() -> TestResult
{
    ensure_up(&[Service::Mariadb, Service::Rocketmq]);
    let db = unique_name("rmqt");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    write_range(&mut c, &db, 1, 40).await?;
    let topic = format!("{db}_t");

    // Missing topic, creation not allowed: the run stops naming the topic and the fix.
    let dir = temp_dir(&format!("{db}-missing"));
    let file = rocketmq_project(&dir, &format!("{db}-missing"), &db, "oms", &start, "");
    let err = run_until_caught_up(&file).expect_err("a missing topic must stop the run");
    let err = err.to_string();
    assert!(
        err.contains(&format!("rocketmq topic {topic} does not exist")),
        "{err}"
    );
    assert!(err.contains("create_topics: true"), "{err}");

    // Created with 2 queues by one project; a second project (configured for 6 queues, no
    // creation) finds the topic and hashes over the 2 it has.
    let dir = temp_dir(&format!("{db}-create"));
    let file = rocketmq_project(
        &dir,
        &format!("{db}-create"),
        &db,
        "oms",
        &start,
        "create_topics: true\nqueues: 2",
    );
    run_until_caught_up(&file)?;
    let dir = temp_dir(&format!("{db}-existing"));
    let file = rocketmq_project(
        &dir,
        &format!("{db}-existing"),
        &db,
        "oms",
        &start,
        "queues: 6",
    );
    run_until_caught_up(&file)?;
    let msgs = rocketmq_consume(&topic)?;
    let rows: Vec<&Json> = msgs
        .iter()
        .filter(|m| m["headers"]["sluice.op"] == "insert")
        .collect();
    assert_eq!(rows.len(), 78, "two runs of 39 inserts each");
    for m in &msgs {
        let key = m["key"].as_str().ok_or("no key")?;
        let q = m["partition"].as_i64().ok_or("no queue")?;
        assert_eq!(q, i64::from(sluice_mq::pick(key.as_bytes(), 2)), "{m}");
    }

    // A template that cannot make a topic name is refused when the file is read...
    let dir = temp_dir(&format!("{db}-illegal"));
    let file = rocketmq_project(
        &dir,
        &format!("{db}-illegal"),
        &db,
        "oms",
        &start,
        "topic: \"{db}.{table}\"",
    );
    let err = run_until_caught_up(&file).expect_err("an illegal template");
    let err = err.to_string();
    assert!(err.contains("destination.topic"), "{err}");
    assert!(err.contains("letters, digits, _, -, % and |"), "{err}");
    // ...and a table whose name cannot be in a topic stops the run before anything is sent,
    // naming the table.
    c.query_drop(format!("CREATE TABLE {db}.`t$x` (id INT PRIMARY KEY)"))
        .await?;
    let dir = temp_dir(&format!("{db}-table"));
    let file = rocketmq_project(
        &dir,
        &format!("{db}-table"),
        &db,
        "oms",
        &start,
        "create_topics: true",
    );
    let err = run_until_caught_up(&file).expect_err("an illegal table name");
    let err = err.to_string();
    assert!(
        err.contains(&format!(
            "the topic of table `{db}`.`t$x` would be \"{db}_t$x\""
        )),
        "{err}"
    );
    assert!(err.contains("(\"$\")"), "{err}");
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[test]
fn a_rocketmq_destination_with_kafka_fields_or_no_namesrv_is_refused_at_load() -> TestResult {
    let dir = temp_dir(&unique_name("rmqcfg"));
    let file = rocketmq_project(&dir, "cfg", "x", "oms", "now", "brokers: 127.0.0.1:9092");
    let out = sluice().args(["run", "-f"]).arg(&file).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("destination.brokers"), "{err}");
    assert!(
        err.contains("not a field of a RocketMQ destination"),
        "{err}"
    );
    let text = std::fs::read_to_string(&file)?;
    let text: String = text
        .lines()
        .filter(|l| !l.contains("namesrv") && !l.contains("brokers"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, text)?;
    let out = sluice().args(["run", "-f"]).arg(&file).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("destination.namesrv"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_modes_keep_commit_order_per_topic_table_and_key() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Rocketmq]);
    let db = unique_name("rmqq");
    let mut c = conn().await?;
    let start = three_tables_of_updates(&mut c, &db).await?;
    for mode in ["one", "table", "hash"] {
        let dir = temp_dir(&format!("{db}-{mode}"));
        let topic = format!("{db}_all_{mode}");
        let file_path = rocketmq_project(
            &dir,
            &format!("{db}-{mode}"),
            &db,
            "oms",
            &start,
            &format!(
                "single_topic: {topic}\npartition_mode: {mode}\ncreate_topics: true\nqueues: 3"
            ),
        );
        run_until_caught_up(&file_path)?;
        // Queues play the role of partitions: the same checks as for Kafka.
        check_partition_mode(mode, &db, rocketmq_consume(&topic)?)?;
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_stops_the_project_naming_table_key_and_position(
) -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Rocketmq]);
    let db = unique_name("rmqbig");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    c.query_drop(format!("ALTER TABLE {db}.t MODIFY v TEXT"))
        .await?;
    write_range(&mut c, &db, 1, 5).await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t VALUES (77, REPEAT('x', 20000), 1)"
    ))
    .await?;
    let dir = temp_dir(&db);
    let file = rocketmq_project(
        &dir,
        &db,
        &db,
        "oms",
        &start,
        "create_topics: true\nmax_message_bytes: 10000",
    );
    let err = run_until_caught_up(&file).expect_err("an oversized message must stop the run");
    let err = err.to_string();
    assert!(err.contains(&format!("`{db}`.`t` (key 77)")), "{err}");
    assert!(err.contains("mariadb-bin."), "the position: {err}");
    assert!(err.contains("max_message_bytes"), "{err}");
    // Nothing of the refused batch was sent.
    let msgs = rocketmq_consume(&format!("{db}_t"))?;
    let keys: Vec<&str> = msgs
        .iter()
        .filter(|m| m["headers"]["sluice.op"] == "insert")
        .filter_map(|m| m["key"].as_str())
        .collect();
    assert!(!keys.contains(&"77"), "{keys:?}");
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
