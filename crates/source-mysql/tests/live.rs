//! Capture from the harness's real MariaDB. The oracle for every value is the server itself:
//! each captured value must equal the server's own rendering read back by `SELECT`.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};
use serde_json::Value as Json;
use sluice_core::render::event_to_json;
use sluice_core::Event;
use sluice_source_mysql::decode::SchemaHistory;
use sluice_source_mysql::live::{self, current_position, LiveConfig, LiveError, StartAt};
use sluice_testkit::{ensure_up, unique_name, Service, MARIADB};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn opts() -> Opts {
    Opts::from_url(&format!("mysql://root@{}", MARIADB.get())).expect("harness URL")
}

async fn connect() -> Result<Conn, mysql_async::Error> {
    let mut c = Conn::new(opts()).await?;
    // Zero dates allowed; TIMESTAMP read back in UTC to compare with the captured UTC form.
    c.query_drop("SET SESSION sql_mode = '', time_zone = '+00:00'")
        .await?;
    Ok(c)
}

/// Captures from `start` until `want` row/DDL events of database `db` were seen (or 60 s).
async fn capture(db: &str, start: StartAt, want: usize) -> Result<Vec<Json>, LiveError> {
    capture_with(db, start, want, &mut SchemaHistory::new()).await
}

/// [`capture`] continuing from (and growing) a schema history.
async fn capture_with(
    db: &str,
    start: StartAt,
    want: usize,
    history: &mut SchemaHistory,
) -> Result<Vec<Json>, LiveError> {
    let cfg = LiveConfig {
        endpoint: sluice_mysql_client::Endpoint::from_opts(opts()),
        server_id: 1_000_000 + (std::process::id() % 1_000_000),
        start,
        heartbeat: Duration::from_secs(1),
        reconnect_for: Duration::from_secs(60),
        precheck_tables: Vec::new(),
    };
    let mut got = Vec::new();
    let read = live::read(&cfg, history, |e: Event| {
        if let Some(j) = event_to_json(&e) {
            if j["db"] == db {
                got.push(j);
            }
        }
        if got.len() >= want {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(Ok(()))
        }
    });
    match tokio::time::timeout(Duration::from_secs(60), read).await {
        Ok(r) => r?,
        Err(_) => panic!(
            "only {} of {want} events of {db} captured in 60 s: {got:#?}",
            got.len()
        ),
    }
    Ok(got)
}

