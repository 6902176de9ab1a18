//! Cases from a peer's published MySQL -> MySQL end-to-end suite, run MariaDB -> MariaDB and
//! compared with the source: foreign keys, a keyless table copied again after kill -9, DDL
//! beyond columns and indexes, a start before a schema change, every character set, and object
//! names with any character. Those that are data (JSON kept exactly, tables without a primary
//! key) are case folders under `tests/cases/` (cases.rs).

mod common;

use common::*;
use sluice_testkit::MARIADB_SHARD1;

async fn dest_conn() -> Result<mysql_async::Conn, mysql_async::Error> {
    conn_at(&MARIADB_SHARD1.get()).await
}

/// A MariaDB -> MariaDB project named `name` with these `objects:` and `options:` lines
/// (indented by two spaces) and full sync on.
fn db_project(dir: &Path, name: &str, objects: &str, options: &str) -> PathBuf {
    let yaml = format!(
        "name: {name}
source:
  type: mariadb
  url: mysql://root@{mariadb}
  server_id: {sid}
destination:
  type: mariadb
  url: mysql://root@{dest}
  writers: 3
objects:
{objects}
stages:
  full: true
options:
  heartbeat_secs: 1
{options}",
        mariadb = MARIADB.get(),
        dest = MARIADB_SHARD1.get(),
        sid = 3_300_000 + std::process::id() % 1_000_000,
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

/// Drops `dbs` on both sides (the destination keeps the source's names here).
async fn drop_dbs(dbs: &[&str]) -> TestResult {
    let (mut c, mut d) = (conn().await?, dest_conn().await?);
    for db in dbs {
        c.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
            .await?;
        d.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
            .await?;
    }
    Ok(())
}

/// The rows of `sql` on each side, every column as its bytes.
async fn both(
    sql: &str,
) -> Result<(Vec<Vec<Option<Vec<u8>>>>, Vec<Vec<Option<Vec<u8>>>>), mysql_async::Error> {
    Ok((
        rows_at(&MARIADB.get(), sql).await?,
        rows_at(&MARIADB_SHARD1.get(), sql).await?,
    ))
}

/// `sluice run --until caught-up` that must end within `secs`: its stderr, and whether it
/// succeeded. A run still going then (retrying forever) is killed and is an error.
fn run_within(file: &Path, secs: u64) -> Result<(bool, String), Box<dyn std::error::Error>> {
    let mut child = sluice()
        .args(["run", "-f"])
        .arg(file)
        .args(["--until", "caught-up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = reader.join().unwrap_or_default();
            return Err(format!("the run did not end within {secs} s:\n{err}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    Ok((status.success(), reader.join().unwrap_or_default()))
}

/// Parents and children with a foreign key at both ends. Writers apply keys in parallel and
/// an update of a parent is a delete-then-insert: with the destination's checks on, that is
/// refused (`ERROR 1451`/`1452`) and was retried forever. Off by default; kept on when asked,
/// with the stream applied in source order; a row no retry can place stops the project naming
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_at_the_destination_neither_stop_nor_stall_the_project() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let db = unique_name("pfk");
    let dir = temp_dir(&db);
    let tables = format!(
        "CREATE DATABASE {db}; \
         CREATE TABLE {db}.parent (id INT PRIMARY KEY, v VARCHAR(20)); \
         CREATE TABLE {db}.child (id INT PRIMARY KEY, pid INT NOT NULL, v VARCHAR(20), \
           CONSTRAINT fk_parent FOREIGN KEY (pid) REFERENCES {db}.parent (id))"
    );
    let (mut c, mut d) = (conn().await?, dest_conn().await?);
    c.query_drop(&tables).await?;
    d.query_drop(&tables).await?;
    let family = |from: u32, to: u32| {
        let mut sql = String::new();
        for p in from..to {
            sql.push_str(&format!(
                "BEGIN; INSERT INTO {db}.parent VALUES ({p}, 'p{p}'); \
                 INSERT INTO {db}.child VALUES ({a}, {p}, 'c'), ({b}, {p}, 'c'), ({e}, {p}, 'c'); \
                 UPDATE {db}.parent SET v = 'changed' WHERE id = {p}; COMMIT; ",
                a = p * 10,
                b = p * 10 + 1,
                e = p * 10 + 2
            ));
        }
        sql
    };
    c.query_drop(family(1, 50)).await?;
    let file = db_project(&dir, &db, &format!("  include: [\"{db}.*\"]"), "");
    run_within(&file, 60)?;
    c.query_drop(family(50, 150)).await?;
    c.query_drop(format!(
        "UPDATE {db}.parent SET v = 'again' WHERE id % 3 = 0; \
         DELETE FROM {db}.child WHERE pid % 5 = 0; DELETE FROM {db}.parent WHERE id % 5 = 0"
    ))
    .await?;
    let (ok, err) = run_within(&file, 60)?;
    assert!(ok, "checks off: {err}");
    let same = |t: &str| format!("SELECT * FROM {db}.{t} ORDER BY id");
    for t in ["parent", "child"] {
        let (src, dst) = both(&same(t)).await?;
        assert!(src.len() > 100, "{t}: {} rows", src.len());
        assert_eq!(dst, src, "{t}, foreign-key checks off");
    }
    // Checks kept on: applied in source order, updates as upserts.
    let yaml = std::fs::read_to_string(&file)?.replace(
        "  writers: 3\n",
        "  writers: 3\n  foreign_key_checks: true\n",
    );
    std::fs::write(&file, yaml)?;
    c.query_drop(family(150, 200)).await?;
    c.query_drop(format!("UPDATE {db}.parent SET v = 'on' WHERE id > 140"))
        .await?;
    let (ok, err) = run_within(&file, 60)?;
    assert!(ok, "checks on: {err}");
    for t in ["parent", "child"] {
        let (src, dst) = both(&same(t)).await?;
        assert_eq!(dst, src, "{t}, foreign-key checks on");
    }
    // A child whose parent exists nowhere: no retry can place it.
    c.query_drop(format!(
        "SET SESSION foreign_key_checks = 0; INSERT INTO {db}.child VALUES (99999, 424242, 'orphan')"
    ))
    .await?;
    let (ok, err) = run_within(&file, 60)?;
    assert!(!ok, "an orphan row was accepted: {err}");
    for want in [
        "1452",
        "child",
        "id=99999",
        "mariadb-bin.",
        "foreign_key_checks",
    ] {
        assert!(err.contains(want), "the error should name {want}: {err}");
    }
    drop_dbs(&[&db]).await
}

/// A column in every character set the server offers, through full sync and the binlog: the
/// destination holds the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_character_set_arrives_as_the_same_bytes() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let db = unique_name("pcs");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let sets: Vec<String> = c
        .query("SELECT character_set_name FROM information_schema.character_sets WHERE character_set_name <> 'binary' ORDER BY 1")
        .await?;
    assert!(sets.len() >= 39, "{sets:?}");
    let cols: Vec<String> = sets
        .iter()
        .map(|cs| format!("c_{cs} VARCHAR(64) CHARACTER SET {cs}"))
        .collect();
    c.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, {})",
        cols.join(", ")
    ))
    .await?;
    // Each column keeps what its set can hold of the sample (the rest becomes '?').
    let samples = [
        "Aé中文日本語ｶﾀｶﾅ한국어Ωж€ąčğ¥\\~",
        "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ",
        "∀∂∃∅∇∈∉∋∏∑−∗√∝∞∠∧∨∩∪∫∴∼≅≈≠≡≤≥⊂⊃⊄⊆⊇⊕⊗⊥⋅⌈⌉⌊⌋〈〉◊♠♣♥♦",
        "ßẞ丂丄丅丆丏丒丗丟丠両丣並丩丮丯丱丳丵丷丼乀乁乂乄乆乊乑乕乗乚乛乢乣乤乥乧乨乪",
        "ა ბ გ դ ե զ ก ข ฃ ค א ב ג ا ب ت Ա Բ Գ Ђ Ѓ",
    ];
    let set_all = |id: usize, text: &str| {
        let assigns: Vec<String> = sets
            .iter()
            .map(|cs| format!("c_{cs} = CONVERT(? USING {cs})"))
            .collect();
        let params: Vec<mysql_async::Value> =
            std::iter::repeat_n(text.into(), sets.len()).collect();
        (
            format!("INSERT INTO {db}.t SET id = {id}, {}", assigns.join(", ")),
            params,
        )
    };
    c.query_drop("SET SESSION sql_mode = ''").await?;
    for (i, s) in samples.iter().enumerate() {
        let (sql, p) = set_all(i, s);
        c.exec_drop(sql, p).await?;
    }
    let file = db_project(&dir, &db, &format!("  include: [\"{db}.*\"]"), "");
    run_until_caught_up(&file)?;
    for (i, s) in samples.iter().enumerate() {
        let (sql, p) = set_all(100 + i, s);
        c.exec_drop(sql, p).await?;
    }
    run_until_caught_up(&file)?;
    let hexes: Vec<String> = sets.iter().map(|cs| format!("HEX(c_{cs})")).collect();
    let (src, dst) = both(&format!(
        "SELECT id, {} FROM {db}.t ORDER BY id",
        hexes.join(", ")
    ))
    .await?;
    assert_eq!(src.len(), samples.len() * 2);
    for (s, d) in src.iter().zip(&dst) {
        for (k, cs) in sets.iter().enumerate() {
            assert_eq!(
                d[k + 1],
                s[k + 1],
                "row {:?}, {cs}",
                String::from_utf8_lossy(s[0].as_deref().unwrap_or_default())
            );
        }
    }
    assert_eq!(dst.len(), src.len());
    drop_dbs(&[&db]).await
}

/// `name` quoted as MySQL quotes identifiers.
fn bq(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Databases and tables whose names hold `.`, `*`, `@`, spaces and quotes, selected exactly by
/// quoted names (and not their look-alikes), through full sync and the binlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_names_with_any_character_are_selected_exactly() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let base = unique_name("pnm");
    let dir = temp_dir(&base);
    let db = format!("{base}.my db@x");
    let twin = format!("{base}_my db@x"); // what an unquoted `.` wildcard-free split would miss
    let wanted = [
        "t*1", "a@b", "sp ace", "q'uote", "d\"q", "b`tick", "dot.ted",
    ];
    let look_alikes = ["t11", "tx1"];
    let mut c = conn().await?;
    for d in [&db, &twin] {
        c.query_drop(format!("CREATE DATABASE {}", bq(d))).await?;
        for t in wanted.iter().chain(&look_alikes) {
            c.query_drop(format!(
                "CREATE TABLE {}.{} (id INT PRIMARY KEY, v VARCHAR(20))",
                bq(d),
                bq(t)
            ))
            .await?;
            c.query_drop(format!(
                "INSERT INTO {}.{} VALUES (1, 'one'), (2, 'two')",
                bq(d),
                bq(t)
            ))
            .await?;
        }
    }
    let include: Vec<String> = wanted
        .iter()
        .map(|t| Json::String(format!("{}.{}", bq(&db), bq(t))).to_string())
        .collect();
    let objects = format!(
        "  include: [{}]\n  columns:\n    {}: [id, v]",
        include.join(", "),
        Json::String(format!("{}.{}", bq(&db), bq("sp ace")))
    );
    let file = db_project(&dir, &base, &objects, "");
    run_until_caught_up(&file)?;
    for t in wanted.iter().chain(&look_alikes) {
        c.query_drop(format!(
            "INSERT INTO {0}.{1} VALUES (3, 'three'); UPDATE {0}.{1} SET v = 'changed' WHERE id = 1; \
             DELETE FROM {0}.{1} WHERE id = 2",
            bq(&db),
            bq(t)
        ))
        .await?;
    }
    run_until_caught_up(&file)?;
    let mut d = dest_conn().await?;
    let there: Vec<(String, String)> = d
        .exec(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN (?, ?) ORDER BY 1, 2",
            (&db, &twin),
        )
        .await?;
    let mut want: Vec<(String, String)> =
        wanted.iter().map(|t| (db.clone(), t.to_string())).collect();
    want.sort();
    assert_eq!(there, want, "exactly the quoted tables at the destination");
    for t in wanted {
        let (src, dst) = both(&format!("SELECT * FROM {}.{} ORDER BY id", bq(&db), bq(t))).await?;
        assert_eq!(src.len(), 2, "{t}");
        assert_eq!(dst, src, "{t}");
    }
    let (mut c, mut d) = (conn().await?, dest_conn().await?);
    for x in [&db, &twin] {
        c.query_drop(format!("DROP DATABASE IF EXISTS {}", bq(x)))
            .await?;
        d.query_drop(format!("DROP DATABASE IF EXISTS {}", bq(x)))
            .await?;
    }
    Ok(())
}

/// The tables of `db` on each side, and every table's rows there.
async fn same_tables(db: &str) -> TestResult {
    let list = format!(
        "SELECT CAST(table_name AS BINARY) FROM information_schema.tables WHERE table_schema = '{db}' ORDER BY 1"
    );
    let (src, dst) = both(&list).await?;
    assert_eq!(dst, src, "the tables of {db}");
    for row in &src {
        let name = String::from_utf8_lossy(row[0].as_deref().unwrap_or_default()).to_string();
        let (s, d) = both(&format!("SELECT * FROM {db}.{} ORDER BY 1", bq(&name))).await?;
        assert_eq!(d, s, "rows of {db}.{name}");
    }
    Ok(())
}

/// TRUNCATE, CREATE TABLE, CREATE/DROP INDEX, RENAME TABLE, ALTER TABLE ... RENAME and DROP
/// TABLE, between rows of the same and other tables, reach the destination in stream order; a
/// DDL that cannot be applied stops the project with its text and position, or is skipped with
/// `unsupported_ddl: ignore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_ddl_reaches_the_destination_in_stream_order() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let db = unique_name("pddl");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    c.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO {db}.t SELECT seq, 'first' FROM {db}.seq_1_to_300"
    ))
    .await?;
    let file = db_project(&dir, &db, &format!("  include: [\"{db}.*\"]"), "");
    run_until_caught_up(&file)?;
    c.query_drop(format!("USE {db}")).await?;
    for sql in [
        "INSERT INTO t VALUES (1000, 'before truncate')",
        "UPDATE t SET v = 'changed' WHERE id < 50",
        "TRUNCATE TABLE t",
        "INSERT INTO t VALUES (1, 'after truncate'), (2, 'after')",
        "CREATE TABLE n (id INT PRIMARY KEY, w VARCHAR(10) CHARACTER SET latin1, k INT) DEFAULT CHARSET=latin1",
        "BEGIN; INSERT INTO n VALUES (1, 'é', 1), (2, 'b', 2); INSERT INTO t VALUES (3, 'in txn'); COMMIT",
        "CREATE INDEX nk ON n (k)",
        "INSERT INTO n VALUES (3, 'c', 3)",
        "DROP INDEX nk ON n",
        "RENAME TABLE n TO n2",
        "INSERT INTO n2 VALUES (4, 'd', 4)",
        "UPDATE n2 SET w = 'moved' WHERE id = 1",
        "ALTER TABLE n2 RENAME TO n3",
        "DELETE FROM n3 WHERE id = 2",
        "CREATE TABLE gone (id INT PRIMARY KEY)",
        "INSERT INTO gone VALUES (1), (2)",
        "DROP TABLE gone",
        "CREATE TABLE gone (id INT PRIMARY KEY, again INT)",
        "INSERT INTO gone VALUES (7, 7)",
        "DROP TABLE IF EXISTS never_there",
        // Table options only: capture goes on, the destination skips them.
        "ALTER TABLE t COMMENT = 'a comment, with a comma'",
        "ALTER TABLE t ENGINE = InnoDB, AUTO_INCREMENT = 100",
        "INSERT INTO t VALUES (4, 'last')",
    ] {
        c.query_drop(sql).await?;
    }
    run_until_caught_up(&file)?;
    same_tables(&db).await?;
    let mut d = dest_conn().await?;
    let idx: Option<String> = d
        .exec_first(
            "SELECT index_name FROM information_schema.statistics WHERE table_schema = ? AND table_name = 'n3' AND index_name = 'nk'",
            (&db,),
        )
        .await?;
    assert_eq!(idx, None, "the index was dropped after it was made");
    // Not applicable: stops with the statement and its position; rows after it wait.
    c.query_drop("ALTER TABLE t ADD CONSTRAINT positive CHECK (id > 0)")
        .await?;
    c.query_drop("INSERT INTO t VALUES (5, 'after the stop')")
        .await?;
    let err = run_until_caught_up(&file).expect_err("stops").to_string();
    assert!(
        err.contains("ADD CONSTRAINT positive CHECK") && err.contains("mariadb-bin."),
        "{err}"
    );
    let five: Option<String> = d
        .exec_first(format!("SELECT v FROM {db}.t WHERE id = 5"), ())
        .await?;
    assert_eq!(five, None, "a row past the refused DDL was applied");
    // Skipped when the project says so.
    let yaml = std::fs::read_to_string(&file)?.replace(
        "  writers: 3\n",
        "  writers: 3\n  unsupported_ddl: ignore\n",
    );
    std::fs::write(&file, yaml)?;
    run_until_caught_up(&file)?;
    same_tables(&db).await?;
    drop_dbs(&[&db]).await
}

