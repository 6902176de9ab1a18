//! Smoke tests of the harness: each fails unless the service is the real thing, reached at the
//! address the rest of the suite uses.

use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice_testkit::{
    ensure_up, repo_root, unique_name, Address, Service, KAFKA, MARIADB, MARIADB_SHARD1,
    MARIADB_SHARD2, OCEANBASE, POSTGRES, ROCKETMQ_NAMESRV,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn connect_mysql(addr: &Address) -> Result<Conn, mysql_async::Error> {
    Conn::new(Opts::from_url(&format!("mysql://root@{}", addr.get()))?).await
}

async fn var(conn: &mut Conn, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let v: Option<String> = conn.query_first(format!("SELECT @@{name}")).await?;
    Ok(v.unwrap_or_default())
}

/// Binlog settings as the capture issue needs them, and a committed insert visible in the binlog
/// as annotate, table-map and rows events.
async fn check_mariadb_binlog(addr: &Address, server_id: &str) -> TestResult {
    let mut conn = connect_mysql(addr).await?;
    assert_eq!(var(&mut conn, "log_bin").await?, "1");
    assert_eq!(var(&mut conn, "binlog_format").await?, "ROW");
    assert_eq!(var(&mut conn, "binlog_row_image").await?, "FULL");
    assert_eq!(var(&mut conn, "binlog_row_metadata").await?, "FULL");
    assert_eq!(var(&mut conn, "gtid_strict_mode").await?, "1");
    assert_eq!(var(&mut conn, "server_id").await?, server_id);
    let version = var(&mut conn, "version").await?;
    assert!(version.contains("MariaDB"), "not MariaDB: {version}");

    let db = unique_name("smoke");
    conn.query_drop(format!("CREATE DATABASE {db}")).await?;
    conn.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(64))"
    ))
    .await?;
    let status: Row = conn
        .query_first("SHOW MASTER STATUS")
        .await?
        .ok_or("no master status")?;
    let (file, pos): (String, u64) = (status.get(0).ok_or("file")?, status.get(1).ok_or("pos")?);
    let marker = unique_name("marker");
    conn.query_drop(format!("INSERT INTO {db}.t VALUES (1, '{marker}')"))
        .await?;

    // The insert may land after a rotation: scan this file from `pos`, then any later files.
    let logs: Vec<String> = conn
        .query_map("SHOW BINARY LOGS", |row: Row| {
            row.get::<String, _>(0).unwrap_or_default()
        })
        .await?;
    let mut events: Vec<(String, String)> = Vec::new();
    for log in logs.iter().filter(|l| **l >= file) {
        let from = if *log == file { pos } else { 4 };
        let rows: Vec<(String, String)> = conn
            .query_map(
                format!("SHOW BINLOG EVENTS IN '{log}' FROM {from}"),
                |row: Row| {
                    (
                        row.get::<String, _>(2).unwrap_or_default(),
                        row.get::<String, _>(5).unwrap_or_default(),
                    )
                },
            )
            .await?;
        events.extend(rows);
    }
    assert!(
        events
            .iter()
            .any(|(t, info)| t == "Annotate_rows" && info.contains(&marker)),
        "no annotate event with the insert's text: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(t, info)| t == "Table_map" && info.contains(&format!("({db}.t)"))),
        "no table map for {db}.t: {events:?}"
    );
    assert!(
        events.iter().any(|(t, _)| t.starts_with("Write_rows")),
        "no rows event: {events:?}"
    );
    assert!(
        events.iter().any(|(t, _)| t == "Gtid"),
        "no GTID event: {events:?}"
    );
    conn.query_drop(format!("DROP DATABASE {db}")).await?;
    conn.disconnect().await?;
    Ok(())
}

#[tokio::test]
async fn mariadb_writes_row_binlog_with_full_metadata() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    check_mariadb_binlog(&MARIADB, "1").await
}

#[tokio::test]
async fn mariadb_shards_write_row_binlogs_with_their_own_server_ids() -> TestResult {
    ensure_up(&[Service::MariadbShards]);
    check_mariadb_binlog(&MARIADB_SHARD1, "2").await?;
    check_mariadb_binlog(&MARIADB_SHARD2, "3").await
}

#[tokio::test]
async fn kafka_broker_round_trips_a_record_through_rdkafka() -> TestResult {
    ensure_up(&[Service::Kafka]);
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", KAFKA.get())
        .set("socket.timeout.ms", "5000");
    let topic = unique_name("smoke");
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    for r in created {
        r.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
    }

    let producer: FutureProducer = config
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "15000")
        .create()?;
    let value = unique_name("value");
    let delivery = producer
        .send(
            FutureRecord::to(&topic).key("k1").payload(&value),
            Duration::from_secs(15),
        )
        .await
        .map_err(|(e, _)| format!("produce: {e}"))?;
    let (partition, offset) = (delivery.partition, delivery.offset);

    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", unique_name("smoke-group"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
    consumer.assign(&tpl)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                assert_eq!(m.payload(), Some(value.as_bytes()));
                assert_eq!(m.key(), Some(&b"k1"[..]));
                assert_eq!(m.offset(), offset);
                return Ok(());
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    Err(format!("record {topic}[{partition}]@{offset} was not read back").into())
}