/// Columns of the type matrix: (name, SQL type, oracle expression rendering the value the way
/// the native JSON shows it, as text).
const COLUMNS: &[(&str, &str, &str)] = &[
    ("ti", "TINYINT", "CAST(ti AS CHAR)"),
    ("tiu", "TINYINT UNSIGNED", "CAST(tiu AS CHAR)"),
    ("si", "SMALLINT", "CAST(si AS CHAR)"),
    ("siu", "SMALLINT UNSIGNED", "CAST(siu AS CHAR)"),
    ("mi", "MEDIUMINT", "CAST(mi AS CHAR)"),
    ("miu", "MEDIUMINT UNSIGNED", "CAST(miu AS CHAR)"),
    ("i", "INT", "CAST(i AS CHAR)"),
    ("iu", "INT UNSIGNED", "CAST(iu AS CHAR)"),
    ("bi", "BIGINT", "CAST(bi AS CHAR)"),
    ("biu", "BIGINT UNSIGNED", "CAST(biu AS CHAR)"),
    ("dec1", "DECIMAL(5,2)", "CAST(dec1 AS CHAR)"),
    ("dec2", "DECIMAL(65,30)", "CAST(dec2 AS CHAR)"),
    ("decu", "DECIMAL(20,0) UNSIGNED", "CAST(decu AS CHAR)"),
    ("c", "CHAR(10) CHARACTER SET utf8mb4", "c"),
    ("vc", "VARCHAR(100) CHARACTER SET utf8mb4", "vc"),
    ("tx", "TEXT CHARACTER SET utf8mb4", "tx"),
    ("vbin", "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "vbin"),
    ("vl", "VARCHAR(50) CHARACTER SET latin1", "vl"),
    ("vg", "VARCHAR(50) CHARACTER SET gbk", "vg"),
    ("va", "VARCHAR(20) CHARACTER SET ascii", "va"),
    ("u3", "VARCHAR(20) CHARACTER SET utf8mb3", "u3"),
    ("b", "BINARY(4)", "REPLACE(TO_BASE64(b), CHAR(10), '')"),
    ("vb", "VARBINARY(20)", "REPLACE(TO_BASE64(vb), CHAR(10), '')"),
    ("bl", "BLOB", "REPLACE(TO_BASE64(bl), CHAR(10), '')"),
    ("dt", "DATE", "CAST(dt AS CHAR)"),
    ("dtt", "DATETIME", "CAST(dtt AS CHAR)"),
    ("dt3", "DATETIME(3)", "CAST(dt3 AS CHAR)"),
    ("dt6", "DATETIME(6)", "CAST(dt6 AS CHAR)"),
    ("tm", "TIME", "CAST(tm AS CHAR)"),
    ("tm1", "TIME(1)", "CAST(tm1 AS CHAR)"),
    ("tm6", "TIME(6)", "CAST(tm6 AS CHAR)"),
    (
        "ts",
        "TIMESTAMP NULL",
        "IF(UNIX_TIMESTAMP(ts) = 0, CAST(ts AS CHAR), CONCAT(REPLACE(CAST(ts AS CHAR), ' ', 'T'), 'Z'))",
    ),
    (
        "ts6",
        "TIMESTAMP(6) NULL",
        "IF(UNIX_TIMESTAMP(ts6) = 0, CAST(ts6 AS CHAR), CONCAT(REPLACE(CAST(ts6 AS CHAR), ' ', 'T'), 'Z'))",
    ),
    ("y", "YEAR", "CAST(y + 0 AS CHAR)"),
    ("bt1", "BIT(1)", "CAST(bt1 + 0 AS CHAR)"),
    ("bt64", "BIT(64)", "CAST(bt64 + 0 AS CHAR)"),
    ("e", "ENUM('a','b','ü')", "CAST(e AS CHAR)"),
    ("st", "SET('a','b','c')", "CAST(st AS CHAR)"),
    ("j", "JSON", "j"),
    ("g", "GEOMETRY", "CONCAT(ST_SRID(g), ':', REPLACE(TO_BASE64(ST_AsWKB(g)), CHAR(10), ''))"),
    ("f", "FLOAT", "f"),
    ("d", "DOUBLE", "d"),
];

const ROWS: &[&str] = &[
    // Minima, zero dates, empty strings.
    "(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, -999.99,
      -99999999999999999999999999999999999.999999999999999999999999999999, 0,
      '', '', '', '', '', '', '', '', x'00000000', x'', x'', '0000-00-00', '0000-00-00 00:00:00',
      '0000-00-00 00:00:00.000', '0000-00-00 00:00:00.000000', '-838:59:59', '-838:59:59.0',
      '-838:59:59.000000', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000000', 0, b'0', b'0', '', '',
      '[]', ST_GeomFromText('POINT(0 0)'), -3.40282e38, -1.7976931348623157e308)",
    // Maxima.
    "(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807,
      18446744073709551615, 999.99,
      99999999999999999999999999999999999.999999999999999999999999999999, 99999999999999999999,
      'ZZZZZZZZZZ', REPEAT('y', 100), REPEAT('x', 1000), 'Zz', 'ÿ', '中文', '~', 'ü', x'ffffffff',
      x'ffffffffffffffffffff', x'00ff00ff', '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999',
      '9999-12-31 23:59:59.999999', '838:59:59', '838:59:59.9', '838:59:59.000000',
      '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999', 2155, b'1', x'ffffffffffffffff', 'ü', 'a,b,c',
      '{\"a\":{\"b\":[1,2,{\"c\":null}]},\"n\":1.5e300}', ST_GeomFromText('LINESTRING(1 2, 3 4)', 4326),
      3.40282e38, 1.7976931348623157e308)",
    // NULL in every column.
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    // Everyday values: multibyte, emoji, fractions of every width.
    "(4, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, 1.5, 0.000000000000000000000000000001, 1,
      'héllo', 'Grüße 🐬 你好', 'line1\\nline2\\t\"quoted\" \\\\ back', 'Case', 'café €', '简体', 'plain',
      'ŝ', x'01020304', x'00', x'deadbeef', '2024-02-29', '2024-02-29 12:34:56', '2024-02-29 12:34:56.789',
      '2024-02-29 12:34:56.000001', '-00:00:01', '12:00:00.5', '-12:34:56.654321',
      '2001-09-09 01:46:40', '1970-01-01 00:00:01.000001', 1901, b'1', b'101', 'b', 'a,c',
      '{\"emoji\":\"🐬\",\"arr\":[true,false,null,-0.5]}', ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'),
      0.1, 0.1)",
];

