//! Logical tables: 3 MariaDB instances x 2 databases x 4 tables of one logical table, merged
//! into one OceanBase seekdb table, with a writer on every instance during full and incremental
//! sync, and `kill -9` cycles; the destination must equal the union of the shards.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use sluice_testkit::{MARIADB_SHARD2, OCEANBASE};

/// Instance `i` holds databases `{u}_{2i}` and `{u}_{2i+1}`, each with `orders_0..3`; ids are
/// distinct across shards: i * 1_000_000 + db * 100_000 + table * 10_000 + n.
async fn seed(u: &str, rows: u32) -> TestResult {
    seed_as(
        u,
        rows,
        "id BIGINT PRIMARY KEY, v VARCHAR(30), amt DECIMAL(10,2)",
    )
    .await
}

/// [`seed`] with these column definitions.
async fn seed_as(u: &str, rows: u32, columns: &str) -> TestResult {
    for (i, addr) in shard_addrs().iter().enumerate() {
        let mut c = conn_at(addr).await?;
        for d in [2 * i, 2 * i + 1] {
            c.query_drop(format!("CREATE DATABASE {u}_{d}")).await?;
            for t in 0..4 {
                c.query_drop(format!("CREATE TABLE {u}_{d}.orders_{t} ({columns})"))
                    .await?;
                let base = i * 1_000_000 + (d % 2) * 100_000 + t * 10_000;
                c.query_drop(format!(
                    "INSERT INTO {u}_{d}.orders_{t} SELECT {base} + seq, CONCAT('s', seq), seq / 4 FROM {u}_{d}.seq_1_to_{rows}"
                ))
                .await?;
            }
        }
    }
    Ok(())
}

fn sharded_project(dir: &Path, u: &str) -> PathBuf {
    let dest = format!(
        "destination:\n  type: oceanbase\n  url: mysql://root@{}\n  writers: 3\n",
        OCEANBASE.get()
    );
    sharded_project_into(dir, u, &dest)
}

