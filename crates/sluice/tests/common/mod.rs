//! Shared helpers of the Kafka end-to-end tests: projects, runs of `sluice`, an independent
//! consumer (Python confluent-kafka), and rebuilding a table from messages.
#![allow(dead_code, unused_imports)]

pub use std::collections::BTreeMap;
pub use std::path::{Path, PathBuf};
pub use std::process::Command;

pub use mysql_async::prelude::Queryable;
pub use serde_json::Value as Json;
pub use sluice_testkit::{
    ensure_up, repo_root, services_cache, unique_name, Service, KAFKA, MARIADB,
};

pub mod compare;
pub mod datahub;
pub mod dbdest;
pub mod kafka;
pub mod pg;
pub mod rocketmq;
pub mod server;
pub use compare::{compare, Shape, Side};
pub use kafka::*;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

/// Runs `sluice ARGS`: its exit code, and its standard output and error together.
pub fn sluice_said<I, S>(args: I) -> Result<(i32, String), Box<dyn std::error::Error>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = sluice().args(args).output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// A connection as root to the MySQL-family server at `addr`.
pub async fn conn_at(addr: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&format!(
        "mysql://root@{addr}"
    ))?)
    .await
}

/// The rows of `sql`, every column as its bytes.
pub async fn rows_at(
    addr: &str,
    sql: &str,
) -> Result<Vec<Vec<Option<Vec<u8>>>>, mysql_async::Error> {
    let mut c = conn_at(addr).await?;
    let rows: Vec<mysql_async::Row> = c.query(sql).await?;
    c.disconnect().await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| match r.as_ref(i) {
                    Some(mysql_async::Value::NULL) | None => None,
                    Some(mysql_async::Value::Bytes(b)) => Some(b.clone()),
                    Some(other) => Some(other.as_sql(true).into_bytes()),
                })
                .collect()
        })
        .collect())
}

pub async fn conn() -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&format!(
        "mysql://root@{}",
        MARIADB.get()
    ))?)
    .await
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::create_dir_all(&d);
    d
}

pub fn project(dir: &Path, name: &str, db: &str, format: &str, start: &str, mode: &str) -> PathBuf {
    let yaml = format!(
        "name: {name}
source:
  type: mariadb
  url: mysql://root@{mariadb}
  server_id: {sid}
destination:
  type: kafka
  brokers: {kafka}
  format: {format}
  topic: \"{{db}}.{{table}}\"
  partitions: 3
  partition_mode: {mode}
objects:
  include: [\"{db}.*\"]
stages:
  start: \"{start}\"
options:
  heartbeat_secs: 1
",
        mariadb = MARIADB.get(),
        kafka = KAFKA.get(),
        sid = 3_000_000 + std::process::id() % 1_000_000,
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

/// Points a project file at another Kafka broker.
pub fn use_broker(file: &Path, addr: &str) -> std::io::Result<()> {
    let yaml = std::fs::read_to_string(file)?.replace(&KAFKA.get(), addr);
    std::fs::write(file, yaml)
}

/// A `sluice run` in the background, killed when dropped: a test that fails half-way leaves no
/// run behind to load the machine (one did, and slowed every benchmark after it).
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `sluice run -f FILE` in the background; its log is appended to `runs.log` beside the project
/// file (read it when a test fails).
pub fn spawn_run(file: &Path) -> std::io::Result<Running> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file.with_file_name("runs.log"))?;
    let mut cmd = sluice();
    if std::env::var_os("SLUICE_LOG").is_none() {
        cmd.env("SLUICE_LOG", "info");
    }
    cmd.args(["run", "-f"])
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map(Running)
}

/// SIGTERM to a running `sluice run`: the graceful stop (flush, checkpoint, exit 0).
pub fn sigterm(child: &std::process::Child) -> std::io::Result<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .map(|_| ())
}

/// GET `path` from `addr` over plain HTTP/1.0: the whole answer, status line included.
pub fn http_get(addr: &str, path: &str) -> Result<String, Box<dyn std::error::Error>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())?;
    let mut page = String::new();
    s.read_to_string(&mut page)?;
    Ok(page)
}