async fn oracle(conn: &mut Conn, db: &str) -> Result<BTreeMap<i32, Vec<Json>>, mysql_async::Error> {
    let exprs: Vec<&str> = COLUMNS.iter().map(|(_, _, e)| *e).collect();
    // The binary protocol gives FLOAT and DOUBLE as their exact binary values.
    let rows: Vec<Row> = conn
        .exec(
            format!("SELECT id, {} FROM {db}.t ORDER BY id", exprs.join(", ")),
            (),
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let id: i32 = row.get(0).unwrap_or_default();
        let mut vals = Vec::new();
        for (k, (name, _, _)) in COLUMNS.iter().enumerate() {
            let v: mysql_async::Value = row.get(k + 1).unwrap_or(mysql_async::Value::NULL);
            vals.push(match (v, *name) {
                (mysql_async::Value::NULL, _) => Json::Null,
                (mysql_async::Value::Float(f), _) => {
                    Json::String(format!("f32:{:08x}", f.to_bits()))
                }
                (mysql_async::Value::Double(f), _) => {
                    Json::String(format!("f64:{:016x}", f.to_bits()))
                }
                (mysql_async::Value::Bytes(b), "j") => {
                    serde_json::from_slice(&b).unwrap_or(Json::Null)
                }
                (mysql_async::Value::Bytes(b), _) => {
                    Json::String(String::from_utf8_lossy(&b).into_owned())
                }
                (other, _) => Json::String(format!("{other:?}")),
            });
        }
        out.insert(id, vals);
    }
    Ok(out)
}

/// A captured value in the oracle's text form.
fn as_oracle_text(name: &str, v: &Json) -> Json {
    match (name, v) {
        (_, Json::Null) => Json::Null,
        ("j", v) => v.clone(),
        // Captured numbers must read back to the very same binary value.
        ("f", Json::Number(n)) => Json::String(format!(
            "f32:{:08x}",
            n.to_string().parse::<f32>().map(f32::to_bits).unwrap_or(0)
        )),
        ("d", Json::Number(n)) => Json::String(format!(
            "f64:{:016x}",
            n.as_f64().map(f64::to_bits).unwrap_or(0)
        )),
        ("g", Json::Object(m)) => {
            Json::String(format!("{}:{}", m["srid"], m["wkb"].as_str().unwrap_or("")))
        }
        (_, Json::Number(n)) => Json::String(n.to_string()),
        (_, v) => v.clone(),
    }
}

