//! `sluice run`: MariaDB -> Kafka projects against the real broker, checked by an independent
//! consumer (Python confluent-kafka) that rebuilds each table from the messages: resume, clear
//! errors, a purged checkpoint.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_to_kafka_project_rebuilds_the_table_and_resumes_without_loss() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // A broker of its own (in memory): quick to read back, and no load on the shared one.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("run");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    for i in 1..=300 {
        c.query_drop(format!("INSERT INTO {db}.t VALUES ({i}, 'v{i}', {i}.5)"))
            .await?;
    }
    c.query_drop(format!(
        "UPDATE {db}.t SET v = CONCAT(v, '-u'), amt = amt * 2 WHERE id % 7 = 0"
    ))
    .await?;
    c.query_drop(format!("DELETE FROM {db}.t WHERE id % 11 = 0"))
        .await?;
    // A multi-row transaction, and a NULL.
    c.query_drop(format!(
        "BEGIN; UPDATE {db}.t SET v = NULL WHERE id = 1; INSERT INTO {db}.t VALUES (1000, 'x', 0.01); COMMIT"
    ))
    .await?;
    let file_path = project(&dir, &db, &db, "oms", &start, "hash");
    use_broker(&file_path, &kafka.addr)?;
    run_until_caught_up(&file_path)?;

    let topic = format!("{db}.t");
    let msgs = consume_from(&kafka.addr, &topic, 0)?;
    let want = source_rows(&mut c, &db).await?;
    assert_eq!(
        rebuild_oms(&msgs)?,
        want,
        "state rebuilt from Kafka differs from the source"
    );
    // Keys land where Kafka's default partitioner puts them.
    for m in &msgs {
        if let Some(key) = m["key"]
            .as_str()
            .filter(|k| !k.is_empty() && !k.contains('.'))
        {
            let p = (murmur2(key.as_bytes()) & 0x7fff_ffff) % 3;
            assert_eq!(m["partition"].as_i64(), Some(i64::from(p)), "key {key}");
        }
    }

    // More changes, including DDL; a second run resumes from the checkpoint.
    c.query_drop(format!("ALTER TABLE {db}.t ADD COLUMN extra INT DEFAULT 5"))
        .await?;
    c.query_drop(format!("UPDATE {db}.t SET v = 'again' WHERE id <= 20"))
        .await?;
    c.query_drop(format!("DELETE FROM {db}.t WHERE id BETWEEN 100 AND 120"))
        .await?;
    run_until_caught_up(&file_path)?;
    let msgs2 = consume_from(&kafka.addr, &topic, 0)?;
    assert_eq!(
        rebuild_oms(&msgs2)?,
        source_rows(&mut c, &db).await?,
        "after resume"
    );
    let ddl: Vec<&Json> = msgs2
        .iter()
        .filter(|m| m["value"]["recordType"] == "DDL")
        .collect();
    let ddl_text: Vec<&str> = ddl
        .iter()
        .filter_map(|m| m["value"]["postStruct"]["ddl"].as_str())
        .collect();
    assert_eq!(
        ddl_text.len(),
        2,
        "CREATE TABLE and ALTER TABLE: {ddl_text:?}"
    );
    assert!(ddl_text[1].contains("ADD COLUMN extra"), "{ddl_text:?}");

    // Status reads the store.
    let out = sluice().args(["status", "-f"]).arg(&file_path).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("state:      Completed") && text.contains(&format!("rows:       {db}.t ")),
        "{text}"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[test]