#[test]
fn rocketmq_round_trips_a_message_through_the_rocketmq_rust_client() -> TestResult {
    ensure_up(&[Service::Rocketmq]);
    let topic = unique_name("SluiceSmoke");
    let out = Command::new(repo_root().join("dev/services"))
        .args([
            "rocketmq-probe",
            "roundtrip",
            "--namesrv",
            &ROCKETMQ_NAMESRV.get(),
            "--topic",
            &topic,
        ])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("round trip ok: {topic}")),
        "unexpected probe output: {stdout}"
    );
    Ok(())
}

#[tokio::test]
async fn oceanbase_seekdb_answers_with_an_oceanbase_version_and_accepts_a_write() -> TestResult {
    ensure_up(&[Service::Oceanbase]);
    let mut conn = connect_mysql(&OCEANBASE).await?;
    let version: String = conn
        .query_first("SELECT version()")
        .await?
        .ok_or("no version")?;
    assert!(version.contains("OceanBase"), "not OceanBase: {version}");
    let db = unique_name("smoke");
    conn.query_drop(format!("CREATE DATABASE {db}")).await?;
    conn.query_drop(format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v VARCHAR(64))"
    ))
    .await?;
    conn.query_drop(format!(
        "INSERT INTO {db}.t VALUES (7, 'seven'), (8, 'eight')"
    ))
    .await?;
    conn.query_drop(format!(
        "INSERT INTO {db}.t VALUES (7, 'SEVEN') ON DUPLICATE KEY UPDATE v = VALUES(v)"
    ))
    .await?;
    let rows: Vec<(i64, String)> = conn
        .query(format!("SELECT id, v FROM {db}.t ORDER BY id"))
        .await?;
    assert_eq!(
        rows,
        vec![(7, "SEVEN".to_string()), (8, "eight".to_string())]
    );
    conn.query_drop(format!("DROP DATABASE {db}")).await?;
    conn.disconnect().await?;
    Ok(())
}

#[tokio::test]
async fn postgres_answers_a_query_and_has_logical_wal() -> TestResult {
    ensure_up(&[Service::Postgres]);
    let (host, port) = POSTGRES
        .get()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .ok_or("addr")?;
    let (client, connection) = tokio_postgres::connect(
        &format!("host={host} port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await?;
    let conn_task = tokio::spawn(connection);
    let version: String = client.query_one("SELECT version()", &[]).await?.get(0);
    assert!(
        version.starts_with("PostgreSQL"),
        "not PostgreSQL: {version}"
    );
    let wal: String = client.query_one("SHOW wal_level", &[]).await?.get(0);
    assert_eq!(wal, "logical");
    let sum: i64 = client
        .query_one("SELECT sum(g)::bigint FROM generate_series(1, 100) g", &[])
        .await?
        .get(0);
    assert_eq!(sum, 5050);
    drop(client);
    conn_task.await??;
    Ok(())
}

/// The harness's restart policy: a Kafka broker that runs but answers nothing (stopped with
/// SIGSTOP here, as a wedged broker would be) is restarted by `dev/services up`, and keeps the
/// records it stored. On a private state folder and port, so the shared broker is untouched.
#[tokio::test]
async fn a_wedged_kafka_broker_is_restarted_by_up_and_keeps_its_records() -> TestResult {
    ensure_up(&[Service::Kafka]);
    let state = std::env::temp_dir().join(unique_name("wedged"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let services = |action: &str| {
        Command::new(repo_root().join("dev/services"))
            .args([action, "kafka"])
            .env("SLUICE_SERVICES_DIR", &state)
            .env("SLUICE_KAFKA_ADDR", &addr)
            .env("SLUICE_KAFKA_STORAGE", "sqlite")
            .output()
    };
    let up = services("up")?;
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    eprintln!("private broker up at {addr}");
    let topic = unique_name("kept");
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &addr);
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    for r in admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?
    {
        r.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
    }
    {
        let producer: FutureProducer = config.create()?;
        producer
            .send(
                FutureRecord::<str, str>::to(&topic).payload("before"),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| format!("produce: {e}"))?;
    }
    drop(admin);
    let pid = std::fs::read_to_string(state.join("kafka/pid"))?
        .trim()
        .to_string();
    eprintln!("record stored; stopping pid {pid}");
    Command::new("kill").args(["-STOP", &pid]).status()?;
    let again = services("up")?;
    let said = String::from_utf8_lossy(&again.stderr).to_string();
    // Whatever happened, never leave a stopped process behind.
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    assert!(again.status.success(), "{said}");
    assert!(said.contains("restarting it"), "{said}");
    let new_pid = std::fs::read_to_string(state.join("kafka/pid"))?
        .trim()
        .to_string();
    assert_ne!(new_pid, pid, "a new broker process");
    let mut got = None;
    {
        // Dropped before the broker goes: a client dropped later waits for it.
        let consumer: BaseConsumer = config.clone().set("group.id", unique_name("g")).create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Beginning)?;
        consumer.assign(&tpl)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while got.is_none() && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => got = m.payload().map(|p| String::from_utf8_lossy(p).to_string()),
                Some(Err(e)) => eprintln!("consumer: {e}"),
                None => {}
            }
        }
    }
    let down = services("down")?;
    let _ = std::fs::remove_dir_all(&state);
    assert!(down.status.success());
    assert_eq!(
        got.as_deref(),
        Some("before"),
        "the record survived the restart"
    );
    Ok(())
}
