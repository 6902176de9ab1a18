//! `sluice verify` against real servers: MariaDB -> MariaDB (the harness's second instance).
//! Equal after a run, with a writer and the project running throughout (no false
//! difference); a tampered destination (a deleted row, an extra row, NULL vs empty, a trailing
//! space, a DECIMAL digit, and a changed value of every type of the type matrix) reported row
//! by row with its key and columns, corrected by `--apply`, and equal when verified again; a
//! logical table over three instances merged into OceanBase seekdb, its differences traced to
//! their shards.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::dbdest::*;
use common::*;
use sluice_testkit::{MARIADB, MARIADB_SHARD1, OCEANBASE};

fn verify(file: &Path, extra: &[&str]) -> Result<(i32, String), Box<dyn std::error::Error>> {
    let file = file.display().to_string();
    let mut args = vec![
        "verify",
        "-f",
        &file,
        "--chunk-rows",
        "300",
        "--settle-secs",
        "20",
    ];
    args.extend_from_slice(extra);
    sluice_said(args)
}

/// A project of `db.t` and `db.ty` into `dest_db` at the harness's second MariaDB.
fn project(dir: &Path, db: &str, dest_db: &str) -> PathBuf {
    let yaml = format!(
        "name: {db}
source:
  type: mariadb
  url: mysql://root@{src}
  server_id: {sid}
destination:
  type: mariadb
  url: mysql://root@{dest}
  writers: 2
objects:
  include: [\"{db}.*\"]
  rename:
    {db}.t: {dest_db}.t
    {db}.ty: {dest_db}.ty
stages:
  full: true
options:
  ddl: false
  heartbeat_secs: 1
",
        src = MARIADB.get(),
        dest = MARIADB_SHARD1.get(),
        sid = 3_300_000 + std::process::id() % 1_000_000,
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

async fn seeded(c: &mut mysql_async::Conn, db: &str, rows: u32) -> TestResult {
    type_table(c, db, TYPE_ROWS).await?;
    c.query_drop(format!("RENAME TABLE {db}.t TO {db}.ty"))
        .await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, amt DECIMAL(8,2), note TEXT)"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('s', seq), seq / 4, IF(seq % 3 = 0, NULL, 'ü') FROM {db}.seq_1_to_{rows}"
    ))
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_source_verifies_equal_while_the_project_runs() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let (db, dest_db, dir) = names("vfybusy");
    let mut c = conn().await?;
    seeded(&mut c, &db, 3_000).await?;
    let file = project(&dir, &db, &dest_db);
    let mut child = spawn_run(&file)?;
    full_sync_finished(&file, &mut child, 120).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer_loop(MARIADB.get(), 77, stop.clone(), {
        let db = db.clone();
        move |rng, n| {
            let id = rng.next(3_500) + 1;
            match rng.next(4) {
                0 => format!("REPLACE INTO {db}.t VALUES ({id}, 'w{n}', {n}.25, NULL)"),
                1 => format!("UPDATE {db}.t SET v = 'u{n}', amt = amt + 1 WHERE id = {id}"),
                2 => format!("DELETE FROM {db}.t WHERE id = {id}"),
                _ => format!("UPDATE {db}.t SET note = 'n{n}' WHERE id = {id}"),
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Twice, with the writer running all along.
    for round in 0..2 {
        let (code, text) = tokio::task::block_in_place(|| verify(&file, &[]))?;
        assert_eq!(code, 0, "round {round}: {text}");
        assert!(text.contains("result: 0 of 2 table(s) differ"), "{text}");
    }
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 100, "the writer made only {written} changes");
    sigterm(&child)?;
    assert!(child.wait()?.success());
    let mut d = dest_conn(&MARIADB_SHARD1.get()).await?;
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_destination_is_reported_by_key_and_column_and_corrected() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let (db, dest_db, dir) = names("vfytamp");
    let mut c = conn().await?;
    seeded(&mut c, &db, 1_000).await?;
    let file = project(&dir, &db, &dest_db);
    run_until_caught_up(&file)?;
    let (code, text) = verify(&file, &[])?;
    assert_eq!(code, 0, "{text}");

    let mut d = dest_conn(&MARIADB_SHARD1.get()).await?;
    d.query_drop("SET SESSION sql_mode = ''").await?;
    for sql in [
        format!("DELETE FROM {dest_db}.t WHERE id = 10"),
        format!("INSERT INTO {dest_db}.t VALUES (5000, 'extra', 1.00, NULL)"),
        format!("UPDATE {dest_db}.t SET v = CONCAT(v, ' ') WHERE id = 20"),
        format!("UPDATE {dest_db}.t SET note = '' WHERE id = 30"),
        format!("UPDATE {dest_db}.t SET amt = amt + 0.01 WHERE id = 40"),
        // Row 4 takes row 2's value in every column.
        format!(
            "UPDATE {dest_db}.ty a JOIN {dest_db}.ty b ON b.id = 2 SET {} WHERE a.id = 4",
            TYPES
                .iter()
                .map(|(n, ..)| format!("a.{n} = b.{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ] {
        d.query_drop(sql).await?;
    }
    // The columns in which the source's rows 2 and 4 differ: each must be reported.
    let mut changed: Vec<String> = Vec::new();
    for (n, ..) in TYPES {
        let same: Option<i64> = c
            .query_first(format!(
                "SELECT a.{n} <=> b.{n} FROM {db}.ty a JOIN {db}.ty b ON a.id = 2 AND b.id = 4"
            ))
            .await?;
        if same == Some(0) {
            changed.push((*n).to_string());
        }
    }
    assert!(changed.len() > 25, "{changed:?}");

    let (code, text) = verify(&file, &[])?;
    assert_eq!(code, 3, "{text}");
    for want in [
        "missing   id=10".to_string(),
        "extra     id=5000".to_string(),
        "different id=20: v".to_string(),
        "different id=30: note".to_string(),
        "different id=40: amt".to_string(),
        format!("{db}.t -> {dest_db}.t: 1000 rows, 996 equal, 1 missing, 1 extra, 3 different"),
        format!("{db}.ty -> {dest_db}.ty: 5 rows, 4 equal, 0 missing, 0 extra, 1 different"),
        format!("different id=4: {}", changed.join(", ")),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
    let (code, text) = verify(&file, &["--tables", "nosuch.*"])?;
    assert!(
        code == 1 && text.contains("no table the project selects matches --tables"),
        "{text}"
    );
    // --tables narrows it to the tables named.
    let (code, text) = verify(&file, &["--tables", &format!("{db}.ty")])?;
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("result: 1 of 1 table(s) differ") && !text.contains(&format!("{db}.t ->")),
        "{text}"
    );
    let status = status_of(&file);
    assert!(
        status.contains(&format!("verified:   {db}.t -> {dest_db}.t 1000 rows: 996 equal, 1 missing, 1 extra, 3 different")),
        "{status}"
    );

    // The correction: written, applied, and then nothing differs.
    let sql = dir.join("correction.sql");
    let sql_arg = sql.display().to_string();
    let (code, text) = verify(&file, &["--correction", &sql_arg, "--apply"])?;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("result: 0 of 2 table(s) differ after the corrections"),
        "{text}"
    );
    let written = std::fs::read_to_string(&sql)?;
    assert!(
        written.contains(&format!("DELETE FROM `{dest_db}`.`t` WHERE `id` = 5000;")),
        "{written}"
    );
    assert!(
        written.contains(&format!("INSERT INTO `{dest_db}`.`t`")),
        "{written}"
    );
    let (code, text) = verify(&file, &[])?;
    assert_eq!(code, 0, "{text}");
    let note: Option<Option<String>> = d
        .query_first(format!("SELECT note FROM {dest_db}.t WHERE id = 30"))
        .await?;
    assert_eq!(note, Some(None), "NULL again, not the empty string");
    // A table missing at the destination is reported as not verified; the others still are.
    d.query_drop(format!("DROP TABLE {dest_db}.ty")).await?;
    let (code, text) = verify(&file, &[])?;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "{db}.ty -> {dest_db}.ty: could not be verified: destination: `{dest_db}`.`ty`:"
        )) && text.contains("doesn't exist")
            && text.contains(&format!("{db}.t -> {dest_db}.t: 1000 rows, 1000 equal"))
            && text.contains("1 of 2 table(s) could not be verified"),
        "{text}"
    );
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

#[test]
fn a_destination_that_cannot_be_queried_is_refused_with_what_can() -> TestResult {
    let dir = temp_dir(&unique_name("vfyrmq"));
    let file = dir.join("project.yaml");
    std::fs::write(
        &file,
        "name: vfyk\nsource:\n  type: mariadb\n  url: mysql://root@127.0.0.1:1\n\
         destination:\n  type: rocketmq\n  namesrv: 127.0.0.1:1\n  format: debezium\n\
         objects:\n  include: [\"x.*\"]\n",
    )?;
    let (code, out) = verify(&file, &[])?;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("verification of this destination is not built yet"),
        "{out}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_missing_from_a_merged_logical_table_is_traced_to_its_shard() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let u = unique_name("vfyshard");
    let file = logical_orders(
        &u,
        &format!("type: oceanbase\nurl: mysql://root@{}", OCEANBASE.get()),
    )
    .await?;
    run_until_caught_up(&file)?;
    let (code, text) = verify(&file, &[])?;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!(
            "{u}.orders -> {u}_dest.orders: 600 rows, 600 equal"
        )),
        "{text}"
    );
    let mut d = dest_conn(&OCEANBASE.get()).await?;
    d.query_drop(format!("DELETE FROM {u}_dest.orders WHERE id = 1105"))
        .await?;
    d.query_drop(format!(
        "UPDATE {u}_dest.orders SET v = 'x' WHERE id = 2007"
    ))
    .await?;
    let (code, text) = verify(&file, &[])?;
    assert_eq!(code, 3, "{text}");
    for want in [
        "missing   id=1105 (instance s1)",
        "different id=2007: v (instance s2)",
        "600 rows, 598 equal, 1 missing, 0 extra, 1 different",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let (code, text) = verify(&file, &["--apply"])?;
    assert_eq!(code, 0, "{text}");
    let (code, text) = verify(&file, &[])?;
    assert_eq!(code, 0, "{text}");
    d.query_drop(format!("DROP DATABASE {u}_dest")).await?;
    drop_logical_orders(&u).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_stage_runs_once_caught_up_and_status_shows_it() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let (db, dest_db, dir) = names("vfystage");
    let mut c = conn().await?;
    seeded(&mut c, &db, 500).await?;
    let file = project(&dir, &db, &dest_db);
    let yaml =
        std::fs::read_to_string(&file)?.replace("  full: true\n", "  full: true\n  verify: true\n");
    std::fs::write(&file, yaml)?;
    let mut child = spawn_run(&file)?;
    let mut status = String::new();
    for _ in 0..120 {
        status = status_of(&file);
        if status.matches("verified:").count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sigterm(&child)?;
    assert!(child.wait()?.success());
    assert!(
        status.contains(&format!("verified:   {db}.t -> {dest_db}.t 500 rows: 500 equal, 0 missing, 0 extra, 0 different")),
        "{status}"
    );
    // A destination that cannot be verified (a format verification does not read back) is
    // refused when the file is read.
    let kafka = dir.join("kafka.yaml");
    std::fs::write(
        &kafka,
        "name: vfyk2\nsource:\n  type: mariadb\n  url: mysql://root@127.0.0.1:1\n\
         destination:\n  type: rocketmq\n  namesrv: 127.0.0.1:1\n  format: debezium\n\
         objects:\n  include: [\"x.*\"]\nstages:\n  verify: true\n",
    )?;
    let out = sluice().args(["precheck", "-f"]).arg(&kafka).output()?;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("stages.verify"),
        "{said}"
    );
    let mut d = dest_conn(&MARIADB_SHARD1.get()).await?;
    drop_both(&mut c, &mut d, &db, &dest_db).await
}