fn check_image(what: &str, image: &Json, expected: &[Json]) {
    for ((name, _, _), want) in COLUMNS.iter().zip(expected) {
        let got = as_oracle_text(name, &image[*name]);
        assert_eq!(
            &got, want,
            "{what}: column {name}: captured {} but the server shows {want}",
            image[*name]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_is_captured_exactly_as_the_server_shows_it() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let db = unique_name("types");
    let mut conn = connect().await?;
    let cols: Vec<String> = COLUMNS.iter().map(|(n, t, _)| format!("{n} {t}")).collect();
    conn.query_drop(format!("CREATE DATABASE {db}")).await?;
    conn.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, {}) CHARACTER SET utf8mb4",
        cols.join(", ")
    ))
    .await?;
    let (file, offset) = current_position(&mut conn).await?;
    for row in ROWS {
        conn.query_drop(format!("INSERT INTO {db}.t VALUES {row}"))
            .await?;
    }
    let inserted = oracle(&mut conn, &db).await?;
    conn.query_drop(format!(
        "UPDATE {db}.t SET vc = 'changed ✓', dt6 = '2000-01-01 00:00:00.5', j = '{{\"k\":[1]}}', biu = 42, \
         e = 'a', st = '', bt64 = b'1' WHERE id = 4"
    ))
    .await?;
    let updated = oracle(&mut conn, &db).await?;
    conn.query_drop(format!("DELETE FROM {db}.t WHERE id = 2"))
        .await?;

    let events = capture(&db, StartAt::FileOffset { file, offset }, ROWS.len() + 2).await?;
    let inserts: Vec<&Json> = events.iter().filter(|e| e["op"] == "insert").collect();
    assert_eq!(inserts.len(), ROWS.len(), "{events:#?}");
    for ins in inserts {
        let id = ins["after"]["id"].as_i64().ok_or("id")? as i32;
        check_image(&format!("insert of id {id}"), &ins["after"], &inserted[&id]);
        assert_eq!(ins["before"], Json::Null);
        assert_eq!(ins["pk"], serde_json::json!(["id"]));
        assert_eq!(ins["table"], "t");
    }
    let upd = events
        .iter()
        .find(|e| e["op"] == "update")
        .ok_or("no update")?;
    check_image("update before", &upd["before"], &inserted[&4]);
    check_image("update after", &upd["after"], &updated[&4]);
    let del = events
        .iter()
        .find(|e| e["op"] == "delete")
        .ok_or("no delete")?;
    check_image("delete before", &del["before"], &updated[&2]);
    assert_eq!(del["after"], Json::Null);
    conn.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_around_ddl_decode_with_the_schema_in_force_at_their_position() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let db = unique_name("ddl");
    let mut conn = connect().await?;
    conn.query_drop(format!("CREATE DATABASE {db}")).await?;
    // DDL events carry the session's default database.
    conn.query_drop(format!("USE {db}")).await?;
    let (file, offset) = current_position(&mut conn).await?;
    for sql in [
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, a VARCHAR(10))",
        "INSERT INTO {db}.t VALUES (1, 'one')",
        "ALTER TABLE {db}.t ADD COLUMN b INT DEFAULT 7",
        "INSERT INTO {db}.t VALUES (2, 'two', 2)",
        "ALTER TABLE {db}.t RENAME COLUMN a TO a2",
        "ALTER TABLE {db}.t MODIFY COLUMN b BIGINT",
        "INSERT INTO {db}.t VALUES (3, 'three', 3000000000)",
        "ALTER TABLE {db}.t DROP COLUMN a2",
        "INSERT INTO {db}.t VALUES (4, 4)",
        "RENAME TABLE {db}.t TO {db}.t2",
        "INSERT INTO {db}.t2 VALUES (5, 5)",
        "DROP TABLE {db}.t2",
        "CREATE TABLE {db}.t2 (id INT PRIMARY KEY, z DATE)",
        "INSERT INTO {db}.t2 VALUES (6, '2020-01-01')",
    ] {
        conn.query_drop(sql.replace("{db}", &db)).await?;
    }
    // Read it all (14 statements: 8 DDL + 6 inserts), starting before the first DDL.
    let events = capture(&db, StartAt::FileOffset { file, offset }, 14).await?;
    let rows: Vec<&Json> = events.iter().filter(|e| e["op"] == "insert").collect();
    let after = |i: usize| rows[i]["after"].clone();
    assert_eq!(after(0), serde_json::json!({"id": 1, "a": "one"}));
    assert_eq!(after(1), serde_json::json!({"id": 2, "a": "two", "b": 2}));
    assert_eq!(
        after(2),
        serde_json::json!({"id": 3, "a2": "three", "b": 3000000000_i64})
    );
    assert_eq!(after(3), serde_json::json!({"id": 4, "b": 4}));
    assert_eq!(rows[4]["table"], "t2");
    assert_eq!(after(5), serde_json::json!({"id": 6, "z": "2020-01-01"}));
    let ddls: Vec<&str> = events
        .iter()
        .filter(|e| e["op"] == "ddl")
        .filter_map(|e| e["ddl"].as_str())
        .collect();
    assert_eq!(ddls.len(), 8, "{ddls:#?}");
    assert!(ddls[1].contains("ADD COLUMN b"), "{ddls:#?}");
    conn.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_map_the_schema_history_disagrees_with_stops_capture() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let db = unique_name("hist");
    let mut conn = connect().await?;
    conn.query_drop(format!("CREATE DATABASE {db}")).await?;
    conn.query_drop(format!("USE {db}")).await?;
    let (file, offset) = current_position(&mut conn).await?;
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
        .await?;
    conn.query_drop("INSERT INTO t VALUES (1, 'one')").await?;
    // First run: learns t from its CREATE TABLE.
    let mut history = SchemaHistory::new();
    let first = capture_with(
        &db,
        StartAt::FileOffset {
            file: file.clone(),
            offset,
        },
        2,
        &mut history,
    )
    .await?;
    assert_eq!(first[1]["after"], serde_json::json!({"id": 1, "v": "one"}));
    assert_eq!(first[1]["pk"], serde_json::json!(["id"]));

    // A DDL the history never sees (capture resumes after it), then a row.
    conn.query_drop("ALTER TABLE t ADD COLUMN w INT").await?;
    let (file2, offset2) = current_position(&mut conn).await?;
    conn.query_drop("INSERT INTO t VALUES (2, 'two', 2)")
        .await?;
    let err = capture_with(
        &db,
        StartAt::FileOffset {
            file: file2,
            offset: offset2,
        },
        1,
        &mut history,
    )
    .await
    .expect_err("a row must not be decoded with a schema the history contradicts");
    let msg = err.to_string();
    assert!(
        msg.contains("disagrees with the schema history")
            && msg.contains("3 columns vs 2")
            && msg.contains(&format!("`{db}`.`t`")),
        "{msg}"
    );

    // Read from before the DDL with the same history: the DDL is learnt, the row decodes.
    let mut history = SchemaHistory::new();
    let all = capture_with(&db, StartAt::FileOffset { file, offset }, 4, &mut history).await?;
    assert_eq!(
        all[3]["after"],
        serde_json::json!({"id": 2, "v": "two", "w": 2})
    );
    conn.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_a_file_offset_or_a_gtid_gives_exactly_what_follows() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let db = unique_name("resume");
    let mut conn = connect().await?;
    conn.query_drop(format!("CREATE DATABASE {db}")).await?;
    conn.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)"))
        .await?;
    let (file, offset) = current_position(&mut conn).await?;
    for i in 1..=10 {
        conn.query_drop(format!("INSERT INTO {db}.t VALUES ({i}, {i})"))
            .await?;
    }
    let all = capture(
        &db,
        StartAt::FileOffset {
            file: file.clone(),
            offset,
        },
        10,
    )
    .await?;
    // Positions name the real file (no checksum bytes from the artificial rotate): this one,
    // or a later one when another test rotated the log between the position and the inserts.
    let first = all[0]["pos"]["file"].as_str().unwrap_or_default();
    assert!(
        first == file
            || (first.len() == file.len()
                && first > file.as_str()
                && first.starts_with("mariadb-bin.")
                && first["mariadb-bin.".len()..]
                    .bytes()
                    .all(|b| b.is_ascii_digit())),
        "{first} after {file}"
    );
    let ids: Vec<i64> = all
        .iter()
        .filter_map(|e| e["after"]["id"].as_i64())
        .collect();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());

    // Resume after the 4th transaction by its GTID: exactly the 5th..10th follow.
    let fourth_gtid = all[3]["txn"].as_str().ok_or("gtid")?.to_string();
    let by_gtid = capture(&db, StartAt::MariadbGtid(fourth_gtid), 6).await?;
    let ids: Vec<i64> = by_gtid
        .iter()
        .filter_map(|e| e["after"]["id"].as_i64())
        .collect();
    assert_eq!(ids, (5..=10).collect::<Vec<_>>(), "resume by GTID");
    conn.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test]