/// [`sharded_project`] into the destination section `dest`.
fn sharded_project_into(dir: &Path, u: &str, dest: &str) -> PathBuf {
    let yaml = format!(
        "name: {u}
source:
  type: sharded
{instances}  logical_tables:
    - name: {u}.orders
      shards:
        s0: \"{u}_{{0..1}}.orders_{{0..3}}\"
        s1: \"{u}_${{2..3}}.orders_${{0..3}}\"
        s2: [\"{u}_4.orders_{{0..3}}\", \"{u}_5.orders_{{0..3}}\"]
{dest}objects:
  include: [\"*.*\"]
  rename:
    {u}.orders: {u}_dest.orders
stages:
  full: true
options:
  heartbeat_secs: 1
  full_chunk_rows: 300
  full_readers: 2
",
        instances = instances_yaml(
            [3_200_000, 3_300_000, 3_400_000].map(|b| b + std::process::id() % 100_000)
        ),
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

/// A writer per instance, on its own shards' key ranges, until stopped.
fn writers(
    u: &str,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Result<u64, mysql_async::Error>>> {
    shard_addrs()
        .into_iter()
        .enumerate()
        .map(|(i, addr)| {
            let u = u.to_string();
            let seed = u64::from(std::process::id()) + i as u64 * 101;
            writer_loop(addr, seed, stop.clone(), move |rng, n| {
                let d = 2 * i + rng.next(2) as usize;
                let t = rng.next(4) as usize;
                let id = i * 1_000_000 + (d % 2) * 100_000 + t * 10_000 + rng.next(400) as usize + 1;
                let tbl = format!("{u}_{d}.orders_{t}");
                match rng.next(4) {
                    0 => format!("REPLACE INTO {tbl} VALUES ({id}, 'w{n}', {n}.25)"),
                    1 => format!("UPDATE {tbl} SET v = 'u{n}', amt = amt + 1 WHERE id = {id}"),
                    2 => format!("DELETE FROM {tbl} WHERE id = {id}"),
                    _ => format!(
                        "BEGIN; UPDATE {tbl} SET v = 'b{n}' WHERE id = {id}; \
                         INSERT INTO {tbl} VALUES ({}, 'm{n}', 1.00) ON DUPLICATE KEY UPDATE v = 'm{n}'; COMMIT",
                        id + 1
                    ),
                }
            })
        })
        .collect()
}

type Rows = Vec<(i64, Option<String>, Option<String>)>;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

/// The destination table against the union of the shards: a checksum per range of 1,000 ids on
/// every side, then row by row in the ranges that differ. Returns the rows compared.
async fn equal_to_union(u: &str, what: &str) -> Result<i64, Box<dyn std::error::Error>> {
    equal_in(u, what, &["id", "v", "CAST(amt AS CHAR)"]).await
}

/// [`equal_to_union`] over these columns.
async fn equal_in(
    u: &str,
    what: &str,
    columns: &[&str],
) -> Result<i64, Box<dyn std::error::Error>> {
    let sources: Vec<Side> = shard_addrs()
        .into_iter()
        .enumerate()
        .map(|(i, addr)| {
            let tables = [2 * i, 2 * i + 1]
                .iter()
                .flat_map(|d| (0..4).map(move |t| format!("{u}_{d}.orders_{t}")))
                .collect();
            Side::new(addr, tables)
        })
        .collect();
    let dest = Side::new(OCEANBASE.get(), vec![format!("{u}_dest.orders")]);
    let shape = Shape {
        key: "id",
        columns,
        width: 1_000,
    };
    let c = compare(&dest, &sources, &shape).await?;
    c.equal(what)?;
    Ok(c.rows)
}

async fn destination(u: &str) -> Result<Rows, mysql_async::Error> {
    let mut d = conn_at(&OCEANBASE.get()).await?;
    d.query(format!(
        "SELECT id, v, CAST(amt AS CHAR) FROM {u}_dest.orders ORDER BY id"
    ))
    .await
}

async fn cleanup(u: &str) -> TestResult {
    for (i, addr) in shard_addrs().iter().enumerate() {
        let mut c = conn_at(addr).await?;
        for d in [2 * i, 2 * i + 1] {
            c.query_drop(format!("DROP DATABASE IF EXISTS {u}_{d}"))
                .await?;
        }
    }
    conn_at(&OCEANBASE.get())
        .await?
        .query_drop(format!("DROP DATABASE IF EXISTS {u}_dest"))
        .await?;
    Ok(())
}

/// Runs the project with a writer on every instance until full sync finished everywhere and a
/// second more, stops the writers and the run (gracefully), and runs it again until caught up.
async fn full_and_incremental_under_writers(u: &str, dir: &Path, file: &Path) -> TestResult {
    let stop = Arc::new(AtomicBool::new(false));
    let ws = writers(u, &stop);
    let mut child = spawn_run(file)?;
    full_sync_finished_everywhere(dir, &mut child).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for w in ws {
        assert!(w.await?? > 50, "a writer made too few changes");
    }
    sigterm(&child)?;
    assert!(child.wait()?.success());
    run_until_caught_up(file)?;
    Ok(())
}

/// Waits (up to 2 minutes) until full sync finished on all three instances.
async fn full_sync_finished_everywhere(dir: &Path, child: &mut Running) -> TestResult {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while status(dir).matches("full sync:  finished").count() < 3 {
        if std::time::Instant::now() > deadline || child.try_wait()?.is_some() {
            return Err(format!(
                "full sync did not finish on every instance: {}",
                status(dir)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn status(dir: &Path) -> String {
    sluice()
        .args(["status", "--data-dir"])
        .arg(dir.join("sluice-data"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logical_table_over_three_instances_merges_into_one_oceanbase_table() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("sh");
    let dir = temp_dir(&u);
    seed(&u, 300).await?;
    let file = sharded_project(&dir, &u);
    full_and_incremental_under_writers(&u, &dir, &file).await?;
    let rows = equal_to_union(&u, "the destination table vs the union of the shards").await?;
    assert!(rows > 7_000, "{rows} rows");
    // The comparison can fail: a row changed behind Sluice's back is found, alone.
    let mut d = conn_at(&OCEANBASE.get()).await?;
    let some: i64 = d
        .query_first(format!("SELECT MAX(id) FROM {u}_dest.orders"))
        .await?
        .ok_or("empty destination")?;
    d.query_drop(format!(
        "UPDATE {u}_dest.orders SET v = 'tampered' WHERE id = {some}"
    ))
    .await?;
    let err = equal_to_union(&u, "tampered")
        .await
        .expect_err("a changed row is found")
        .to_string();
    assert!(
        err.contains("1 of ") && err.contains(&hex("tampered")),
        "{err}"
    );
    // One checkpoint for the project: the vector of the three instances' positions.
    let st = status(&dir);
    assert!(st.contains("checkpoint: vector of 3 instances"), "{st}");
    for s in ["s0", "s1", "s2"] {
        assert!(st.contains(&format!("  {s}: mariadb-bin.")), "{st}");
    }
    // Every row records its shard.
    let mut d = conn_at(&OCEANBASE.get()).await?;
    let shards: Vec<String> = d
        .query(format!(
            "SELECT DISTINCT _sluice_shard FROM {u}_dest.orders ORDER BY 1"
        ))
        .await?;
    assert_eq!(shards.len(), 24, "{shards:?}");
    assert!(shards.contains(&format!("s1/{u}_2.orders_0")));

    // A key present in two shards is reported, naming both (a key the writer left in place).
    let taken: Option<i64> = conn_at(&MARIADB.get())
        .await?
        .query_first(format!("SELECT MIN(id) FROM {u}_0.orders_0"))
        .await?;
    let taken = taken.ok_or("orders_0 of the first shard is empty")?;
    let mut c = conn_at(&MARIADB_SHARD2.get()).await?;
    c.query_drop(format!(
        "INSERT INTO {u}_4.orders_0 VALUES ({taken}, 'dup', 1)"
    ))
    .await?;
    let err = run_until_caught_up(&file)
        .expect_err("duplicate key across shards")
        .to_string();
    assert!(
        err.contains("exists in two shards")
            && err.contains(&format!("s0/{u}_0.orders_0"))
            && err.contains(&format!("s2/{u}_4.orders_0")),
        "{err}"
    );
    cleanup(&u).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_cycles_of_a_sharded_project_end_equal_to_the_union() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("shk");
    let dir = temp_dir(&u);
    seed(&u, 500).await?;
    let file = sharded_project(&dir, &u);
    let stop = Arc::new(AtomicBool::new(false));
    let ws = writers(&u, &stop);
    let mut rng = Lcg(3 + u64::from(std::process::id()));
    let mut saw_full = false;
    for cycle in 0..20 {
        saw_full |= status(&dir).matches("full sync:  finished").count() < 3;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("runs.log"))?;
        writeln!(log, "--- cycle {cycle}")?;
        let mut child = spawn_run(&file)?;
        tokio::time::sleep(Duration::from_millis(300 + rng.next(1200))).await;
        child.kill()?;
        child.wait()?;
        // Never a row that no shard had: every destination id is one the shards use, and every
        // value one the seed or a writer wrote (`s`, `w`, `u`, `b` or `m` and a number).
        let dest = destination(&u).await.unwrap_or_default();
        let written = |v: &Option<String>| {
            v.as_deref().is_some_and(|v| {
                v.len() > 1
                    && "swubm".contains(&v[..1])
                    && v[1..].bytes().all(|b| b.is_ascii_digit())
            })
        };
        assert!(
            dest.iter()
                .all(|(id, v, _)| id % 10_000 <= 500 && *id < 3_000_000 && written(v)),
            "a row no shard could have: {:?}",
            dest.iter()
                .find(|(id, v, _)| !(id % 10_000 <= 500 && *id < 3_000_000 && written(v)))
        );
    }
    stop.store(true, Ordering::SeqCst);
    for w in ws {
        w.await??;
    }
    assert!(saw_full, "no kill landed during full sync");
    run_until_caught_up(&file)?;
    equal_to_union(&u, "after 20 kill -9 cycles").await?;
    cleanup(&u).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_shard_in_the_key_equal_keys_of_two_shards_are_kept_apart() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("shq");
    let dir = temp_dir(&u);
    seed(&u, 5).await?;
    let mut c = conn_at(&MARIADB_SHARD2.get()).await?;
    c.query_drop(format!("INSERT INTO {u}_4.orders_0 VALUES (1, 'dup', 1)"))
        .await?;
    let file = sharded_project(&dir, &u);
    let yaml = std::fs::read_to_string(&file)?
        .replace("  writers: 3\n", "  writers: 3\n  shard_in_key: true\n");
    std::fs::write(&file, yaml)?;
    run_until_caught_up(&file)?;
    let mut d = conn_at(&OCEANBASE.get()).await?;
    let ones: Vec<(i64, String)> = d
        .query(format!(
            "SELECT id, _sluice_shard FROM {u}_dest.orders WHERE id = 1 ORDER BY 2"
        ))
        .await?;
    assert_eq!(
        ones,
        vec![
            (1, format!("s0/{u}_0.orders_0")),
            (1, format!("s2/{u}_4.orders_0"))
        ]
    );
    // Deletes stay within their shard.
    c.query_drop(format!("DELETE FROM {u}_4.orders_0 WHERE id = 1"))
        .await?;
    run_until_caught_up(&file)?;
    let left: Vec<String> = d
        .query(format!(
            "SELECT _sluice_shard FROM {u}_dest.orders WHERE id = 1"
        ))
        .await?;
    assert_eq!(left, vec![format!("s0/{u}_0.orders_0")]);

    // Pausing the project pauses every part; resuming lets them go on.
    let out = sluice()
        .args(["project", "pause", "-f"])
        .arg(&file)
        .output()?;
    assert!(out.status.success());
    let mut child = spawn_run(&file)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while status(&dir).matches("state:      Paused").count() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "not every part paused: {}",
            status(&dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.query_drop(format!("INSERT INTO {u}_4.orders_1 VALUES (7, 'late', 1)"))
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = format!("SELECT COUNT(*) FROM {u}_dest.orders WHERE v = 'late'");
    assert_eq!(
        d.query_first::<i64, _>(&late).await?,
        Some(0),
        "delivered while paused"
    );
    let out = sluice()
        .args(["project", "resume", "-f"])
        .arg(&file)
        .output()?;
    assert!(out.status.success());
    while d.query_first::<i64, _>(&late).await? != Some(1) {
        assert!(
            std::time::Instant::now() < deadline + Duration::from_secs(30),
            "not resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigterm(&child)?;
    assert!(child.wait()?.success());
    cleanup(&u).await
}

/// A row filter written against the logical table's name applies to every shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_filter_on_the_logical_table_applies_to_every_shard() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("shf");
    let dir = temp_dir(&u);
    seed(&u, 5).await?;
    let file = sharded_project(&dir, &u);
    let yaml = std::fs::read_to_string(&file)?.replace(
        "stages:\n",
        &format!("  filters:\n    {u}.orders: \"amt > 0.5\"\nstages:\n"),
    );
    std::fs::write(&file, yaml)?;
    run_until_caught_up(&file)?;
    let mut d = conn_at(&OCEANBASE.get()).await?;
    let (rows, low): (i64, i64) = d
        .query_first(format!(
            "SELECT COUNT(*), CAST(SUM(amt <= 0.5) AS SIGNED) FROM {u}_dest.orders"
        ))
        .await?
        .ok_or("no answer")?;
    // 5 rows per table (amt 0.25 .. 1.25), 3 above 0.5, in 24 tables.
    assert_eq!((rows, low), (72, 0));
    cleanup(&u).await
}

/// Runs statements shard by shard, as a DBA rolls DDL over a sharded database: on shard k,
/// each of `each` (`{t}`: its table, `{k}`: k), then `meanwhile` on a shard not reached yet.
async fn roll_over(shards: &[(String, String)], each: &[&str], meanwhile: &str) -> TestResult {
    let fill = |sql: &str, t: &str, k: usize| sql.replace("{t}", t).replace("{k}", &k.to_string());
    let last = shards.len() - 1;
    for (k, (addr, tbl)) in shards.iter().enumerate() {
        let mut c = conn_at(addr).await?;
        for sql in each {
            c.query_drop(fill(sql, tbl, k)).await?;
        }
        let (addr2, other) = &shards[last - k];
        if last - k > k {
            conn_at(addr2)
                .await?
                .query_drop(fill(meanwhile, other, k))
                .await?;
        }
    }
    Ok(())
}

/// Column and index DDL run shard by shard (as a DBA rolls it over a sharded database) reaches
/// the one destination table once; rows of shards not yet altered keep flowing meanwhile, with
/// or without the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_rolled_over_the_shards_changes_the_destination_table_once() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("shd");
    let dir = temp_dir(&u);
    seed(&u, 20).await?;
    let file = sharded_project(&dir, &u);
    run_until_caught_up(&file)?;
    // Every shard in turn: add the column, then write a row there and one into a shard not
    // yet altered.
    let mut shards: Vec<(String, String)> = Vec::new();
    for (i, addr) in shard_addrs().into_iter().enumerate() {
        for d in [2 * i, 2 * i + 1] {
            for t in 0..4 {
                shards.push((addr.clone(), format!("{u}_{d}.orders_{t}")));
            }
        }
    }
    roll_over(
        &shards,
        &[
            "ALTER TABLE {t} ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT 'n'",
            "CREATE INDEX ix_v ON {t} (v)",
            "UPDATE {t} SET note = 'added{k}' WHERE id % 10 = 1",
        ],
        "UPDATE {t} SET v = 'before{k}' WHERE id % 10 = 2",
    )
    .await?;
    run_until_caught_up(&file)?;
    equal_in(
        &u,
        "after ADD COLUMN on every shard",
        &["id", "v", "CAST(amt AS CHAR)", "note"],
    )
    .await?;
    let indexes = format!(
        "SELECT COUNT(DISTINCT index_name) FROM information_schema.statistics \
         WHERE table_schema = '{u}_dest' AND table_name = 'orders' AND index_name = 'ix_v'"
    );
    let mut d = conn_at(&OCEANBASE.get()).await?;
    assert_eq!(d.query_first::<i64, _>(&indexes).await?, Some(1));
    // The same, dropping the column: rows of shards that still have it lose it on the way.
    roll_over(
        &shards,
        &[
            "ALTER TABLE {t} DROP COLUMN note",
            "DROP INDEX ix_v ON {t}",
            "UPDATE {t} SET v = 'dropped{k}' WHERE id % 10 = 3",
        ],
        "UPDATE {t} SET note = 'still{k}' WHERE id % 10 = 4",
    )
    .await?;
    run_until_caught_up(&file)?;
    equal_to_union(&u, "after DROP COLUMN on every shard").await?;
    assert_eq!(d.query_first::<i64, _>(&indexes).await?, Some(0));
    let cols: Vec<String> = d
        .exec(
            "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
             WHERE table_schema = ? AND table_name = 'orders' ORDER BY ordinal_position",
            (format!("{u}_dest"),),
        )
        .await?;
    assert_eq!(cols, ["id", "v", "amt", "_sluice_shard"]);
    // TRUNCATE of one shard's table removes that shard's rows only.
    let before = equal_to_union(&u, "before TRUNCATE of one shard").await?;
    let (addr, tbl) = &shards[0];
    let mut c = conn_at(addr).await?;
    let gone: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {tbl}")).await?;
    c.query_drop(format!("TRUNCATE TABLE {tbl}")).await?;
    run_until_caught_up(&file)?;
    let after = equal_to_union(&u, "after TRUNCATE of one shard").await?;
    assert_eq!(after, before - gone.unwrap_or_default());
    assert!(
        gone.unwrap_or_default() > 0,
        "the truncated shard held rows"
    );
    cleanup(&u).await
}

/// A logical table must have a primary key (as OMS requires): without one the project stops
/// before writing anything, naming the logical table and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logical_table_without_a_primary_key_is_refused_by_name() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("shn");
    let dir = temp_dir(&u);
    seed_as(
        &u,
        5,
        "id BIGINT NOT NULL, v VARCHAR(30), amt DECIMAL(10,2)",
    )
    .await?;
    let file = sharded_project(&dir, &u);
    let err = run_until_caught_up(&file)
        .expect_err("no primary key")
        .to_string();
    assert!(
        err.contains(&format!("`{u}_dest`.`orders`"))
            && err.contains("logical table")
            && err.contains("primary key"),
        "{err}"
    );
    let tables: Option<i64> = conn_at(&OCEANBASE.get())
        .await?
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{u}_dest'"
        ))
        .await?;
    assert_eq!(tables, Some(0), "nothing created");
    cleanup(&u).await
}

/// The topology pasted as an Apache ShardingSphere rule file: its data sources (six databases
/// on three servers) become three instances, its actualDataNodes the logical table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shardingsphere_rule_file_configures_the_logical_table() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("shs");
    let dir = temp_dir(&u);
    seed(&u, 50).await?;
    let mut sources = String::new();
    for (i, addr) in shard_addrs().iter().enumerate() {
        for d in [2 * i, 2 * i + 1] {
            sources.push_str(&format!(
                "  ds_{d}:\n    dataSourceClassName: com.zaxxer.hikari.HikariDataSource\n    \
                 jdbcUrl: jdbc:mysql://{addr}/{u}_{d}?serverTimezone=UTC&useSSL=false\n    \
                 username: root\n    password:\n"
            ));
        }
    }
    std::fs::write(
        dir.join("config-sharding.yaml"),
        format!(
            "databaseName: {u}\ndataSources:\n{sources}rules:\n- !SHARDING\n  tables:\n    orders:\n      \
             actualDataNodes: ds_${{0..5}}.orders_${{0..3}}\n      tableStrategy:\n        standard:\n          \
             shardingColumn: id\n          shardingAlgorithmName: by_id\n  shardingAlgorithms:\n    by_id:\n      \
             type: INLINE\n      props:\n        algorithm-expression: orders_${{id % 4}}\n"
        ),
    )?;
    let file = dir.join("project.yaml");
    std::fs::write(
        &file,
        format!(
            "name: {u}\nsource:\n  type: sharded\n  shardingsphere: config-sharding.yaml\n\
             destination:\n  type: oceanbase\n  url: mysql://root@{ob}\n\
             objects:\n  include: [\"*.*\"]\n  rename:\n    {u}.orders: {u}_dest.orders\n\
             stages:\n  full: true\n",
            ob = OCEANBASE.get()
        ),
    )?;
    run_until_caught_up(&file)?;
    let rows = equal_to_union(&u, "from a ShardingSphere rule file").await?;
    assert_eq!(rows, 24 * 50);
    let st = status(&dir);
    assert!(st.contains("checkpoint: vector of 3 instances"), "{st}");
    cleanup(&u).await
}

/// The first run of a sharded project on a destination that has never seen Sluice (its own
/// checkpoint database, created by nobody yet): six parts (two per instance) start at once;
/// the checkpoint table is made once before them, and every writer waits to see each table it
/// writes, so no part fails with `1146 ... doesn't exist` (seen once on a freshly started
/// seekdb, when the parts raced to create it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_parts_first_run_on_a_destination_that_never_saw_sluice() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("lfresh");
    let dir = temp_dir(&u);
    seed(&u, 200).await?;
    let meta_db = format!("{u}_meta");
    let addrs = shard_addrs();
    let mut instances_yaml = String::new();
    let mut shards_yaml = String::new();
    for (i, addr) in addrs.iter().enumerate() {
        for (half, d) in [("a", 2 * i), ("b", 2 * i + 1)] {
            let sid = 3_500_000
                + (std::process::id() % 100_000) * 10
                + (2 * i) as u32
                + u32::from(half == "b");
            instances_yaml.push_str(&format!(
                "    - {{name: s{i}{half}, url: \"mysql://root@{addr}\", server_id: {sid}}}\n"
            ));
            shards_yaml.push_str(&format!(
                "        s{i}{half}: \"{u}_{d}.orders_{{0..3}}\"\n"
            ));
        }
    }
    let yaml = format!(
        "name: {u}
source:
  type: sharded
  instances:
{instances_yaml}  logical_tables:
    - name: {u}.orders
      shards:
{shards_yaml}destination:
  type: oceanbase
  url: mysql://root@{ob}
  writers: 4
  meta_db: {meta_db}
objects:
  include: [\"*.*\"]
  rename:
    {u}.orders: {u}_dest.orders
stages:
  full: true
options:
  heartbeat_secs: 1
  full_chunk_rows: 100
",
        ob = OCEANBASE.get(),
    );
    let file = dir.join("project.yaml");
    std::fs::write(&file, yaml)?;
    run_until_caught_up(&file)?;
    let rows = equal_to_union(&u, "six parts' first run").await?;
    assert_eq!(rows, 6 * 4 * 200);
    // Each part's four writers have their row in the new checkpoint table.
    let mut d = conn_at(&OCEANBASE.get()).await?;
    let n: Option<i64> = d
        .query_first(format!(
            "SELECT COUNT(*) FROM {meta_db}.sluice_checkpoint WHERE project LIKE '{u}.%'"
        ))
        .await?;
    assert_eq!(n, Some(6 * 4));
    d.query_drop(format!("DROP DATABASE {meta_db}")).await?;
    cleanup(&u).await
}

/// The DBP / IDB processes: a logical table over three instances into one DataHub TUPLE topic,
/// with a writer on every instance during full and incremental sync. The state rebuilt from
/// the topic equals the union of the shards, and each row names the instance it came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logical_table_over_three_instances_reaches_one_datahub_topic() -> TestResult {
    use common::datahub::*;
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Datahub]);
    std::env::set_var("SLUICE_TEST_DATAHUB_KEY", "sluice-secret");
    let u = unique_name("shdh");
    let dir = temp_dir(&u);
    seed(&u, 200).await?;
    let dest = format!(
        "destination:\n  type: datahub\n  endpoint: {}\n  project: {DH_PROJECT}\n  access_id: sluice\n  access_key_env: SLUICE_TEST_DATAHUB_KEY\n  shard_count: 3\n",
        datahub_endpoint()
    );
    let file = sharded_project_into(&dir, &u, &dest);
    full_and_incremental_under_writers(&u, &dir, &file).await?;
    let recs = datahub_read(&datahub_endpoint(), &format!("{u}_dest_orders"))?;
    let got = rebuild_tuple(&recs, "id", &["id", "v", "amt"])?;
    let mut want = BTreeMap::new();
    for (i, addr) in shard_addrs().iter().enumerate() {
        let mut c = conn_at(addr).await?;
        for d in [2 * i, 2 * i + 1] {
            for t in 0..4 {
                let rows: Vec<(i64, Option<String>, Option<String>)> = c
                    .query(format!(
                        "SELECT id, v, CAST(amt AS CHAR) FROM {u}_{d}.orders_{t}"
                    ))
                    .await?;
                for (id, v, amt) in rows {
                    want.insert(
                        id.to_string(),
                        serde_json::json!({"id": id.to_string(), "v": v, "amt": amt}),
                    );
                }
            }
        }
    }
    assert!(want.len() > 4_000, "{} rows", want.len());
    assert_eq!(
        got.len(),
        want.len(),
        "rows in the topic vs the union of the shards"
    );
    assert!(
        got == want,
        "the state rebuilt from the topic differs from the union of the shards"
    );
    // Every record names its instance: the one whose id range holds its key.
    for r in &recs {
        let f = &r["fields"];
        let id: i64 = f["id"].as_str().and_then(|s| s.parse().ok()).ok_or("id")?;
        assert_eq!(
            f["sluice_shard"],
            format!("s{}", id / 1_000_000).as_str(),
            "{r}"
        );
    }
    cleanup_sources(&u).await
}

async fn cleanup_sources(u: &str) -> TestResult {
    for (i, addr) in shard_addrs().iter().enumerate() {
        let mut c = conn_at(addr).await?;
        for d in [2 * i, 2 * i + 1] {
            c.query_drop(format!("DROP DATABASE IF EXISTS {u}_{d}"))
                .await?;
        }
    }
    Ok(())
}
