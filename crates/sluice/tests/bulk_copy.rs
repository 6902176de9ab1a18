//! Full sync into a database writes copied rows by `LOAD DATA LOCAL INFILE` (sink-mysql's
//! bulk.rs): every value of the type matrix, and text built to trip the payload's escaping,
//! must arrive exactly, and by that path (not by its INSERT fallback).

mod common;

use common::dbdest::*;
use common::*;
use sluice_testkit::{MARIADB_SHARD1, OCEANBASE};

/// Values the payload format reads specially: backslashes, tabs, newlines, carriage returns,
/// NUL bytes, a text equal to the NULL marker, trailing spaces, and binary strings of the same
/// bytes.
const ESCAPES: &str = r#"INSERT INTO {db}.t (id, c, vc, tx, vbin, vl, vg, b, vb, bl, j) VALUES
    (6, 'a\tb', 'a\\b\tc\nd\re\0f  ', '\\N', '\\', 'tab\there', '\n', x'5c4e0a09', x'0d0a00',
     x'5c', '"\\\\t\\n"'),
    (7, '\\N', '', '\\\\N', 'x\0y', '\r\n', '中\t文', x'00000000', x'', x'00', '{"\\u0000":1}')"#;

async fn copied_exactly(kind: &str, dest: &str) -> TestResult {
    let (db, dest_db, dir) = names(&format!("bulk{kind}"));
    let mut c = conn().await?;
    type_table(&mut c, &db, TYPE_ROWS).await?;
    c.query_drop(ESCAPES.replace("{db}", &db)).await?;
    let file = db_project(&dir, &db, &dest_db, kind, dest);
    // On by default into MariaDB, off into OceanBase (slower there): asked for here.
    let yaml = std::fs::read_to_string(&file)?;
    std::fs::write(
        &file,
        yaml.replace("  writers: 3\n", "  writers: 3\n  load_data: true\n"),
    )?;
    let out = sluice()
        .args(["run", "-f"])
        .arg(&file)
        .args(["--until", "caught-up"])
        .env("SLUICE_LOG", "sluice_sink_mysql=info")
        .output()?;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{kind}: sluice run failed: {log}");
    assert!(
        log.contains("copied rows are written by LOAD DATA LOCAL INFILE"),
        "{kind}: the rows did not go by LOAD DATA: {log}"
    );
    assert!(
        !log.contains("written again by INSERT"),
        "{kind}: a chunk fell back to INSERT: {log}"
    );
    let mut d = dest_conn(dest).await?;
    let want = rendered(&mut c, &db, &[]).await?;
    let got = rendered(&mut d, &dest_db, &[]).await?;
    same_values(kind, &want, &got, TYPE_ROWS.len() + 2);
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copied_rows_go_by_load_data_exactly_into_mariadb() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    copied_exactly("mariadb", &MARIADB_SHARD1.get()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copied_rows_go_by_load_data_exactly_into_oceanbase_seekdb() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Oceanbase]);
    copied_exactly("oceanbase", &OCEANBASE.get()).await
}
