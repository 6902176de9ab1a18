//! The destination contract (docs/SINKS.md), run against every destination on the real
//! servers: each destination is made from its section of a project file through the registry,
//! as a run makes it, and given the same batches. A new destination adds a `Harness`.
//!
//! What is checked, in this order:
//! 1. the schema step twice (idempotent);
//! 2. three batches sent before any is waited for (in flight), applied in per-key order: read
//!    back, the table is the state after the last change of each key;
//! 3. acknowledged bytes grow with each acknowledged batch;
//! 4. the last two batches delivered again, as after a crash: the same final state;
//! 5. a destination that cannot be reached is reported as unavailable (transient), never as a
//!    refusal.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;
use sluice_core::sink::{DeliveryItem, SinkError};
use sluice_core::{
    Column, ColumnDef, ColumnType, Event, Op, Position, RowChange, TableDef, TableId, TableSchema,
    TableSpec, Value,
};
use sluice_format::{DbType, SourceInfo};
use sluice_pipeline::DestinationSpec;
use sluice_registry::Destination;
use sluice_testkit::{
    ensure_up, repo_root, unique_name, Service, TempKafka, DATAHUB, MARIADB, OCEANBASE,
    ROCKETMQ_NAMESRV,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Final value of each key.
type State = BTreeMap<i64, i64>;

/// What the suite needs to know of one destination.
trait Harness {
    /// The `destination:` section of a project file.
    fn section(&self) -> String;
    /// The same destination at an address where nothing listens.
    fn unreachable_section(&self) -> String;
    /// The table as the destination holds it now.
    fn read_back(&mut self, table: &TableId, expect_messages: usize) -> Result<State, String>;
}

fn destination(section: &str, project: &str) -> Result<Destination, String> {
    let text = format!("name: {project}\n{section}");
    Destination::parse(
        section_kind(section).as_str(),
        &text,
        "compliance.yaml",
        project,
        HashMap::new(),
    )
    .map_err(|e| e.to_string())
}

fn section_kind(section: &str) -> String {
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix("type:"))
        .map(|k| k.trim().to_string())
        .unwrap_or_default()
}

fn info() -> SourceInfo {
    SourceInfo {
        name: "compliance".into(),
        db_type: DbType::Mariadb,
        server_id: 1,
    }
}

fn schema(id: &TableId) -> Arc<TableSchema> {
    let col = |name: &str| Column {
        name: name.into(),
        ty: ColumnType::Integer {
            bytes: 8,
            unsigned: false,
        },
        sql_type: "bigint".into(),
        nullable: false,
    };
    Arc::new(TableSchema {
        id: id.clone(),
        columns: vec![col("id"), col("v")],
        primary_key: vec![0],
    })
}

fn spec(id: &TableId) -> TableSpec {
    let col = |name: &str| ColumnDef {
        name: name.into(),
        column_type: "bigint(20)".into(),
        nullable: false,
        default: None,
        charset: None,
        collation: None,
        json: false,
        auto_increment: false,
    };
    TableSpec {
        dest: id.clone(),
        def: Some(TableDef {
            columns: vec![col("id"), col("v")],
            primary_key: vec!["id".into()],
            indexes: Vec::new(),
        }),
    }
}

/// A row change as (op, before image, after image) of (id, v).
type Change = (Op, Option<[i64; 2]>, Option<[i64; 2]>);

