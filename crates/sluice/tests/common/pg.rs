//! Helpers of the PostgreSQL source's tests: clients of the harness PostgreSQL (or of a
//! server of a test's own), databases of their own, projects, and rows as text on both sides.

use super::*;
use sluice_testkit::{MARIADB_SHARD1, POSTGRES};

/// A client of database `db` in the harness PostgreSQL, in the session settings whose text
/// output the comparisons read (UTC, ISO dates, hex bytea, shortest exact floats).
pub async fn pg(db: &str) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    pg_at(&POSTGRES.get(), db).await
}

/// A client of database `db` of the server at `addr` (see [`pg`]).
pub async fn pg_at(
    addr: &str,
    db: &str,
) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let (host, port) = addr.split_once(':').ok_or("PostgreSQL address")?;
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(host)
        .port(port.parse()?)
        .user("postgres")
        .dbname(db)
        .options("-c TimeZone=UTC -c DateStyle=ISO,YMD -c bytea_output=hex -c extra_float_digits=1 -c IntervalStyle=postgres");
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// A new database of its own.
pub async fn new_pg_db(name: &str) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    ensure_up(&[Service::Postgres]);
    let admin = pg("postgres").await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    pg(name).await
}

/// Drops a test's database and the replication slots left on it.
pub async fn drop_pg_db(name: &str) -> TestResult {
    let admin = pg("postgres").await?;
    // A run that just ended may hold its slot a moment longer (its WAL sender closing).
    for _ in 0..100 {
        let left = admin
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE database = $1 AND active",
                &[&name],
            )
            .await?;
        if left.try_get::<_, i64>(0)? == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    admin
        .batch_execute(&format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{name}' AND NOT active"
        ))
        .await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

/// The rows of `sql` as PostgreSQL prints them (simple query: each value's output text).
pub async fn pg_rows(
    c: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<BTreeMap<String, Option<String>>>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for m in c.simple_query(sql).await? {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            let mut row = BTreeMap::new();
            for (i, col) in r.columns().iter().enumerate() {
                row.insert(col.name().to_string(), r.get(i).map(str::to_string));
            }
            out.push(row);
        }
    }
    Ok(out)
}

pub fn pg_project(dir: &Path, name: &str, db: &str, destination: &str, objects: &str) -> PathBuf {
    pg_project_at(&POSTGRES.get(), dir, name, db, destination, objects)
}

pub fn pg_project_at(
    pg: &str,
    dir: &Path,
    name: &str,
    db: &str,
    destination: &str,
    objects: &str,
) -> PathBuf {
    let yaml = format!(
        "name: {name}
source:
  type: postgres
  url: postgres://postgres@{pg}/{db}
  create_publication: true
destination:
{destination}
objects:
{objects}
stages:
  full: true
options:
  heartbeat_secs: 1
  full_chunk_rows: 2
",
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

/// A project of the test's database `db` into the harness MariaDB (shard 1) with these
/// `objects` lines; its file and the destination's address.
pub fn into_mariadb(db: &str, objects: &str) -> (PathBuf, String) {
    let dest = MARIADB_SHARD1.get();
    let file = pg_project(
        &temp_dir(db),
        db,
        db,
        &format!("  type: mariadb\n  url: mysql://root@{dest}"),
        objects,
    );
    (file, dest)
}

/// `sluice run -f FILE --until caught-up`: its exit code and output.
pub fn run_once(file: &Path) -> Result<(i32, String), Box<dyn std::error::Error>> {
    sluice_said([
        "run",
        "-f",
        file.to_str().ok_or("path")?,
        "--until",
        "caught-up",
    ])
}

/// The rows of a destination query, each column as text (NULL as "NULL"), sorted.
pub async fn dest_text(
    d: &mut mysql_async::Conn,
    sql: &str,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let rows: Vec<mysql_async::Row> = d.query(sql).await?;
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| match r.as_ref(i) {
                    Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                    Some(mysql_async::Value::NULL) | None => "NULL".into(),
                    Some(v) => v.as_sql(true),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The columns of `db`.t at the destination, in order.
pub async fn dest_columns(
    d: &mut mysql_async::Conn,
    db: &str,
) -> Result<Vec<String>, mysql_async::Error> {
    d.query(format!(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = '{db}' AND table_name = 't' ORDER BY ordinal_position"
    ))
    .await
}

/// The same rows at the source.
pub async fn source_text(
    c: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut out: Vec<String> = Vec::new();
    for m in c.simple_query(sql).await? {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            out.push(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out.sort();
    Ok(out)
}