/// The status code of an HTTP answer (`HTTP/1.1 503 Service Unavailable` -> 503).
pub fn http_status(answer: &str) -> Option<u16> {
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// `sluice status -f FILE` (empty when it cannot run).
pub fn status_of(file: &Path) -> String {
    sluice()
        .args(["status", "-f"])
        .arg(file)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

/// Waits until `sluice status` says full sync finished, for at most `secs`; an error if the
/// run `child` ended first or time ran out.
pub async fn full_sync_finished(
    file: &Path,
    child: &mut std::process::Child,
    secs: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !status_of(file).contains("full sync:  finished") {
        if std::time::Instant::now() > deadline || child.try_wait()?.is_some() {
            return Err(format!("full sync did not finish: {}", status_of(file)).into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

pub fn run_until_caught_up(file: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let out = sluice()
        .args(["run", "-f"])
        .arg(file)
        .args(["--until", "caught-up"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        return Err(format!("sluice run failed: {err}").into());
    }
    Ok(err)
}

/// The source table as strings, keyed by id (the OMS value convention).
pub async fn source_rows(
    c: &mut mysql_async::Conn,
    db: &str,
) -> Result<BTreeMap<String, Json>, mysql_async::Error> {
    table_rows(c, db, "t").await
}

/// A table of the tests' shape `(id, v, amt)` as strings, keyed by id.
pub async fn table_rows(
    c: &mut mysql_async::Conn,
    db: &str,
    table: &str,
) -> Result<BTreeMap<String, Json>, mysql_async::Error> {
    let rows: Vec<(i64, Option<String>, String)> = c
        .query(format!(
            "SELECT id, v, CAST(amt AS CHAR) FROM {db}.{table} ORDER BY id"
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, v, amt)| {
            (
                id.to_string(),
                serde_json::json!({"id": id.to_string(), "v": v, "amt": amt}),
            )
        })
        .collect())
}

/// Creates database `db` with the tests' table `t (id INT PRIMARY KEY, v VARCHAR(20), amt
/// DECIMAL(8,2))`; returns the binlog position just before it (`file:offset`), where a project
/// can start.
pub async fn new_table(c: &mut mysql_async::Conn, db: &str) -> Result<String, mysql_async::Error> {
    let (file, offset) = sluice_source_mysql_position(c).await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20), amt DECIMAL(8,2))"
    ))
    .await?;
    Ok(format!("{file}:{offset}"))
}

pub async fn sluice_source_mysql_position(
    c: &mut mysql_async::Conn,
) -> Result<(String, u64), mysql_async::Error> {
    let status: Vec<mysql_async::Row> = c.query("SHOW MASTER STATUS").await?;
    let first = status
        .first()
        .ok_or(mysql_async::Error::Other("binary logging is off".into()))?;
    let file: String = first
        .get(0)
        .ok_or(mysql_async::Error::Other("no file".into()))?;
    let pos: u64 = first
        .get(1)
        .ok_or(mysql_async::Error::Other("no position".into()))?;
    Ok((file, pos))
}

/// A tiny deterministic generator (no dependency needed for test workloads).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A writer for tests: on a connection to `addr`, runs `statement(rng, n)` for n = 0, 1, ...
/// with a short pause between, until `stop`; returns how many statements ran.
pub fn writer_loop(
    addr: String,
    seed: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mut statement: impl FnMut(&mut Lcg, u64) -> String + Send + 'static,
) -> tokio::task::JoinHandle<Result<u64, mysql_async::Error>> {
    tokio::spawn(async move {
        let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&format!(
            "mysql://root@{addr}"
        ))?)
        .await?;
        let mut rng = Lcg(seed);
        let mut n = 0u64;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            c.query_drop(statement(&mut rng, n)).await?;
            n += 1;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Ok(n)
    })
}

/// Inserts ids `from..to` (updating those that exist), one transaction each.
pub async fn write_range(
    c: &mut mysql_async::Conn,
    db: &str,
    from: u32,
    to: u32,
) -> Result<(), mysql_async::Error> {
    for i in from..to {
        c.query_drop(format!(
            "INSERT INTO {db}.t VALUES ({i}, 'v{i}', {i}.5) ON DUPLICATE KEY UPDATE v = 'again'"
        ))
        .await?;
    }
    Ok(())
}

/// A writer of inserts, updates and deletes over ids 1..=max of `db.t` (single statements and
/// two-statement transactions), until `stop`; returns how many statements it ran.
pub fn mixed_writer(
    db: String,
    max: u64,
    seed: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Result<u64, mysql_async::Error>> {
    writer_loop(MARIADB.get(), seed, stop, move |rng, n| {
        let id = rng.next(max) + 1;
        match rng.next(5) {
            0 | 1 => format!("REPLACE INTO {db}.t VALUES ({id}, 'w{n}', {n}.25)"),
            2 => format!("UPDATE {db}.t SET v = 'u{n}', amt = amt + 1 WHERE id = {id}"),
            3 => format!("DELETE FROM {db}.t WHERE id = {id}"),
            _ => format!(
                "BEGIN; UPDATE {db}.t SET v = 'b{n}' WHERE id = {id}; \
                 INSERT INTO {db}.t VALUES ({}, 'm{n}', 1.00) ON DUPLICATE KEY UPDATE v = 'm{n}'; COMMIT",
                rng.next(max) + 1
            ),
        }
    })
}

/// `cycles` runs of the project in `file`, each killed with SIGKILL (no flush, no checkpoint)
/// after 0.3 to 1.5 s.
pub async fn kill_9_cycles(file: &Path, cycles: usize, seed: u64) -> TestResult {
    let mut rng = Lcg(seed);
    for _ in 0..cycles {
        let mut child = spawn_run(file)?;
        tokio::time::sleep(std::time::Duration::from_millis(300 + rng.next(1200))).await;
        child.kill()?;
        child.wait()?;
    }
    Ok(())
}

/// Tables `a`, `b` and `c` of a new database `db`, each with 150 upserts of 10 keys made by
/// three concurrent writers; returns the binlog position before them (`file:offset`).
pub async fn three_tables_of_updates(
    c: &mut mysql_async::Conn,
    db: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let (file, offset) = sluice_source_mysql_position(c).await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    for t in ["a", "b", "c"] {
        c.query_drop(format!(
            "CREATE TABLE {db}.{t} (id INT PRIMARY KEY, v VARCHAR(20), amt DECIMAL(8,2))"
        ))
        .await?;
    }
    let mut writers = Vec::new();
    for t in ["a", "b", "c"] {
        let db = db.to_string();
        writers.push(tokio::spawn(async move {
            let mut c = conn().await?;
            for i in 0..150u32 {
                c.query_drop(format!(
                    "INSERT INTO {db}.{t} VALUES ({}, 'v{i}', {i}) ON DUPLICATE KEY UPDATE v = 'v{i}', amt = {i}",
                    i % 10
                ))
                .await?;
            }
            Ok::<(), mysql_async::Error>(())
        }));
    }
    for w in writers {
        w.await??;
    }
    Ok(format!("{file}:{offset}"))
}

/// What `sluice status` last said of retrying over the next `secs` seconds (empty: never).
pub async fn retrying_said(file: &Path, secs: u64) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut said = String::new();
    while std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let s = status_of(file);
        if s.contains("retrying") {
            said = s;
        }
    }
    said
}