/// Batches of changes numbered from `sequence`: inserts of keys 1..=n, then updates of every
/// key (twice, in two transactions), then deletes of the keys divisible by 4, one batch each.
fn batches(table: &Arc<TableSchema>, n: i64) -> (Vec<Vec<DeliveryItem>>, State) {
    let mut sequence = 0u64;
    let mut txn = 0u64;
    let mut batch = |changes: Vec<Change>| {
        txn += 1;
        let len = changes.len();
        changes
            .into_iter()
            .enumerate()
            .map(|(i, (op, before, after))| {
                sequence += 1;
                DeliveryItem {
                    event: Event::Row(RowChange {
                        op,
                        table: table.clone(),
                        before: before.map(|r| r.iter().map(|v| Value::Int(*v)).collect()),
                        after: after.map(|r| r.iter().map(|v| Value::Int(*v)).collect()),
                        ts_ms: 1_700_000_000_000,
                        txn: format!("t{txn}"),
                        seq: i as u64,
                        pos: Position::new("binlog", "mariadb-bin.000001", sequence * 100),
                    }),
                    snapshot: false,
                    sequence: Some(sequence),
                    txn_number: txn,
                    last_in_txn: i + 1 == len,
                    key_change: None,
                }
            })
            .collect::<Vec<_>>()
    };
    let inserts = batch((1..=n).map(|k| (Op::Insert, None, Some([k, 0]))).collect());
    let first = batch(
        (1..=n)
            .map(|k| (Op::Update, Some([k, 0]), Some([k, k])))
            .collect(),
    );
    let second = batch(
        (1..=n)
            .map(|k| (Op::Update, Some([k, k]), Some([k, 2 * k])))
            .collect(),
    );
    let deletes = batch(
        (1..=n)
            .filter(|k| k % 4 == 0)
            .map(|k| (Op::Delete, Some([k, 2 * k]), None))
            .collect(),
    );
    let want = (1..=n).filter(|k| k % 4 != 0).map(|k| (k, 2 * k)).collect();
    (vec![inserts, first, second, deletes], want)
}

fn contract(h: &mut dyn Harness, table: &TableId) -> TestResult {
    let project = unique_name("compliance");
    let dest = destination(&h.section(), &project)?;
    let mut sink = dest.sink(info())?;
    sink.start_afresh()?;
    // 1. The schema step is idempotent.
    sink.prepare(&[spec(table)])?;
    sink.prepare(&[spec(table)])?;
    let schema = schema(table);
    let n = 40;
    let (all, want) = batches(&schema, n);
    // 2. Everything in flight at once, then waited for in send order.
    let mut tickets = Vec::new();
    let mut bytes = vec![sink.acknowledged_bytes()];
    for b in &all {
        tickets.push(sink.send(b)?);
    }
    for (t, b) in tickets.into_iter().zip(&all) {
        sink.wait(t, b)?;
        bytes.push(sink.acknowledged_bytes());
    }
    let messages: usize = all.iter().map(Vec::len).sum();
    let got = h.read_back(table, messages)?;
    assert_eq!(got, want, "the state after batches in flight");
    // 3. Bytes are reported for every acknowledged batch.
    assert!(
        bytes.windows(2).all(|w| w[1] > w[0]),
        "acknowledged bytes grow with each batch: {bytes:?}"
    );
    // 4. A replay of the last two batches (as after a crash) ends in the same state.
    for b in &all[2..] {
        sink.deliver(b)?;
    }
    let replayed = messages + all[2..].iter().map(Vec::len).sum::<usize>();
    assert_eq!(
        h.read_back(table, replayed)?,
        want,
        "the state after a replay"
    );
    drop(sink);
    // 5. Unreachable is transient.
    let t0 = Instant::now();
    let outcome = destination(&h.unreachable_section(), &project)?
        .sink(info())
        .and_then(|mut s| s.prepare(&[spec(table)]));
    match outcome {
        Err(SinkError::Unavailable(e)) => {
            assert!(!e.is_empty());
        }
        other => panic!("an unreachable destination must be unavailable, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(90), "reported in time");
    Ok(())
}

/// The database destination into MariaDB or OceanBase seekdb.
struct Database {
    kind: &'static str,
    addr: String,
    db: String,
    rt: tokio::runtime::Runtime,
}

impl Database {
    fn new(kind: &'static str, addr: String) -> Result<Self, Box<dyn std::error::Error>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let db = unique_name("compliance");
        let url = format!("mysql://root@{addr}");
        rt.block_on(async {
            let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url)?).await?;
            c.query_drop(format!("CREATE DATABASE {db}")).await?;
            c.disconnect().await
        })?;
        Ok(Self { kind, addr, db, rt })
    }
}