/// Every row of `db`.`table` on each side as bytes, sorted: a multiset, so duplicates count.
async fn rows_as_bytes(db: &str, table: &str, cols: &str) -> TestResult {
    let sql = format!("SELECT {cols} FROM {db}.{table} ORDER BY {cols}");
    let (src, dst) = both(&sql).await?;
    assert_eq!(dst, src, "{db}.{table}");
    Ok(())
}

/// Full sync of a table with no key killed (`kill -9`) in the middle of its copy, under
/// concurrent inserts, updates and deletes: the copy starts again from empty, the changes
/// before it are skipped and those after applied once, and the destination ends equal to the
/// source, duplicates counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_table_copied_again_after_kill_9_holds_each_row_once() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let db = unique_name("pnkk");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    c.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.bag (a INT, v VARCHAR(20)); \
         INSERT INTO {db}.bag SELECT seq % 5000, 'seed' FROM {db}.seq_1_to_40000"
    ))
    .await?;
    let file = db_project(
        &dir,
        &db,
        &format!("  include: [\"{db}.*\"]"),
        "  full_chunk_rows: 500\n  throttle_rows: 8000\n",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = writer_loop(
        MARIADB.get(),
        u64::from(std::process::id()) * 31,
        stop.clone(),
        {
            let db = db.clone();
            move |rng, n| {
                let a = rng.next(5000);
                match rng.next(3) {
                    0 => format!("INSERT INTO {db}.bag VALUES ({a}, 'w{n}')"),
                    1 => format!("UPDATE {db}.bag SET v = 'u{n}' WHERE a = {a} LIMIT 1"),
                    _ => format!("DELETE FROM {db}.bag WHERE a = {a} LIMIT 1"),
                }
            }
        },
    );
    let mut d = dest_conn().await?;
    for cycle in 0..2 {
        let mut child = spawn_run(&file)?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let n: Option<i64> = d
                .query_first(format!(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}'"
                ))
                .await?;
            let copied: Option<i64> = if n == Some(1) {
                d.query_first(format!("SELECT COUNT(*) FROM {db}.bag"))
                    .await?
            } else {
                None
            };
            if copied.is_some_and(|k| k > 5_000 + cycle * 3_000) {
                break;
            }
            if std::time::Instant::now() > deadline || child.try_wait()?.is_some() {
                return Err(format!("cycle {cycle}: the copy did not get going").into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        child.kill()?;
        child.wait()?;
    }
    let yaml = std::fs::read_to_string(&file)?.replace("  throttle_rows: 8000\n", "");
    std::fs::write(&file, yaml)?;
    let mut child = spawn_run(&file)?;
    full_sync_finished(&file, &mut child, 120).await?;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 100, "the writer made only {written} changes");
    sigterm(&child)?;
    assert!(child.wait()?.success());
    run_until_caught_up(&file)?;
    rows_as_bytes(&db, "bag", "a, v").await?;
    drop_dbs(&[&db]).await
}