fn a_wrong_project_file_and_an_unreachable_source_are_clear_errors() -> TestResult {
    let dir = temp_dir(&unique_name("badproj"));
    let f = dir.join("p.yaml");
    std::fs::write(&f, "name: p\nsource:\n  type: oracle\n  url: mysql://root@127.0.0.1:1\ndestination:\n  type: kafka\n  brokers: 127.0.0.1:1\n  format: oms\nobjects:\n  include: [\"a.*\"]\n")?;
    let out = sluice().args(["run", "-f"]).arg(&f).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("p.yaml:3: source.type: \"oracle\" is not a source type; use mysql, mariadb, oceanbase, postgres, or sharded"),
        "{err}"
    );
    // A PostgreSQL source given a MySQL URL.
    std::fs::write(&f, "name: p\nsource:\n  type: postgres\n  url: mysql://root@127.0.0.1:1\ndestination:\n  type: kafka\n  brokers: 127.0.0.1:1\n  format: oms\nobjects:\n  include: [\"a.*\"]\n")?;
    let out = sluice().args(["run", "-f"]).arg(&f).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("source.url: mysql://root@127.0.0.1:1 is not a postgres://user:password@host:port/database URL"),
        "{err}"
    );

    std::fs::write(&f, "name: p\nsource:\n  type: mariadb\n  url: mysql://root@127.0.0.1:1\ndestination:\n  type: kafka\n  brokers: 127.0.0.1:1\n  format: oms\nobjects:\n  include: [\"a.*\"]\n")?;
    let out = sluice().args(["run", "-f"]).arg(&f).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot connect to mysql://root@127.0.0.1:1"),
        "{err}"
    );
    Ok(())
}

