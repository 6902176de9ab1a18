//! What reaches Kafka and where: partition modes, object rules, rename, DML/DDL filters,
//! column subsets.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_modes_keep_total_per_table_and_per_key_order() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // A broker of its own (in memory): the shared one's file storage reads back slowly once
    // it holds many test runs' records.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("parts");
    let mut c = conn().await?;
    let start = three_tables_of_updates(&mut c, &db).await?;
    for mode in ["one", "table", "hash"] {
        let dir = temp_dir(&format!("{db}-{mode}"));
        let topic = format!("{db}.all.{mode}");
        let file_path = project(&dir, &format!("{db}-{mode}"), &db, "oms", &start, mode);
        use_broker(&file_path, &kafka.addr)?;
        let yaml = std::fs::read_to_string(&file_path)?.replace(
            "  topic: \"{db}.{table}\"\n",
            &format!("  single_topic: \"{topic}\"\n"),
        );
        std::fs::write(&file_path, yaml)?;
        run_until_caught_up(&file_path)?;
        check_partition_mode(mode, &db, consume_from(&kafka.addr, &topic, 0)?)?;
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// Applies whole partitions one after another in `order` (a consumer group's members each
/// read their own partitions at their own pace: any order of partitions is possible), by the
/// documented rule: insert/update puts the row of its key, delete removes its key.
fn rebuild_partitions_in(order: &[i64], msgs: &[Json]) -> BTreeMap<String, Json> {
    let mut state = BTreeMap::new();
    for p in order {
        let mut ms: Vec<&Json> = msgs
            .iter()
            .filter(|m| m["partition"].as_i64() == Some(*p))
            .collect();
        ms.sort_by_key(|m| m["offset"].as_i64());
        for m in ms {
            let v = &m["value"];
            let key = v["allMetaData"]["record_primary_value"]
                .as_str()
                .unwrap_or("")
                .to_string();
            match v["recordType"].as_str() {
                Some("INSERT" | "UPDATE") => {
                    state.insert(key, as_strings(&v["postStruct"]));
                }
                Some("DELETE") => {
                    state.remove(&key);
                }
                _ => {}
            }
        }
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_that_move_keys_rebuild_the_table_whatever_order_partitions_are_read_in(
) -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("moves");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    // Keys moved (one statement moving ten), old keys reused, moved keys deleted and moved
    // again, a key moved into one that was deleted, and plain updates between.
    for sql in [
        "INSERT INTO {t} SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_40".to_string(),
        "UPDATE {t} SET id = id + 100, v = 'moved' WHERE id <= 10".into(),
        "INSERT INTO {t} SELECT seq, 'again', 0 FROM seq_1_to_5".into(),
        "UPDATE {t} SET v = 'plain' WHERE id IN (2, 102)".into(),
        "DELETE FROM {t} WHERE id BETWEEN 105 AND 107".into(),
        "UPDATE {t} SET id = id + 1000 WHERE id BETWEEN 101 AND 104".into(),
        "UPDATE {t} SET id = 107 WHERE id = 20".into(),
        "UPDATE {t} SET id = 20, amt = 20.5 WHERE id = 30".into(),
        "DELETE FROM {t} WHERE id = 1".into(),
        "UPDATE {t} SET id = 1 WHERE id = 1101".into(),
    ] {
        c.query_drop(format!("USE {db}")).await?;
        c.query_drop(sql.replace("{t}", &format!("{db}.t"))).await?;
    }
    let want = source_rows(&mut c, &db).await?;
    for format in ["oms", "debezium"] {
        let dir = temp_dir(&format!("{db}-{format}"));
        let path = project(&dir, &format!("{db}-{format}"), &db, format, &start, "hash");
        use_broker(&path, &kafka.addr)?;
        let yaml = std::fs::read_to_string(&path)?.replace(
            "  topic: \"{db}.{table}\"\n",
            &format!("  topic: \"{{db}}.{{table}}.{format}\"\n"),
        );
        std::fs::write(&path, yaml)?;
        run_until_caught_up(&path)?;
        let all = consume_from(&kafka.addr, &format!("{db}.t.{format}"), 0)?;
        if format == "oms" {
            // Nothing lost (the DDL counts too), each partition in sequence order.
            check_sequences_and_rebuild(&all)?;
        }
        let msgs: Vec<Json> = all
            .into_iter()
            .filter(|m| m["value"]["recordType"] != "DDL" && m["value"].get("ddl").is_none())
            .collect();
        // Every key lives in one partition: then per-key order holds for any consumer.
        let mut home: BTreeMap<String, i64> = BTreeMap::new();
        for m in &msgs {
            let key = m["key"].as_str().unwrap_or("").to_string();
            let p = m["partition"].as_i64().unwrap_or(-1);
            let at = *home.entry(key.clone()).or_insert(p);
            assert_eq!(at, p, "{format}: key {key:?} in partitions {at} and {p}");
        }
        // The halves of a split update say which half they are.
        let halves = msgs
            .iter()
            .filter(|m| m["headers"]["sluice.key_change"].is_string())
            .count();
        assert_eq!(halves, 2 * 17, "{format}: 17 key moves, two messages each");
        if format == "oms" {
            for order in [
                [0, 1, 2],
                [0, 2, 1],
                [1, 0, 2],
                [1, 2, 0],
                [2, 0, 1],
                [2, 1, 0],
            ] {
                assert_eq!(
                    rebuild_partitions_in(&order, &msgs),
                    want,
                    "oms: partitions read in the order {order:?}"
                );
            }
        } else {
            for m in msgs.iter().filter(|m| m["value"]["op"] == "u") {
                assert_eq!(
                    m["value"]["before"]["id"], m["value"]["after"]["id"],
                    "debezium: an update that moves its key is a delete and a create: {m}"
                );
            }
            assert_eq!(rebuild("debezium", &msgs)?, want, "debezium");
        }
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_rename_and_dml_filter_decide_what_arrives_and_under_which_name() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // A broker of its own (in memory): the shared one's file storage reads back slowly once
    // it holds many test runs' records.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("rules");
    let mut c = conn().await?;
    let (file, offset) = sluice_source_mysql_position(&mut c).await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    for t in ["orders", "skip_me", "items"] {
        c.query_drop(format!(
            "CREATE TABLE {db}.{t} (id INT PRIMARY KEY, v VARCHAR(20), amt DECIMAL(8,2))"
        ))
        .await?;
        c.query_drop(format!(
            "INSERT INTO {db}.{t} VALUES (1, 'a', 1), (2, 'b', 2)"
        ))
        .await?;
        c.query_drop(format!("UPDATE {db}.{t} SET v = 'changed' WHERE id = 1"))
            .await?;
        c.query_drop(format!("DELETE FROM {db}.{t} WHERE id = 2"))
            .await?;
    }
    let dir = temp_dir(&db);
    let file_path = project(&dir, &db, &db, "oms", &format!("{file}:{offset}"), "hash");
    use_broker(&file_path, &kafka.addr)?;
    let yaml = std::fs::read_to_string(&file_path)?
        .replace(
            &format!("  include: [\"{db}.*\"]\n"),
            &format!("  include: [\"{db}.*\"]\n  exclude: [\"{db}.skip_*\"]\n  rename:\n    {db}.orders: {db}_dst.orders_v2\n"),
        )
        .replace("options:\n", "options:\n  dml: [insert, delete]\n  ddl: false\n");
    std::fs::write(&file_path, yaml)?;
    run_until_caught_up(&file_path)?;

    // Renamed: the topic and the names in the messages.
    let mut renamed = consume_from(&kafka.addr, &format!("{db}_dst.orders_v2"), 0)?;
    // Commit order across partitions is the source sequence (docs/FORMATS.md).
    renamed.sort_by_key(|m| m["value"]["allMetaData"]["storeDataSequence"].as_u64());
    let kinds: Vec<(&str, &str, &str)> = renamed
        .iter()
        .map(|m| {
            let v = &m["value"];
            (
                v["recordType"].as_str().unwrap_or(""),
                v["allMetaData"]["db"].as_str().unwrap_or(""),
                v["allMetaData"]["table_name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let dst = format!("{db}_dst");
    assert_eq!(
        kinds,
        vec![
            ("INSERT", dst.as_str(), "orders_v2"),
            ("INSERT", dst.as_str(), "orders_v2"),
            ("DELETE", dst.as_str(), "orders_v2")
        ],
        "no UPDATE (dml filter), no DDL (ddl: false), renamed"
    );
    // Included, not renamed; updates filtered out too.
    let items = consume_from(&kafka.addr, &format!("{db}.items"), 0)?;
    assert_eq!(items.len(), 3, "{items:?}");
    // Excluded: no topic at all (schema sync creates only selected tables' topics).
    let py = services_cache().join("pytools/bin/python");
    let out = Command::new(py)
        .arg(repo_root().join("dev/probes/kafka_consume.py"))
        .args([
            "--bootstrap",
            &kafka.addr,
            "--idle",
            "1",
            &format!("{db}.skip_me"),
        ])
        .output()?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "excluded table reached Kafka: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_subset_delivers_only_its_columns_and_must_keep_the_key() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // A broker of its own (in memory): the shared one's file storage reads back slowly once
    // it holds many test runs' records.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("cols");
    let mut c = conn().await?;
    let (file, offset) = sluice_source_mysql_position(&mut c).await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20), secret VARCHAR(20), amt DECIMAL(8,2))"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t VALUES (1, 'a', 'hidden', 1.00), (2, 'b', 'hidden', 2.00)"
    ))
    .await?;
    c.query_drop(format!(
        "UPDATE {db}.t SET secret = 'still hidden', v = 'a2' WHERE id = 1"
    ))
    .await?;
    let dir = temp_dir(&db);
    let file_path = project(&dir, &db, &db, "oms", &format!("{file}:{offset}"), "hash");
    use_broker(&file_path, &kafka.addr)?;
    let base = std::fs::read_to_string(&file_path)?;
    let with = |cols: &str| {
        base.replace(
            &format!("  include: [\"{db}.*\"]\n"),
            &format!("  include: [\"{db}.*\"]\n  columns:\n    {db}.t: [{cols}]\n"),
        )
    };
    // Without the key: refused before anything is sent.
    std::fs::write(&file_path, with("v, amt"))?;
    let err =
        run_until_caught_up(&file_path).expect_err("a subset without the key must be refused");
    assert!(
        err.to_string()
            .contains("the primary-key column id must be delivered"),
        "{err}"
    );

    std::fs::write(&file_path, with("id, v, amt"))?;
    run_until_caught_up(&file_path)?;
    let msgs = consume_from(&kafka.addr, &format!("{db}.t"), 0)?;
    let rows: Vec<&Json> = msgs
        .iter()
        .filter(|m| m["value"]["recordType"] != "DDL")
        .collect();
    assert_eq!(rows.len(), 3, "{msgs:?}");
    for m in &rows {
        for image in ["prevStruct", "postStruct"] {
            if let Some(o) = m["value"][image].as_object() {
                let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
                keys.sort_unstable();
                assert_eq!(keys, ["amt", "id", "v"], "{m}");
            }
        }
    }
    assert_eq!(rebuild_oms(&msgs)?, source_rows(&mut c, &db).await?);
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_filter_delivers_exactly_the_rows_mariadb_itself_selects() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // A broker of its own (in memory): the shared one's file storage reads back slowly once
    // it holds many test runs' records.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let cond = "status <> 'DRAFT' AND (amount > 100 OR note IS NULL)";
    let db = unique_name("filter");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, status VARCHAR(10), amount DECIMAL(8,2), note VARCHAR(10))"
    ))
    .await?;
    // Copied by full sync: pass, fail, pass by NULL note, fail, NULL status (unknown: fails),
    // fail by a case-insensitive, trailing-space-blind comparison ('draft ' = 'DRAFT').
    c.query_drop(format!(
        "INSERT INTO {db}.t VALUES (1,'PAID',150,'a'), (2,'DRAFT',500,NULL), (3,'NEW',50,NULL), \
         (4,'NEW',50,'x'), (5,NULL,200,'n'), (6,'draft ',101,'')"
    ))
    .await?;
    let path = project(&dir, &db, &db, "oms", "now", "hash");
    use_broker(&path, &kafka.addr)?;
    let yaml = std::fs::read_to_string(&path)?
        .replace("  start: \"now\"", "  full: true")
        .replace(
            "objects:\n",
            &format!("objects:\n  filters:\n    {db}.t: \"{cond}\"\n"),
        );
    std::fs::write(&path, yaml)?;
    run_until_caught_up(&path)?;
    // Changes: in, out, moving in, moving out, staying in, staying out, deletes of both.
    for sql in [
        "INSERT INTO t VALUES (7,'NEW',300,'z'), (8,'DRAFT',300,NULL)",
        "UPDATE t SET amount = 150 WHERE id = 4",
        "UPDATE t SET status = 'DRAFT' WHERE id = 1",
        "UPDATE t SET amount = 200 WHERE id = 6",
        "UPDATE t SET note = 'q' WHERE id = 2",
        "DELETE FROM t WHERE id IN (3, 8)",
        "UPDATE t SET status = 'OK' WHERE id = 5",
    ] {
        c.query_drop(format!("USE {db}")).await?;
        c.query_drop(sql).await?;
    }
    run_until_caught_up(&path)?;

    let msgs = consume_from(&kafka.addr, &format!("{db}.t"), 0)?;
    // Every image delivered as present passes the condition by MariaDB's own evaluation.
    for m in &msgs {
        let v = &m["value"];
        if !matches!(v["recordType"].as_str(), Some("ROW" | "INSERT" | "UPDATE")) {
            continue;
        }
        let p = &v["postStruct"];
        let lit = |x: &Json| match x {
            Json::Null => "NULL".to_string(),
            Json::String(s) => format!("'{}'", s.replace('\'', "''")),
            other => other.to_string(),
        };
        let passes: Option<i64> = c
            .query_first(format!(
                "SELECT ({cond}) IS TRUE FROM (SELECT CAST({} AS CHAR(10)) AS status, CAST({} AS DECIMAL(8,2)) AS amount, \
                 CAST({} AS CHAR(10)) AS note) x",
                lit(&p["status"]),
                lit(&p["amount"]),
                lit(&p["note"])
            ))
            .await?;
        assert_eq!(passes, Some(1), "delivered a row outside the filter: {p}");
    }
    // The table rebuilt from the messages is what MariaDB selects with the same condition.
    let mut state = BTreeMap::new();
    let mut sorted: Vec<&Json> = msgs.iter().collect();
    sorted.sort_by_key(|m| (m["partition"].as_i64(), m["offset"].as_i64()));
    for m in sorted {
        let v = &m["value"];
        let key = v["allMetaData"]["record_primary_value"]
            .as_str()
            .unwrap_or("")
            .to_string();
        match v["recordType"].as_str() {
            Some("ROW" | "INSERT" | "UPDATE") => {
                state.insert(key, v["postStruct"]["note"].clone());
            }
            Some("DELETE") => {
                state.remove(&key);
            }
            _ => {}
        }
    }
    let want: Vec<(i64, Option<String>)> = c
        .query(format!(
            "SELECT id, note FROM {db}.t WHERE {cond} ORDER BY id"
        ))
        .await?;
    let want: BTreeMap<String, Json> = want
        .into_iter()
        .map(|(id, note)| (id.to_string(), note.map_or(Json::Null, Json::String)))
        .collect();
    assert_eq!(state, want);
    assert_eq!(
        want.keys().cloned().collect::<Vec<_>>(),
        vec!["4", "5", "7"],
        "the fixture exercises each case"
    );
    // A condition naming a missing column is refused at start, naming it.
    let bad = std::fs::read_to_string(&path)?.replace("note IS NULL", "nope IS NULL");
    std::fs::write(&path, bad)?;
    let err = run_until_caught_up(&path)
        .expect_err("missing column")
        .to_string();
    assert!(err.contains("reads column nope"), "{err}");
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
