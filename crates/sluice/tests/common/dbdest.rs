//! Helpers of the database-destination tests: test names, projects into a database, the
//! type matrix and its rendering as text.

use super::*;
use sluice_testkit::MARIADB;

/// A test's source database, its copy's name at the destination, and its data directory.
pub fn names(prefix: &str) -> (String, String, PathBuf) {
    let db = unique_name(prefix);
    let dir = temp_dir(&db);
    (db.clone(), format!("{db}_copy"), dir)
}

/// Drops the copy at the destination and the source database.
pub async fn drop_both(
    c: &mut mysql_async::Conn,
    d: &mut mysql_async::Conn,
    db: &str,
    dest_db: &str,
) -> TestResult {
    d.query_drop(format!("DROP DATABASE {dest_db}")).await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

pub async fn dest_conn(addr: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&format!(
        "mysql://root@{addr}"
    ))?)
    .await
}

/// A project from the source database `db` into `dest_db` at `dest` (type `kind`).
pub fn db_project(dir: &Path, db: &str, dest_db: &str, kind: &str, dest: &str) -> PathBuf {
    let yaml = format!(
        "name: {db}
source:
  type: mariadb
  url: mysql://root@{mariadb}
  server_id: {sid}
destination:
  type: {kind}
  url: mysql://root@{dest}
  writers: 3
objects:
  include: [\"{db}.*\"]
  rename:
    {db}.t: {dest_db}.t
stages:
  full: true
options:
  ddl: false
  heartbeat_secs: 1
  full_chunk_rows: 400
  full_readers: 2
",
        mariadb = MARIADB.get(),
        sid = 3_100_000 + std::process::id() % 1_000_000,
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

/// The type matrix of the capture tests: (name, SQL type, expression rendering it as text).
pub const TYPES: &[(&str, &str, &str)] = &[
    ("ti", "TINYINT", "CAST(ti AS CHAR)"),
    ("tiu", "TINYINT UNSIGNED", "CAST(tiu AS CHAR)"),
    ("si", "SMALLINT", "CAST(si AS CHAR)"),
    ("mi", "MEDIUMINT", "CAST(mi AS CHAR)"),
    ("miu", "MEDIUMINT UNSIGNED", "CAST(miu AS CHAR)"),
    ("i", "INT", "CAST(i AS CHAR)"),
    ("bi", "BIGINT", "CAST(bi AS CHAR)"),
    ("biu", "BIGINT UNSIGNED", "CAST(biu AS CHAR)"),
    ("dec1", "DECIMAL(5,2)", "CAST(dec1 AS CHAR)"),
    ("dec2", "DECIMAL(65,30)", "CAST(dec2 AS CHAR)"),
    ("c", "CHAR(10) CHARACTER SET utf8mb4", "c"),
    ("vc", "VARCHAR(100) CHARACTER SET utf8mb4", "vc"),
    ("tx", "TEXT CHARACTER SET utf8mb4", "tx"),
    (
        "vbin",
        "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        "vbin",
    ),
    ("vl", "VARCHAR(50) CHARACTER SET latin1", "vl"),
    ("vg", "VARCHAR(50) CHARACTER SET gbk", "vg"),
    ("b", "BINARY(4)", "HEX(b)"),
    ("vb", "VARBINARY(20)", "HEX(vb)"),
    ("bl", "BLOB", "HEX(bl)"),
    ("dt", "DATE", "CAST(dt AS CHAR)"),
    ("dt6", "DATETIME(6)", "CAST(dt6 AS CHAR)"),
    ("tm", "TIME", "CAST(tm AS CHAR)"),
    ("tm6", "TIME(6)", "CAST(tm6 AS CHAR)"),
    ("ts6", "TIMESTAMP(6) NULL", "CAST(ts6 AS CHAR)"),
    ("y", "YEAR", "CAST(y + 0 AS CHAR)"),
    ("bt64", "BIT(64)", "CAST(bt64 + 0 AS CHAR)"),
    ("e", "ENUM('a','b','ü')", "CAST(e AS CHAR)"),
    ("st", "SET('a','b','c')", "CAST(st AS CHAR)"),
    ("j", "JSON", "j"),
    ("g", "GEOMETRY", "HEX(ST_AsWKB(g))"),
    ("f", "FLOAT", "f"),
    ("d", "DOUBLE", "d"),
];

pub const TYPE_ROWS: &[&str] = &[
    "(1, -128, 0, -32768, -8388608, 0, -2147483648, -9223372036854775808, 0, -999.99,
      -99999999999999999999999999999999999.999999999999999999999999999999,
      '', '', '', '', '', '', x'00000000', x'', x'', '1000-01-01', '1000-01-01 00:00:00.000000',
      '-838:59:59', '-838:59:59.000000', '1970-01-01 00:00:01.000000', 1901, b'0', 'a', '',
      '[]', ST_GeomFromText('POINT(0 0)'), -3.40282e38, -1.7976931348623157e308)",
    "(2, 127, 255, 32767, 8388607, 16777215, 2147483647, 9223372036854775807, 18446744073709551615, 999.99,
      99999999999999999999999999999999999.999999999999999999999999999999,
      'ZZZZZZZZZZ', REPEAT('y', 100), REPEAT('x', 1000), 'Zz', 'ÿ', '中文', x'ffffffff',
      x'ffffffffffffffffffff', x'00ff00ff', '9999-12-31', '9999-12-31 23:59:59.999999', '838:59:59',
      '838:59:59.000000', '2038-01-19 03:14:07.999999', 2155, x'ffffffffffffffff', 'ü', 'a,b,c',
      '{\"a\":{\"b\":[1,2,{\"c\":null}]},\"n\":1.5}', ST_GeomFromText('LINESTRING(1 2, 3 4)'),
      3.40282e38, 1.7976931348623157e308)",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(4, -1, 1, -1, -1, 1, -1, -1, 1, 1.5, 0.000000000000000000000000000001,
      'héllo', 'Grüße 🐬 你好', 'line1\\nline2\\t\"quoted\"', 'Case', 'café €', '简体', x'01020304', x'00',
      x'deadbeef', '2024-02-29', '2024-02-29 12:34:56.000001', '-00:00:01', '-12:34:56.654321',
      '2001-09-09 01:46:40.5', 2000, b'101', 'b', 'a,c',
      '{\"emoji\":\"🐬\",\"arr\":[true,false,null,-0.5]}', ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'),
      0.1, 0.1)",
    // Zero dates and the zero timestamp, as MariaDB and seekdb both keep them outside strict mode.
    "(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, '0000-00-00', '0000-00-00 00:00:00.000000', NULL, NULL, '0000-00-00 00:00:00.000000',
      0, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
];