impl Harness for Database {
    fn section(&self) -> String {
        format!(
            "destination:\n  type: {}\n  url: mysql://root@{}\n  writers: 3\n",
            self.kind, self.addr
        )
    }

    fn unreachable_section(&self) -> String {
        format!(
            "destination:\n  type: {}\n  url: mysql://root@127.0.0.1:9\n",
            self.kind
        )
    }

    fn read_back(&mut self, table: &TableId, _: usize) -> Result<State, String> {
        let url = format!("mysql://root@{}", self.addr);
        let sql = format!("SELECT id, v FROM `{}`.`{}`", table.db, table.table);
        self.rt
            .block_on(async {
                let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url)?).await?;
                let rows: Vec<(i64, i64)> = c.query(sql).await?;
                c.disconnect().await?;
                Ok::<_, mysql_async::Error>(rows.into_iter().collect())
            })
            .map_err(|e| e.to_string())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let url = format!("mysql://root@{}", self.addr);
        let db = self.db.clone();
        let _ = self.rt.block_on(async move {
            let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url)?).await?;
            c.query_drop(format!("DROP DATABASE {db}")).await?;
            c.disconnect().await
        });
    }
}

/// The Kafka destination, on a broker of its own; a table is rebuilt from its topic by the last
/// message of each key, in partition order, as a consumer group would.
struct Kafka {
    broker: TempKafka,
}

impl Harness for Kafka {
    fn section(&self) -> String {
        format!(
            "destination:\n  type: kafka\n  brokers: {}\n  format: maxwell\n  partitions: 3\n  partition_mode: hash\n",
            self.broker.addr
        )
    }

    fn unreachable_section(&self) -> String {
        "destination:\n  type: kafka\n  brokers: 127.0.0.1:9\n  format: maxwell\n".into()
    }

    fn read_back(&mut self, table: &TableId, expect: usize) -> Result<State, String> {
        let topic = format!("{}.{}", table.db, table.table);
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.broker.addr)
            .set("group.id", unique_name("compliance"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| e.to_string())?;
        consumer.subscribe(&[&topic]).map_err(|e| e.to_string())?;
        let mut state = State::new();
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen < expect && Instant::now() < deadline {
            let Some(m) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let m = m.map_err(|e| e.to_string())?;
            seen += 1;
            let key: i64 = std::str::from_utf8(m.key().unwrap_or_default())
                .map_err(|e| e.to_string())?
                .parse()
                .map_err(|e| format!("key: {e}"))?;
            let op = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "sluice.op"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).to_string())
                .unwrap_or_default();
            if op == "delete" {
                state.remove(&key);
                continue;
            }
            let payload: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
            let v = payload["data"]["v"]
                .as_i64()
                .ok_or_else(|| format!("no data.v in {payload}"))?;
            state.insert(key, v);
        }
        if seen < expect {
            return Err(format!("{seen} of {expect} messages arrived"));
        }
        Ok(state)
    }
}

/// The RocketMQ destination, into the harness broker; a table is rebuilt from its topic by the
/// last message of each key in (queue, offset) order, read by the rocketmq-rust pull consumer
/// in its own process.
struct Rocketmq;

impl Harness for Rocketmq {
    fn section(&self) -> String {
        format!(
            "destination:\n  type: rocketmq\n  namesrv: {}\n  format: maxwell\n  create_topics: true\n  queues: 3\n",
            ROCKETMQ_NAMESRV.get()
        )
    }

    fn unreachable_section(&self) -> String {
        "destination:\n  type: rocketmq\n  namesrv: 127.0.0.1:9\n  format: maxwell\n".into()
    }

