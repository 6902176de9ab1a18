//! Each precheck failure, provoked on a real server, with the message it must give.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sluice_core::TableId;
use sluice_source_mysql::precheck::{check, Report};
use sluice_testkit::{ensure_up, unique_name, Service, TempMariadb, MARIADB};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn precheck_at(url: &str, tables: &[TableId]) -> Result<Report, Box<dyn std::error::Error>> {
    let mut conn = Conn::new(Opts::from_url(url)?).await?;
    let r = check(&mut conn, tables).await?;
    conn.disconnect().await?;
    Ok(r)
}

fn text(r: &Report) -> String {
    r.failures
        .iter()
        .chain(&r.warnings)
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_harness_source_passes() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let r = precheck_at(&format!("mysql://root@{}", MARIADB.get()), &[]).await?;
    assert!(r.passed() && r.warnings.is_empty(), "{}", text(&r));
    Ok(())
}

#[tokio::test]
async fn binary_logging_off_is_a_failure_with_its_fix() -> TestResult {
    let server = TempMariadb::start(&["skip-log-bin"])?;
    let r = precheck_at(&format!("mysql://root@{}", server.addr), &[]).await?;
    assert!(!r.passed());
    assert!(
        text(&r).contains("binary logging is off on the source (log_bin); set log_bin"),
        "{}",
        text(&r)
    );
    Ok(())
}

#[tokio::test]
async fn statement_format_and_minimal_image_are_failures_with_their_fixes() -> TestResult {
    let server = TempMariadb::start(&[
        "log_bin=mariadb-bin",
        "server_id=9",
        "binlog_format=STATEMENT",
        "binlog_row_image=MINIMAL",
        "binlog_row_metadata=MINIMAL",
    ])?;
    let r = precheck_at(&format!("mysql://root@{}", server.addr), &[]).await?;
    let t = text(&r);
    assert_eq!(r.failures.len(), 2, "{t}");
    assert!(t.contains("binlog_format is STATEMENT, not ROW"), "{t}");
    assert!(t.contains("SET GLOBAL binlog_format = 'ROW'"), "{t}");
    assert!(t.contains("binlog_row_image is MINIMAL, not FULL"), "{t}");
    assert!(t.contains("binlog_row_metadata is MINIMAL"), "{t}");
    Ok(())
}

#[tokio::test]
async fn missing_privileges_are_named_with_the_grant_to_run() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let user = unique_name("nopriv");
    let mut root = Conn::new(Opts::from_url(&format!("mysql://root@{}", MARIADB.get()))?).await?;
    root.query_drop(format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'"
    ))
    .await?;
    let r = precheck_at(&format!("mysql://{user}:pw@{}", MARIADB.get()), &[]).await?;
    root.query_drop(format!("DROP USER '{user}'@'127.0.0.1'"))
        .await?;
    let t = text(&r);
    assert!(
        t.contains("lacks the privileges REPLICATION SLAVE, REPLICATION CLIENT, SELECT"),
        "{t}"
    );
    assert!(
        t.contains("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.*"),
        "{t}"
    );
    Ok(())
}

#[tokio::test]
async fn a_table_without_primary_key_is_a_warning_that_says_what_it_means() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let db = unique_name("nopk");
    let mut root = Conn::new(Opts::from_url(&format!("mysql://root@{}", MARIADB.get()))?).await?;
    root.query_drop(format!("CREATE DATABASE {db}")).await?;
    root.query_drop(format!("CREATE TABLE {db}.heap (a INT, b INT)"))
        .await?;
    root.query_drop(format!("CREATE TABLE {db}.keyed (a INT PRIMARY KEY)"))
        .await?;
    let tables = [TableId::new(&db, "heap"), TableId::new(&db, "keyed")];
    let r = precheck_at(&format!("mysql://root@{}", MARIADB.get()), &tables).await?;
    root.query_drop(format!("DROP DATABASE {db}")).await?;
    assert!(r.passed());
    assert_eq!(r.warnings.len(), 1, "{}", text(&r));
    assert!(
        text(&r).contains(&format!("table `{db}`.`heap` has no primary key")),
        "{}",
        text(&r)
    );
    Ok(())
}