/// Every column rendered as text (floats by their bits, JSON parsed), by id.
pub async fn rendered(
    c: &mut mysql_async::Conn,
    db: &str,
    skip: &[&str],
) -> Result<BTreeMap<i64, Vec<(String, Json)>>, mysql_async::Error> {
    c.query_drop("SET SESSION time_zone = '+00:00'").await?;
    let cols: Vec<&(&str, &str, &str)> = TYPES.iter().filter(|(n, ..)| !skip.contains(n)).collect();
    let exprs: Vec<&str> = cols.iter().map(|(_, _, e)| *e).collect();
    let rows: Vec<mysql_async::Row> = c
        .exec(
            format!("SELECT id, {} FROM {db}.t ORDER BY id", exprs.join(", ")),
            (),
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let id: i64 = row.get(0).unwrap_or_default();
        let mut vals = Vec::new();
        for (k, (name, _, _)) in cols.iter().enumerate() {
            let v: mysql_async::Value = row.get(k + 1).unwrap_or(mysql_async::Value::NULL);
            let j = match (v, *name) {
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
            };
            vals.push((name.to_string(), j));
        }
        out.insert(id, vals);
    }
    Ok(out)
}

/// Creates `db`.t with a column of every type of [`TYPES`] and inserts `rows` of
/// [`TYPE_ROWS`] (outside strict mode, so the zero dates go in).
pub async fn type_table(c: &mut mysql_async::Conn, db: &str, rows: &[&str]) -> TestResult {
    c.query_drop("SET SESSION sql_mode = ''").await?;
    let cols: Vec<String> = TYPES.iter().map(|(n, t, _)| format!("{n} {t}")).collect();
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, {}) CHARACTER SET utf8mb4",
        cols.join(", ")
    ))
    .await?;
    for row in rows {
        c.query_drop(format!("INSERT INTO {db}.t VALUES {row}"))
            .await?;
    }
    Ok(())
}

/// Asserts that the destination holds `rows` rows and that every value of the source's
/// rendering (`want`) is the same at the destination (`got`).
pub fn same_values(
    kind: &str,
    want: &BTreeMap<i64, Vec<(String, Json)>>,
    got: &BTreeMap<i64, Vec<(String, Json)>>,
    rows: usize,
) {
    assert_eq!(got.len(), rows, "{kind}: rows at the destination");
    for (id, cols) in want {
        for ((name, w), (_, g)) in cols.iter().zip(&got[id]) {
            assert_eq!(g, w, "{kind}: row {id} column {name}");
        }
    }
}
