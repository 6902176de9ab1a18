//! PostgreSQL as the source, in operation: 20 kill -9 under a writer with the slot never
//! confirmed past the checkpoint, a restarted server, prechecks with their fixes, and a
//! project of the service from start to release (docs/POSTGRES.md).

mod common;

use common::dbdest::dest_conn;
use common::pg::*;
use common::*;
use sluice_testkit::{MARIADB_SHARD1, POSTGRES};

/// An LSN as PostgreSQL prints it (`16/B374D848`).
fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// The project's stored checkpoint (`sluice status`), as an LSN.
fn checkpoint_lsn(file: &Path) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    let (_, out) = sluice_said(["status", "-f", file.to_str().ok_or("path")?])?;
    Ok(out
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(parse_lsn))
}

/// The slot's confirmed flush position.
async fn confirmed_lsn(
    c: &tokio_postgres::Client,
    slot: &str,
) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    let rows = pg_rows(
        c,
        &format!("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    )
    .await?;
    Ok(rows
        .first()
        .and_then(|r| r.get("confirmed_flush_lsn").cloned().flatten())
        .and_then(|t| parse_lsn(&t)))
}

/// Rows of `db`.t `(id, v)` at the destination, by id.
async fn dest_rows(
    d: &mut mysql_async::Conn,
    db: &str,
) -> Result<BTreeMap<i64, String>, Box<dyn std::error::Error>> {
    let rows: Vec<(i64, String)> = d
        .query(format!("SELECT id, v FROM `{db}`.t ORDER BY id"))
        .await
        .unwrap_or_default();
    Ok(rows.into_iter().collect())
}

async fn source_rows_pg(
    c: &tokio_postgres::Client,
) -> Result<BTreeMap<i64, String>, Box<dyn std::error::Error>> {
    let mut out = BTreeMap::new();
    for r in c
        .query("SELECT id::int8, v FROM t ORDER BY id", &[])
        .await?
    {
        out.insert(r.try_get(0)?, r.try_get(1)?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_incremental_sync_the_project_resumes_alone() -> TestResult {
    ensure_up(&[Service::MariadbShards]);
    let server = sluice_testkit::TempPostgres::start()?;
    let db = unique_name("pgr");
    let mut c = pg_at(&server.addr, "postgres").await?;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        .await?;
    let dir = temp_dir(&db);
    let dest = MARIADB_SHARD1.get();
    let file = pg_project_at(
        &server.addr,
        &dir,
        &db,
        "postgres",
        &format!("  type: mariadb\n  url: mysql://root@{dest}"),
        &format!("  include: [\"public.t\"]\n  rename:\n    public.t: {db}.t"),
    );
    let mut child = sluice().args(["run", "-f"]).arg(&file).spawn()?;
    let mut d = dest_conn(&dest).await?;
    let wait_equal = |want: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        move |n: usize| n == want || std::time::Instant::now() > deadline
    };
    for i in 1..=100 {
        c.execute(
            "INSERT INTO t VALUES ($1, $2)",
            &[&i, &format!("before {i}")],
        )
        .await?;
    }
    let done = wait_equal(100);
    while !done(dest_rows(&mut d, &db).await?.len()) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        dest_rows(&mut d, &db).await?.len(),
        100,
        "before the restart"
    );
    server.restart()?;
    c = pg_at(&server.addr, "postgres").await?;
    for i in 101..=200 {
        c.execute(
            "INSERT INTO t VALUES ($1, $2)",
            &[&i, &format!("after {i}")],
        )
        .await?;
    }
    c.execute("UPDATE t SET v = 'updated after' WHERE id <= 10", &[])
        .await?;
    let want = source_rows_pg(&c).await?;
    let done = wait_equal(200);
    loop {
        let got = dest_rows(&mut d, &db).await?;
        if got == want || done(0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        dest_rows(&mut d, &db).await?,
        want,
        "after the restart, without help"
    );
    d.query_drop(format!("DROP DATABASE `{db}`")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_twenty_times_under_a_writer_loses_nothing_and_the_slot_waits_for_the_checkpoint(
) -> TestResult {
    // A broker of its own, in memory: the shared one is busy with every other test.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("pgkill");
    let c = new_pg_db(&db).await?;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, n bigint NOT NULL); \
         INSERT INTO t SELECT g, 0 FROM generate_series(1, 50) g",
    )
    .await?;
    let dir = temp_dir(&db);
    let topic = format!("{db}.t");
    let file = pg_project(
        &dir,
        &db,
        &db,
        &format!(
            "  type: kafka\n  brokers: {}\n  format: oms\n  single_topic: {topic}\n  partitions: 3\n  partition_mode: hash",
            kafka.addr
        ),
        "  include: [\"public.t\"]",
    );
    let slot = format!("sluice_{}", db.to_lowercase());
    // The writer: counters that only grow, per key (inserts of new keys too).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = {
        let (stop, db) = (stop.clone(), db.clone());
        tokio::spawn(async move {
            let c = pg(&db).await.map_err(|e| e.to_string())?;
            let mut k: u64 = 7;
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                k = k
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let id = (k >> 33) % 80 + 1;
                c.execute(
                    "INSERT INTO t VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = t.n + 1",
                    &[&(id as i32)],
                )
                .await
                .map_err(|e| e.to_string())?;
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            Ok::<u64, String>(n)
        })
    };
    for cycle in 0..20u64 {
        let mut child = sluice().args(["run", "-f"]).arg(&file).spawn()?;
        let wait = 500 + (cycle * 397) % 1500;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        child.kill()?;
        let _ = child.wait();
        // What the slot lets the server forget never passes what the destination took.
        let confirmed = confirmed_lsn(&c, &slot).await?;
        let checkpoint = checkpoint_lsn(&file)?;
        if let (Some(conf), Some(cp)) = (confirmed, checkpoint) {
            assert!(
                conf <= cp,
                "cycle {cycle}: slot confirmed {conf:X} past the checkpoint {cp:X}"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let writes = w.await?.map_err(|e| format!("writer: {e}"))?;
    assert!(writes > 100, "the writer ran ({writes} statements)");
    run_until_caught_up(&file)?;
    // Confirmed after a clean run: the slot does not keep WAL forever.
    let conf = confirmed_lsn(&c, &slot).await?.ok_or("no slot")?;
    let cp = checkpoint_lsn(&file)?.ok_or("no checkpoint")?;
    assert!(
        conf <= cp,
        "slot confirmed {conf:X} past the checkpoint {cp:X}"
    );
    // A stopped project says what its slot keeps on the server.
    let (_, status) = sluice_said(["status", "-f", file.to_str().ok_or("path")?])?;
    assert!(
        status.contains(&format!("on source:  replication slot {slot} retains ")),
        "{status}"
    );
    let msgs = consume_from(&kafka.addr, &topic, 0)?;
    let mut state: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    for (_, ms) in by_partition(&msgs) {
        let mut last = 0u64;
        for m in ms {
            let v = &m["value"];
            let kind = v["recordType"].as_str().unwrap_or("");
            let key = v["allMetaData"]["record_primary_value"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let n: i64 = v["postStruct"]["n"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(-1);
            if kind == "ROW" {
                state.insert(key, n);
                continue;
            }
            let seq = v["allMetaData"]["storeDataSequence"].as_u64().unwrap_or(0);
            if seq <= last || !matches!(kind, "INSERT" | "UPDATE") {
                continue;
            }
            last = seq;
            if let Some(prev) = seen.get(&key) {
                assert!(n > *prev, "key {key}: {n} after {prev} (per-key order)");
            }
            seen.insert(key.clone(), n);
            state.insert(key, n);
        }
    }
    let mut want = BTreeMap::new();
    for r in c.query("SELECT id::text, n FROM t", &[]).await? {
        want.insert(r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?);
    }
    assert_eq!(state, want, "the consumer's rebuild equals the source");
    drop(c);
    drop_pg_db(&db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_project_of_the_service_runs_and_its_release_drops_its_slot_and_publication(
) -> TestResult {
    use common::server::{host_port, state_is, Server};
    use serde_json::json;
    ensure_up(&[Service::Kafka]);
    let db = unique_name("pgsrv");
    let c = new_pg_db(&db).await?;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two')",
    )
    .await?;
    let dir = temp_dir(&db);
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    let (h, p) = host_port(&POSTGRES.get());
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "pg", "kind": "postgres", "host": h, "port": p, "user": "postgres", "database": db})),
    )?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "kafka", "kind": "kafka", "brokers": KAFKA.get()})),
    )?;
    let test = api.ok("POST", "/api/v1/datasources/pg/test", None)?;
    assert_eq!(test["ok"], json!(true), "{test}");
    let tree = api.ok("GET", "/api/v1/datasources/pg/tables", None)?;
    assert_eq!(tree, json!([{"db": "public", "tables": ["t"]}]));
    let topic = format!("{db}.t");
    api.ok(
        "POST",
        "/api/v1/projects",
        Some(json!({
            "name": db,
            "source": {"datasource": "pg", "create_publication": true},
            "destination": {"datasource": "kafka", "format": "oms", "single_topic": topic, "partitions": 1},
            "objects": {"include": ["public.t"]},
            "stages": {"full": true},
            "options": {"heartbeat_secs": 1},
        })),
    )?;
    api.act(&db, "start")?;
    c.execute("INSERT INTO t VALUES (3, 'three')", &[]).await?;
    let msgs = {
        // The topic appears when the project first delivers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let m = consume(&topic, 3);
            match m {
                Ok(m) if m.len() >= 3 => break m,
                Ok(m) if std::time::Instant::now() > deadline => break m,
                Err(e) if std::time::Instant::now() > deadline => return Err(e),
                _ => std::thread::sleep(std::time::Duration::from_millis(300)),
            }
        }
    };
    assert_eq!(msgs.len(), 3, "two copied rows and one change: {msgs:?}");
    api.act(&db, "stop")?;
    api.wait_for(&db, 30, "stopped", state_is("Stopped"))?;
    let slot = format!("sluice_{}", db.to_lowercase());
    let count = |sql: String| {
        let c = &c;
        async move {
            let r = c.query_one(&sql, &[]).await?;
            r.try_get::<_, i64>(0)
        }
    };
    let slots = format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'");
    let pubs = format!("SELECT count(*) FROM pg_publication WHERE pubname = '{slot}'");
    assert_eq!(
        count(slots.clone()).await?,
        1,
        "a stopped project keeps its slot"
    );
    // And says what it keeps there (the console shows it on the project's page).
    let seen = api.project(&db)?;
    let held = seen["on_source"].as_str().unwrap_or_default();
    assert!(
        held.starts_with(&format!("replication slot {slot} retains "))
            && held.ends_with("MB of WAL on the server"),
        "{seen}"
    );
    let released = api.act(&db, "release")?;
    assert_eq!(released["state"], json!("Released"));
    assert_eq!(count(slots).await?, 0, "release drops the slot");
    assert_eq!(count(pubs).await?, 0, "and the publication it made");
    drop(c);
    drop_pg_db(&db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prechecks_name_each_problem_of_a_postgres_source_with_its_fix() -> TestResult {
    let server = sluice_testkit::TempPostgres::start()?;
    let c = pg_at(&server.addr, "postgres").await?;
    // wal_level is logical on this server; the problems are a missing publication, a table
    // without a key or REPLICA IDENTITY, a user without REPLICATION, and a busy slot.
    c.batch_execute(
        "CREATE TABLE keyless (a int, b text); \
         CREATE TABLE priced (id int PRIMARY KEY, price money); \
         CREATE ROLE plain LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO plain",
    )
    .await?;
    c.batch_execute("SELECT pg_create_logical_replication_slot('taken', 'pgoutput')")
        .await?;
    let dir = temp_dir(&unique_name("pgpre"));
    let file = dir.join("project.yaml");
    let write = |user: &str, extra: &str| {
        std::fs::write(
            &file,
            format!(
                "name: pgpre
source:
  type: postgres
  url: postgres://{user}@{addr}/postgres
{extra}
destination:
  type: kafka
  brokers: {kafka}
  format: oms
objects:
  include: [\"public.*\"]
",
                addr = server.addr,
                kafka = KAFKA.get()
            ),
        )
    };
    write("plain", "  publication: nowhere")?;
    let (code, out) = sluice_said(["precheck", "-f", file.to_str().ok_or("path")?])?;
    assert_ne!(code, 0, "{out}");
    for expected in [
        "publication nowhere does not exist",
        "CREATE PUBLICATION \"nowhere\"",
        "has no primary key and no REPLICA IDENTITY",
        "ALTER TABLE \"public\".\"keyless\" REPLICA IDENTITY FULL",
        "user plain has no REPLICATION privilege",
        "ALTER ROLE \"plain\" REPLICATION",
        "`public`.`priced` column price: type money is not supported",
    ] {
        assert!(out.contains(expected), "{expected:?} not in: {out}");
    }
    // A slot another client holds.
    let holder = pgwire_holder(&server.addr).await?;
    write("postgres", "  slot: taken\n  create_publication: true")?;
    let (code, out) = sluice_said(["precheck", "-f", file.to_str().ok_or("path")?])?;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("replication slot taken is in use by another client"),
        "{out}"
    );
    drop(holder);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prechecks_name_a_server_not_set_up_for_logical_replication() -> TestResult {
    // wal_level below logical, no WAL sender free, every slot taken (by a physical one).
    let server = sluice_testkit::TempPostgres::start_with(&[
        "wal_level=replica",
        "max_wal_senders=0",
        "max_replication_slots=1",
    ])?;
    let c = pg_at(&server.addr, "postgres").await?;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await?;
    c.batch_execute("SELECT pg_create_physical_replication_slot('other')")
        .await?;
    let dir = temp_dir(&unique_name("pgwal"));
    let file = dir.join("project.yaml");
    std::fs::write(
        &file,
        format!(
            "name: pgwal\nsource:\n  type: postgres\n  url: postgres://postgres@{}/postgres\n  create_publication: true\n\
             destination:\n  type: kafka\n  brokers: {}\n  format: oms\nobjects:\n  include: [\"public.*\"]\n",
            server.addr,
            KAFKA.get()
        ),
    )?;
    let (code, out) = sluice_said(["precheck", "-f", file.to_str().ok_or("path")?])?;
    assert_ne!(code, 0, "{out}");
    for expected in [
        "wal_level is replica: logical replication needs logical",
        "set wal_level = logical",
        "all 0 WAL senders are busy",
        "raise max_wal_senders",
        "all 1 replication slots are taken",
        "raise max_replication_slots",
    ] {
        assert!(out.contains(expected), "{expected:?} not in: {out}");
    }
    // A start is refused with the same reason, before anything is made on the server.
    let (code, out) = run_once(&file)?;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "wal_level is replica: logical replication needs logical; set wal_level = logical"
        ),
        "{out}"
    );
    let made = c
        .query_one("SELECT count(*) FROM pg_publication", &[])
        .await?;
    assert_eq!(made.try_get::<_, i64>(0)?, 0, "no publication was made");
    Ok(())
}

/// Holds slot `taken` of the server at `addr` with `pg_recvlogical` until dropped.
async fn pgwire_holder(addr: &str) -> Result<KillOnDrop, Box<dyn std::error::Error>> {
    let (host, port) = addr.split_once(':').ok_or("address")?;
    let bin = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/pg_recvlogical")))
        .find(|p| p.exists())
        .ok_or("pg_recvlogical not found")?;
    let child = std::process::Command::new(bin)
        .args([
            "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-S", "taken",
        ])
        .args([
            "-o",
            "proto_version=1",
            "-o",
            "publication_names=none",
            "--start",
            "-f",
            "/dev/null",
        ])
        .spawn()?;
    // Wait until the server shows the slot active.
    let c = pg_at(addr, "postgres").await?;
    for _ in 0..100 {
        let r = c
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'taken' AND active",
                &[],
            )
            .await?;
        if r.try_get::<_, i64>(0)? == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(KillOnDrop(child))
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