async fn a_purged_start_file_names_the_earliest_available() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let cfg = LiveConfig {
        endpoint: sluice_mysql_client::Endpoint::from_opts(opts()),
        server_id: 2_000_000 + (std::process::id() % 1_000_000),
        start: StartAt::FileOffset {
            file: "mariadb-bin.000000".into(),
            offset: 4,
        },
        heartbeat: Duration::from_secs(1),
        reconnect_for: Duration::from_secs(5),
        precheck_tables: Vec::new(),
    };
    let err = live::read(&cfg, &mut SchemaHistory::new(), |_| ControlFlow::Break(()))
        .await
        .expect_err("a purged file must fail");
    let msg = err.to_string();
    assert!(msg.contains("mariadb-bin.000000 was purged"), "{msg}");
    assert!(
        msg.contains("the earliest available is mariadb-bin."),
        "{msg}"
    );
    assert!(msg.contains("run a full sync"), "{msg}");
    Ok(())
}

#[tokio::test]
async fn a_start_file_newer_than_any_is_not_called_purged() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let cfg = LiveConfig {
        endpoint: sluice_mysql_client::Endpoint::from_opts(opts()),
        server_id: 3_000_000 + (std::process::id() % 1_000_000),
        start: StartAt::FileOffset {
            file: "mariadb-bin.999999".into(),
            offset: 4,
        },
        heartbeat: Duration::from_secs(1),
        reconnect_for: Duration::from_secs(5),
        precheck_tables: Vec::new(),
    };
    let msg = live::read(&cfg, &mut SchemaHistory::new(), |_| ControlFlow::Break(()))
        .await
        .expect_err("must fail")
        .to_string();
    assert!(
        msg.contains("mariadb-bin.999999 does not exist on the source; the newest is mariadb-bin."),
        "{msg}"
    );
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_name_the_fix() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let cfg = LiveConfig {
        endpoint: sluice_mysql_client::Endpoint::from_opts(Opts::from_url(&format!(
            "mysql://nobody:wrong@{}",
            MARIADB.get()
        ))?),
        server_id: 3_100_000,
        start: StartAt::Now,
        heartbeat: Duration::from_secs(1),
        reconnect_for: Duration::from_secs(5),
        precheck_tables: Vec::new(),
    };
    let msg = live::read(&cfg, &mut SchemaHistory::new(), |_| ControlFlow::Break(()))
        .await
        .expect_err("must fail")
        .to_string();
    assert!(
        msg.contains("connect failed; check the user name and password"),
        "{msg}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_and_a_rotation_mid_stream_lose_nothing() -> TestResult {
    let mut server = sluice_testkit::TempMariadb::start(&[
        "log_bin=mariadb-bin",
        "server_id=77",
        "binlog_format=ROW",
        "binlog_row_image=FULL",
        "binlog_row_metadata=FULL",
        "gtid_strict_mode=ON",
    ])?;
    let url = format!("mysql://root@{}", server.addr);
    let mut conn = Conn::new(Opts::from_url(&url)?).await?;
    conn.query_drop("CREATE DATABASE r").await?;
    conn.query_drop("CREATE TABLE r.t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await?;
    let (file, offset) = current_position(&mut conn).await?;
    drop(conn);

    let cfg = LiveConfig {
        endpoint: sluice_mysql_client::Endpoint::from_opts(Opts::from_url(&url)?),
        server_id: 4242,
        start: StartAt::FileOffset { file, offset },
        heartbeat: Duration::from_secs(1),
        reconnect_for: Duration::from_secs(60),
        precheck_tables: Vec::new(),
    };
    const N: i64 = 60;
    let reader = tokio::spawn(async move {
        let mut ids: Vec<i64> = Vec::new();
        let r = live::read(&cfg, &mut SchemaHistory::new(), |e: Event| {
            if let Some(j) = event_to_json(&e) {
                if let Some(id) = j["after"]["id"].as_i64() {
                    ids.push(id);
                }
            }
            if ids.last() == Some(&N) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(Ok(()))
            }
        })
        .await;
        (r, ids)
    });

    let mut conn = Conn::new(Opts::from_url(&url)?).await?;
    for i in 1..=N {
        if i == 20 {
            conn.query_drop("FLUSH BINARY LOGS").await?;
        }
        if i == 40 {
            drop(conn);
            tokio::task::block_in_place(|| server.restart())?;
            conn = Conn::new(Opts::from_url(&url)?).await?;
        }
        conn.query_drop(format!("INSERT INTO r.t VALUES ({i}, 'v{i}')"))
            .await?;
    }
    let (result, ids) = tokio::time::timeout(Duration::from_secs(90), reader).await??;
    result?;
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(
        unique,
        (1..=N).collect::<Vec<_>>(),
        "every insert exactly in order: {ids:?}"
    );
    // Only a transaction open at the drop may be seen twice (each insert is one transaction).
    assert!(
        ids.len() - unique.len() <= 1,
        "more repeats than the last open transaction: {ids:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_reads_every_type_as_the_server_shows_it_and_as_the_binlog_decodes_it(
) -> TestResult {
    use sluice_source_mysql::snapshot::{self, KeyRange};
    ensure_up(&[Service::Mariadb]);
    let db = unique_name("snap");
    let mut conn = connect().await?;
    let cols: Vec<String> = COLUMNS.iter().map(|(n, t, _)| format!("{n} {t}")).collect();
    conn.query_drop(format!("CREATE DATABASE {db}")).await?;
    conn.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, {}) CHARACTER SET utf8mb4",
        cols.join(", ")
    ))
    .await?;
    let (file, offset) = current_position(&mut conn).await?;
    for row in ROWS {
        conn.query_drop(format!("INSERT INTO {db}.t VALUES {row}"))
            .await?;
    }
    let oracle_rows = oracle(&mut conn, &db).await?;
    let captured = capture(&db, StartAt::FileOffset { file, offset }, ROWS.len()).await?;

    // Read in chunks of 3 rows (pagination by key across chunk boundaries).
    let mut reader = Conn::new(opts()).await?;
    snapshot::prepare_session(&mut reader).await?;
    let id = sluice_core::TableId::new(db.as_str(), "t");
    let table = snapshot::table(&mut reader, &id, None).await?;
    assert_eq!(table.schema.primary_key_names(), vec!["id"]);
    let mut after = None;
    let mut rows = Vec::new();
    loop {
        let chunk = snapshot::read_chunk(
            &mut reader,
            &table.schema,
            &KeyRange::default(),
            after.as_deref(),
            3,
        )
        .await?;
        let n = chunk.rows.len();
        rows.extend(chunk.rows);
        after = chunk.last_key.or(after);
        if n < 3 {
            break;
        }
    }
    assert_eq!(rows.len(), ROWS.len());
    for row in rows {
        let change = sluice_core::RowChange {
            op: sluice_core::Op::Insert,
            table: std::sync::Arc::new(table.schema.clone()),
            before: None,
            after: Some(row),
            ts_ms: 0,
            txn: String::new(),
            seq: 0,
            pos: sluice_core::Position::new("binlog", String::new(), 0),
        };
        let j = event_to_json(&Event::Row(change)).ok_or("no rendering")?;
        let id = j["after"]["id"].as_i64().ok_or("id")? as i32;
        check_image(
            &format!("full-sync row {id}"),
            &j["after"],
            &oracle_rows[&id],
        );
        let binlog = captured
            .iter()
            .find(|e| e["after"]["id"] == id)
            .ok_or("no captured insert")?;
        assert_eq!(j["after"], binlog["after"], "row {id}: full sync vs binlog");
    }
    conn.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test]
async fn a_mysql_gtid_set_against_mariadb_names_the_right_form() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let set = "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5".to_string();
    let err = capture("nothing", StartAt::MysqlGtidSet(set), 1)
        .await
        .expect_err("a MySQL GTID set on MariaDB");
    let msg = err.to_string();
    assert!(
        msg.contains("is a MySQL GTID set, but the source is MariaDB")
            && msg.contains("gtid:0-1-42"),
        "{msg}"
    );
    Ok(())
}