/// A project started at a binlog position before an `ALTER TABLE`, against a destination that
/// holds the table as it was there: schema sync compares with the definition in force at the
/// start (not the source's current one), and the replayed DDL brings the destination up to date;
/// a table created after the start is created by its replayed CREATE TABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_before_a_schema_change_uses_the_schema_in_force_there() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let db = unique_name("ppast");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let (mut d, then) = (
        dest_conn().await?,
        format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, f_1 INT, f_2 VARCHAR(10)); \
             INSERT INTO {db}.t VALUES (1, 1, 'a'), (2, 2, 'b')"
        ),
    );
    c.query_drop(&then).await?;
    d.query_drop(&then).await?;
    let (file, offset) = sluice_source_mysql::live::current_position(&mut c).await?;
    for sql in [
        format!("INSERT INTO {db}.t VALUES (3, 3, 'c')"),
        format!("ALTER TABLE {db}.t ADD COLUMN f_3 INT NOT NULL DEFAULT 7"),
        format!("INSERT INTO {db}.t VALUES (4, 4, 'd', 44)"),
        format!("UPDATE {db}.t SET f_3 = 11 WHERE id = 1"),
        format!("CREATE TABLE {db}.later (id INT PRIMARY KEY, v VARCHAR(5))"),
        format!("INSERT INTO {db}.later VALUES (1, 'x')"),
        format!("ALTER TABLE {db}.t ADD COLUMN f_4 VARCHAR(3)"),
        format!("INSERT INTO {db}.t VALUES (5, 5, 'e', 55, 'f4')"),
    ] {
        c.query_drop(sql).await?;
    }
    let project = db_project(&dir, &db, &format!("  include: [\"{db}.*\"]"), "")
        .to_string_lossy()
        .to_string();
    let yaml = std::fs::read_to_string(&project)?.replace(
        "  full: true\n",
        &format!("  full: false\n  start: \"{file}:{offset}\"\n"),
    );
    std::fs::write(&project, yaml)?;
    run_until_caught_up(Path::new(&project))?;
    same_tables(&db).await?;
    drop_dbs(&[&db]).await
}