/// The end of a test of a running project under a writer: `settle_secs` more of writing, then
/// the writer stops; the run must still be going (`alive` says why it must); it is stopped
/// gracefully and run again until caught up. Returns how many changes the writer made.
pub async fn stop_writer_and_catch_up(
    child: &mut Running,
    stop: &std::sync::atomic::AtomicBool,
    writer: tokio::task::JoinHandle<Result<u64, mysql_async::Error>>,
    file: &Path,
    settle_secs: u64,
    alive: &str,
) -> Result<u64, Box<dyn std::error::Error>> {
    tokio::time::sleep(std::time::Duration::from_secs(settle_secs)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await??;
    assert!(child.try_wait()?.is_none(), "{alive}");
    sigterm(child)?;
    let _ = child.wait()?;
    run_until_caught_up(file)?;
    Ok(written)
}

/// The three MariaDB instances of the logical-table tests.
pub fn shard_addrs() -> [String; 3] {
    [
        MARIADB.get(),
        sluice_testkit::MARIADB_SHARD1.get(),
        sluice_testkit::MARIADB_SHARD2.get(),
    ]
}

/// The `instances:` section of a sharded source over the three instances ([`shard_addrs`]),
/// named s0..s2, with these replica ids.
pub fn instances_yaml(server_ids: [u32; 3]) -> String {
    let mut out = String::from("  instances:\n");
    for (i, (addr, sid)) in shard_addrs().iter().zip(server_ids).enumerate() {
        out.push_str(&format!(
            "    - {{name: s{i}, url: \"mysql://root@{addr}\", server_id: {sid}}}\n"
        ));
    }
    out
}

/// A logical table `u.orders` over the three instances: `u_I.orders` on instance I holds ids
/// I*1000+1 ..= I*1000+200 (`v` = `sN`, `amt` = N / 4); and the project file of a sharded
/// source reading it (full and incremental sync, renamed to `u_dest.orders`) into the
/// destination whose section lines (after `destination:`) are `destination`.
pub async fn logical_orders(
    u: &str,
    destination: &str,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let addrs = shard_addrs();
    for (i, addr) in addrs.iter().enumerate() {
        let mut c = conn_at(addr).await?;
        c.query_drop(format!("CREATE DATABASE {u}_{i}")).await?;
        c.query_drop(format!(
            "CREATE TABLE {u}_{i}.orders (id INT PRIMARY KEY, v VARCHAR(20), amt DECIMAL(8,2))"
        ))
        .await?;
        c.query_drop(format!(
            "INSERT INTO {u}_{i}.orders SELECT {i} * 1000 + seq, CONCAT('s', seq), seq / 4 FROM {u}_{i}.seq_1_to_200"
        ))
        .await?;
    }
    let file = temp_dir(u).join("project.yaml");
    let sid = 3_500_000 + std::process::id() % 100_000;
    let destination: String = destination.lines().map(|l| format!("  {l}\n")).collect();
    std::fs::write(
        &file,
        format!(
            "name: {u}
source:
  type: sharded
{instances}  logical_tables:
    - name: {u}.orders
      shards: {{s0: \"{u}_0.orders\", s1: \"{u}_1.orders\", s2: \"{u}_2.orders\"}}
destination:
{destination}objects:
  include: [\"*.*\"]
  rename:
    {u}.orders: {u}_dest.orders
stages:
  full: true
options:
  heartbeat_secs: 1
",
            instances = instances_yaml([sid, sid + 1, sid + 2]),
        ),
    )?;
    Ok(file)
}

/// Drops the databases [`logical_orders`] made on the instances.
pub async fn drop_logical_orders(u: &str) -> TestResult {
    for (i, addr) in shard_addrs().iter().enumerate() {
        conn_at(addr)
            .await?
            .query_drop(format!("DROP DATABASE {u}_{i}"))
            .await?;
    }
    Ok(())
}