    fn read_back(&mut self, table: &TableId, expect: usize) -> Result<State, String> {
        let topic = format!("{}_{}", table.db, table.table);
        let out = std::process::Command::new(repo_root().join("dev/services"))
            .args([
                "rocketmq-probe",
                "consume",
                "--namesrv",
                &ROCKETMQ_NAMESRV.get(),
                "--topic",
                &topic,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        let mut msgs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        if msgs.len() != expect {
            return Err(format!("{} of {expect} messages arrived", msgs.len()));
        }
        msgs.sort_by_key(|m| (m["queue"].as_i64(), m["offset"].as_i64()));
        let mut state = State::new();
        for m in msgs {
            let key: i64 = m["properties"]["KEYS"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(|e| format!("key: {e}"))?;
            if m["properties"]["sluice.op"] == "delete" {
                state.remove(&key);
                continue;
            }
            let payload: serde_json::Value =
                serde_json::from_str(m["body"].as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
            let v = payload["data"]["v"]
                .as_i64()
                .ok_or_else(|| format!("no data.v in {payload}"))?;
            state.insert(key, v);
        }
        Ok(state)
    }
}

/// The DataHub destination (TUPLE topics, after images only: one record per change), into the
/// harness's DataHub-protocol server; read back by the official SDK in its own process.
struct Datahub;

impl Harness for Datahub {
    fn section(&self) -> String {
        format!(
            "destination:\n  type: datahub\n  endpoint: http://{}\n  project: sluice_compliance\n  access_id: sluice\n  access_key: sluice-secret\n  update_image: after\n  shard_count: 3\n",
            DATAHUB.get()
        )
    }

    fn unreachable_section(&self) -> String {
        "destination:\n  type: datahub\n  endpoint: http://127.0.0.1:9\n  project: sluice_compliance\n  access_id: sluice\n  access_key: sluice-secret\n".into()
    }

    fn read_back(&mut self, table: &TableId, expect: usize) -> Result<State, String> {
        let topic = format!("{}_{}", table.db, table.table);
        let out = std::process::Command::new(repo_root().join("dev/services"))
            .arg("datahub-python")
            .arg(repo_root().join("dev/probes/datahub_read.py"))
            .args([
                &format!("http://{}", DATAHUB.get()),
                "sluice_compliance",
                &topic,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        let recs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        if recs.len() != expect {
            return Err(format!("{} of {expect} records arrived", recs.len()));
        }
        // Read shard by shard: each key's records are in one shard, in put order.
        let mut state = State::new();
        for r in recs {
            let f = &r["fields"];
            let num = |k: &str| -> Result<i64, String> {
                f[k].as_str()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e| format!("{k} in {r}: {e}"))
            };
            if f["sluice_op"] == "delete" {
                state.remove(&num("id")?);
            } else {
                state.insert(num("id")?, num("v")?);
            }
        }
        Ok(state)
    }
}

#[test]
fn the_datahub_destination_keeps_the_contract() -> TestResult {
    ensure_up(&[Service::Datahub]);
    let table = TableId::new(unique_name("compliance"), "t");
    contract(&mut Datahub, &table)
}

#[test]
fn the_rocketmq_destination_keeps_the_contract() -> TestResult {
    ensure_up(&[Service::Rocketmq]);
    let table = TableId::new(unique_name("compliance"), "t");
    contract(&mut Rocketmq, &table)
}

#[test]
fn the_database_destination_keeps_the_contract_into_mariadb() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut h = Database::new("mariadb", MARIADB.get())?;
    let table = TableId::new(&h.db, "t");
    contract(&mut h, &table)
}

#[test]
fn the_database_destination_keeps_the_contract_into_oceanbase() -> TestResult {
    ensure_up(&[Service::Oceanbase]);
    let mut h = Database::new("oceanbase", OCEANBASE.get())?;
    let table = TableId::new(&h.db, "t");
    contract(&mut h, &table)
}

#[test]
fn the_kafka_destination_keeps_the_contract() -> TestResult {
    let mut h = Kafka {
        broker: TempKafka::start_memory()?,
    };
    let table = TableId::new(unique_name("compliance"), "t");
    contract(&mut h, &table)
}
