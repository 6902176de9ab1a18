//! End-to-end cases kept as data: every folder under `tests/cases/` (see its README) is one
//! case, run the same way: prepare the source, `sluice run --until caught-up`, run the
//! workload, run again, compare both sides byte for byte. A new source or destination adds
//! folders here rather than Rust functions.

mod common;

use common::*;
use serde::Deserialize;
use sluice_testkit::{MARIADB_SHARD1, OCEANBASE};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    destination: String,
    objects: String,
    #[serde(default)]
    options: String,
    #[serde(default = "yes")]
    full: bool,
    #[serde(default)]
    expect: Expect,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Text the first run prints.
    warning: Option<String>,
    /// Queries equal on both sides (default: every table, every column).
    #[serde(default)]
    compare: Vec<String>,
}

/// Indents each line of a section body by two spaces.
fn indent(body: &str, db: &str) -> String {
    body.replace("{db}", db)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect()
}

/// Every table of `db` with all its columns, as queries ordered by every column.
async fn every_table(db: &str) -> Result<Vec<String>, mysql_async::Error> {
    let mut c = conn().await?;
    let tables: Vec<String> = c
        .exec(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = ? ORDER BY 1",
            (db,),
        )
        .await?;
    let mut out = Vec::new();
    for t in tables {
        let n: Vec<u32> = c
            .exec(
                "SELECT ordinal_position FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                (db, &t),
            )
            .await?;
        let order: Vec<String> = n.iter().map(|i| i.to_string()).collect();
        out.push(format!(
            "SELECT * FROM `{db}`.`{t}` ORDER BY {}",
            order.join(", ")
        ));
    }
    c.disconnect().await?;
    Ok(out)
}

async fn run_case(name: &str, dir: &Path) -> TestResult {
    let case: Case = serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("case.yaml"))?)?;
    let dest = match case.destination.as_str() {
        "mariadb" => MARIADB_SHARD1.get(),
        "oceanbase" => OCEANBASE.get(),
        other => return Err(format!("{name}: no destination {other:?} in the harness").into()),
    };
    let db = unique_name(&format!("case_{}", name.replace('-', "_")));
    let work = temp_dir(&db);
    let sql = |file: &str| -> Result<String, std::io::Error> {
        Ok(std::fs::read_to_string(dir.join(file))?.replace("{db}", &db))
    };
    let mut c = conn().await?;
    c.query_drop(format!(
        "CREATE DATABASE `{db}`; USE `{db}`; {}",
        sql("prepare.sql")?
    ))
    .await?;
    let yaml = format!(
        "name: {db}
source:
  type: mariadb
  url: mysql://root@{src}
  server_id: {sid}
destination:
  type: {kind}
  url: mysql://root@{dest}
  writers: 3
objects:
{objects}stages:
  full: {full}
options:
  heartbeat_secs: 1
{options}",
        src = MARIADB.get(),
        sid = 3_400_000 + std::process::id() % 1_000_000,
        kind = case.destination,
        objects = indent(&case.objects, &db),
        full = case.full,
        options = indent(&case.options, &db),
    );
    let file = work.join("project.yaml");
    std::fs::write(&file, yaml)?;
    let first = run_until_caught_up(&file).map_err(|e| format!("{name}: first run: {e}"))?;
    if let Some(w) = &case.expect.warning {
        assert!(
            first.contains(w.as_str()),
            "{name}: the first run says {w:?}: {first}"
        );
    }
    c.query_drop(format!("USE `{db}`; {}", sql("workload.sql")?))
        .await?;
    run_until_caught_up(&file).map_err(|e| format!("{name}: second run: {e}"))?;
    let queries = if case.expect.compare.is_empty() {
        every_table(&db).await?
    } else {
        case.expect
            .compare
            .iter()
            .map(|q| q.replace("{db}", &db))
            .collect()
    };
    for q in &queries {
        let (s, d) = (rows_at(&MARIADB.get(), q).await?, rows_at(&dest, q).await?);
        assert!(!s.is_empty(), "{name}: {q} has rows at the source");
        assert_eq!(d, s, "{name} ({}): {q}", case.about.trim());
    }
    c.query_drop(format!("DROP DATABASE `{db}`")).await?;
    let mut d = conn_at(&dest).await?;
    d.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .await?;
    d.disconnect().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_folder_passes() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards, Service::Oceanbase]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut names: Vec<String> = std::fs::read_dir(&root)?
        .filter_map(Result::ok)
        .filter(|e| e.path().join("case.yaml").exists())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 2, "cases under {}", root.display());
    for name in names {
        eprintln!("case {name}");
        run_case(&name, &root.join(&name)).await?;
    }
    Ok(())
}