/// A password shows in no output of `sluice run` or `sluice status`: not when it makes a source,
/// destination or shard URL unparsable, not when the server cannot be reached.
#[test]
fn a_password_appears_in_no_output() -> TestResult {
    let dir = temp_dir(&unique_name("pwout"));
    let f = dir.join("p.yaml");
    let pw = "Xy#7/secret@pw";
    let kafka = format!(
        "name: p\nsource:\n  type: mariadb\n  url: \"mysql://app:{pw}@127.0.0.1:1\"\ndestination:\n  type: kafka\n  brokers: 127.0.0.1:1\n  format: oms\nobjects:\n  include: [\"a.*\"]\n"
    );
    let database = format!(
        "name: p\nsource:\n  type: mariadb\n  url: mysql://root@127.0.0.1:1\ndestination:\n  type: mariadb\n  url: \"mysql://app:{pw}@127.0.0.1:1\"\nobjects:\n  include: [\"a.*\"]\n"
    );
    let sharded = format!(
        "name: p\nsource:\n  type: sharded\n  instances:\n    - name: a\n      url: \"mysql://app:{pw}@127.0.0.1:1\"\n  logical_tables:\n    - name: d.t\n      shards: {{a: d.t}}\ndestination:\n  type: mariadb\n  url: mysql://root@127.0.0.1:1\nobjects:\n  include: [\"d.*\"]\n"
    );
    // Escaped so that the URL parses: the connection error must not show it either.
    let reachable_form = format!(
        "name: p\nsource:\n  type: mariadb\n  url: \"mysql://app:{}@127.0.0.1:1\"\ndestination:\n  type: kafka\n  brokers: 127.0.0.1:1\n  format: oms\nobjects:\n  include: [\"a.*\"]\n",
        pw.replace('#', "%23").replace('/', "%2F").replace('@', "%40")
    );
    for (what, yaml, says) in [
        (
            "source.url",
            kafka,
            "p.yaml:4: source.url: mysql://app:***@127.0.0.1:1 is not",
        ),
        (
            "destination.url",
            database,
            "p.yaml:7: destination.url: mysql://app:***@",
        ),
        (
            "an instance url",
            sharded,
            "source.instances: a: mysql://app:***@",
        ),
        (
            "an unreachable source",
            reachable_form,
            "cannot connect to mysql://app:***@127.0.0.1:1",
        ),
    ] {
        std::fs::write(&f, yaml)?;
        for cmd in ["run", "status"] {
            let out = sluice().args([cmd, "-f"]).arg(&f).output()?;
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            for piece in ["Xy", "secret", "7%2F"] {
                assert!(
                    !all.contains(piece),
                    "{what}, {cmd}: the password shows: {all}"
                );
            }
            if cmd == "run" {
                assert!(!out.status.success(), "{what}: {all}");
                assert!(all.contains(says), "{what}: {all}");
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_whose_binlog_was_purged_is_a_clear_error() -> TestResult {
    ensure_up(&[Service::Kafka]);
    let (_server, mut c, db, file_path) = own_source("purged").await?;
    run_until_caught_up(&file_path)?;

    // The checkpoint is in mariadb-bin.000001; purge it.
    c.query_drop("FLUSH BINARY LOGS").await?;
    c.query_drop("FLUSH BINARY LOGS").await?;
    write_range(&mut c, &db, 10, 20).await?;
    c.query_drop("PURGE BINARY LOGS TO 'mariadb-bin.000003'")
        .await?;
    let out = sluice()
        .args(["run", "-f"])
        .arg(&file_path)
        .args(["--until", "caught-up"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a run past a purged checkpoint must fail: {err}"
    );
    assert!(
        err.contains("binlog file mariadb-bin.000001 was purged; the earliest available is mariadb-bin.000003")
            && err.contains("This project's checkpoint lies in the purged file"),
        "{err}"
    );
    let status = sluice().args(["status", "-f"]).arg(&file_path).output()?;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("state:      Failed") && text.contains("was purged"),
        "{text}"
    );
    Ok(())
}

/// The source is down when a project that has run before starts again: the run does not fail,
/// it says "retrying: source: ..." in its status and runs again from its checkpoint with a
/// growing backoff; once the server is back it delivers what was written meanwhile, and the
/// status stops saying it is retrying. (A project's first run fails at once instead: see
/// `a_wrong_project_file_and_an_unreachable_source_are_clear_errors`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_down_when_a_run_resumes_is_retried_until_it_returns() -> TestResult {
    let (mut server, c, db, file_path) = own_source("srcdown").await?;
    let url = format!("mysql://root@{}", server.addr);
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    use_broker(&file_path, &kafka.addr)?;
    run_until_caught_up(&file_path)?;
    drop(c);

    server.crash();
    let mut child = spawn_run(&file_path)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let st = status_of(&file_path);
        if st.contains("retrying: source:") && st.contains("cannot connect") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && child.try_wait()?.is_none(),
            "the run does not say it retries the source: {st}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Still running after a few attempts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(child.try_wait()?.is_none(), "the run gave up");

    server.start_again()?;
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url)?).await?;
    write_range(&mut c, &db, 10, 20).await?;
    let want = source_rows(&mut c, &db).await?;
    let topic = format!("{db}.t");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let msgs = consume_from(&kafka.addr, &topic, 0)?;
        if rebuild_oms(&msgs)? == want && !status_of(&file_path).contains("retrying") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && child.try_wait()?.is_none(),
            "the rows written while the source was down did not arrive: {}",
            status_of(&file_path)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sigterm(&child)?;
    assert!(child.wait()?.success());
    Ok(())
}

/// A MariaDB server of the test's own with binary logging on, a database named after `prefix`
/// whose table `t` holds ids 1..10, and a project (OMS format, from the earliest position) that
/// reads it: the server, a connection, the database and the project file.
async fn own_source(prefix: &str) -> Result<OwnSource, Box<dyn std::error::Error>> {
    let server = sluice_testkit::TempMariadb::start(&[
        "log_bin=mariadb-bin",
        "server_id=9",
        "binlog_format=ROW",
        "binlog_row_image=FULL",
        "binlog_row_metadata=FULL",
    ])?;
    let url = format!("mysql://root@{}", server.addr);
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url)?).await?;
    let db = unique_name(prefix);
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20), amt DECIMAL(8,2))"
    ))
    .await?;
    write_range(&mut c, &db, 1, 10).await?;
    let dir = temp_dir(&db);
    let file_path = project(&dir, &db, &db, "oms", "earliest", "hash");
    let yaml = std::fs::read_to_string(&file_path)?.replace(&MARIADB.get(), &server.addr);
    std::fs::write(&file_path, yaml)?;
    Ok((server, c, db, file_path))
}

type OwnSource = (
    sluice_testkit::TempMariadb,
    mysql_async::Conn,
    String,
    PathBuf,
);
