//! PostgreSQL as the source (logical replication with pgoutput): the type matrix reaches
//! Kafka (read back by an independent consumer) and MariaDB (the database destination)
//! value for value, compared with PostgreSQL's own text rendering of each value through the
//! documented map (docs/POSTGRES.md); full sync and incremental sync both. Schema changes,
//! keyless tables, TOAST, row filters, and RocketMQ and DataHub as destinations. The
//! operational tests (kill -9, a restarted server, prechecks, the service) are in
//! postgres_ops.rs.

mod common;

use common::dbdest::dest_conn;
use common::pg::*;
use common::*;

/// The type matrix: column, type, and how a value compares (see [`norm`]).
const TYPES: &[(&str, &str, Cmp)] = &[
    ("c_smallint", "smallint", Cmp::Same),
    ("c_int", "integer", Cmp::Same),
    ("c_bigint", "bigint", Cmp::Same),
    ("c_numeric", "numeric(12,4)", Cmp::Same),
    ("c_numeric_any", "numeric", Cmp::Same),
    ("c_real", "real", Cmp::F32),
    ("c_double", "double precision", Cmp::F64),
    ("c_text", "text", Cmp::Same),
    ("c_varchar", "varchar(20)", Cmp::Same),
    ("c_char", "char(5)", Cmp::Same),
    ("c_bytea", "bytea", Cmp::Bytes),
    ("c_bool", "boolean", Cmp::Bool),
    ("c_date", "date", Cmp::Same),
    ("c_time", "time(3)", Cmp::Fraction),
    ("c_timetz", "timetz", Cmp::Same),
    ("c_ts", "timestamp", Cmp::Fraction),
    ("c_tstz", "timestamptz", Cmp::Fraction),
    ("c_interval", "interval", Cmp::Same),
    ("c_uuid", "uuid", Cmp::Same),
    ("c_json", "json", Cmp::Same),
    ("c_jsonb", "jsonb", Cmp::Same),
    ("c_int_array", "int[]", Cmp::Same),
    ("c_text_array", "text[]", Cmp::Same),
    ("c_enum", "mood", Cmp::Same),
    ("c_inet", "inet", Cmp::Same),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    /// The same text.
    Same,
    /// As the f32 it reads as (NaN equals NaN).
    F32,
    /// As the f64 it reads as.
    F64,
    /// The bytes (PostgreSQL `\x..` hex; base64 in a message; raw at a database).
    Bytes,
    /// `t`/`f` as 1/0.
    Bool,
    /// Temporal text with the fraction's trailing zeros dropped (PostgreSQL prints `.25`,
    /// a column of 6 digits `.250000`) and a UTC offset `+00` dropped.
    Fraction,
}

/// Rows before the project starts (copied by full sync), rows after (replayed).
const SEED: &str = "
INSERT INTO types VALUES
 (1, -32768, -2147483648, -9223372036854775808, -12345678.1234, 3.14159265358979323846264338327950288,
  -3.4028235e38, -1.7976931348623157e308, 'plain ''quoted'' \\ back', 'varchar ñ 日本', 'ab',
  '\\x00ff10', true, '0001-01-01', '23:59:59.999', '10:11:12+05:30', '2024-02-29 23:59:59.999999',
  '1999-12-31 23:00:00.5-02', '1 year 2 mons 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{\"a\": [1, 2.50], \"b\": null}', '{\"z\": 1, \"a\": \"x\"}', '{1,NULL,3}', '{\"a b\",c}', 'happy',
  '192.168.0.1/24'),
 (2, 32767, 2147483647, 9223372036854775807, 99999999.9999, 0.000000000000000000001, 1.5, 0.1, '', 'x', 'abcde',
  '\\x', false, '9999-12-31', '00:00:00', '00:00:00+00', '1970-01-01 00:00:00',
  '2038-01-19 03:14:08+00', '-1 days', '00000000-0000-0000-0000-000000000000', '[]', '[]', '{}', '{}', 'sad',
  '::1'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
";

const LATER: &str = "
INSERT INTO types (id, c_int, c_numeric_any, c_double, c_text, c_bytea, c_tstz, c_json) VALUES
 (4, 4, '-0.000', 2.5e-300, repeat('long text ', 500), decode(repeat('ab', 3000), 'hex'),
  '2030-06-01 12:00:00.123456+00', '\"just a string\"'),
 (5, 5, '1e30', 12345.678, 'five', '\\x05', now(), '{\"n\": 5}');
UPDATE types SET c_text = 'changed', c_bool = false, c_real = 0.25, c_date = '2000-02-29',
  c_int_array = '{7,8}', c_enum = 'ok' WHERE id = 1;
UPDATE types SET id = 20 WHERE id = 2;
DELETE FROM types WHERE id = 3;
";

/// Values PostgreSQL has and MariaDB cannot store (docs/POSTGRES.md): only for Kafka.
const SPECIAL: &str = "
INSERT INTO types (id, c_numeric, c_numeric_any, c_real, c_double) VALUES
 (9, 'NaN', 'NaN', 'NaN', 'Infinity'), (10, 1, 'Infinity', '-Infinity', '-Infinity');
";

async fn create_types(c: &tokio_postgres::Client) -> TestResult {
    let cols: Vec<String> = TYPES.iter().map(|(n, t, _)| format!("{n} {t}")).collect();
    c.batch_execute(&format!(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
         CREATE TABLE types (id int PRIMARY KEY, {})",
        cols.join(", ")
    ))
    .await?;
    Ok(())
}

/// A value compared: the expected text mapped as the column's [`Cmp`] says.
fn norm(cmp: Cmp, text: &str) -> String {
    match cmp {
        Cmp::Same => text.to_string(),
        Cmp::F32 => match text.parse::<f32>() {
            Ok(f) if f.is_nan() => "NaN".into(),
            Ok(f) => format!("{:08x}", f.to_bits()),
            Err(_) => format!("not a float: {text}"),
        },
        Cmp::F64 => match text.parse::<f64>() {
            Ok(f) if f.is_nan() => "NaN".into(),
            Ok(f) => format!("{:016x}", f.to_bits()),
            Err(_) => format!("not a float: {text}"),
        },
        Cmp::Bytes => text.strip_prefix("\\x").unwrap_or(text).to_string(),
        Cmp::Bool => match text {
            "t" => "1".into(),
            "f" => "0".into(),
            other => other.to_string(),
        },
        Cmp::Fraction => {
            let t = text.strip_suffix("+00").unwrap_or(text);
            match t.split_once('.') {
                Some((a, f)) => {
                    let f = f.trim_end_matches('0');
                    if f.is_empty() {
                        a.to_string()
                    } else {
                        format!("{a}.{f}")
                    }
                }
                None => t.to_string(),
            }
        }
    }
}

/// PostgreSQL's rows of `types`, by id, each column normalised.
async fn expected(c: &tokio_postgres::Client) -> Result<Matrix, Box<dyn std::error::Error>> {
    let mut out = BTreeMap::new();
    for row in pg_rows(c, "SELECT * FROM types ORDER BY id").await? {
        let id = row.get("id").cloned().flatten().unwrap_or_default();
        let mut cols = BTreeMap::new();
        for (name, _, cmp) in TYPES {
            let v = row.get(*name).cloned().flatten();
            cols.insert(name.to_string(), v.map(|t| norm(*cmp, &t)));
        }
        out.insert(id, cols);
    }
    Ok(out)
}

/// The table rebuilt from OMS messages (values as text, bytes in base64), by key.
fn rebuild(msgs: &[Json]) -> Result<Matrix, String> {
    let mut state = BTreeMap::new();
    let mut last = 0u64;
    for m in msgs {
        let v = &m["value"];
        let seq = v["allMetaData"]["storeDataSequence"].as_u64().unwrap_or(0);
        let key = v["allMetaData"]["record_primary_value"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let kind = v["recordType"].as_str().unwrap_or("");
        if kind != "ROW" {
            if seq <= last {
                continue;
            }
            last = seq;
        }
        let row = |post: &Json| -> BTreeMap<String, Option<String>> {
            TYPES
                .iter()
                .map(|(name, _, cmp)| {
                    let text = post[*name].as_str().map(|t| match cmp {
                        Cmp::Bytes => base64_to_hex(t),
                        _ => norm(*cmp, t),
                    });
                    (name.to_string(), text)
                })
                .collect()
        };
        match kind {
            "ROW" | "INSERT" | "UPDATE" => {
                if kind == "UPDATE" {
                    let old = v["allMetaData"]["record_primary_value"].as_str();
                    let before_id = v["prevStruct"]["id"].as_str().or(old);
                    if let Some(b) = before_id {
                        state.remove(b);
                    }
                }
                let id = v["postStruct"]["id"].as_str().unwrap_or(&key).to_string();
                state.insert(id, row(&v["postStruct"]));
            }
            "DELETE" => {
                let id = v["prevStruct"]["id"].as_str().unwrap_or(&key).to_string();
                state.remove(&id);
            }
            "DDL" | "HEARTBEAT" => {}
            other => return Err(format!("unexpected recordType {other}")),
        }
    }
    Ok(state)
}

fn base64_to_hex(t: &str) -> String {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(t) {
        Ok(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Err(_) => format!("not base64: {t}"),
    }
}

/// Rows of the type matrix by id, each column compared.
type Matrix = BTreeMap<String, BTreeMap<String, Option<String>>>;

/// The destination's matrix equals PostgreSQL's, value for value, after the workload: the
/// seeded rows, the replayed inserts, the key change (2 -> 20), the delete (3).
fn same_matrix(want: &Matrix, got: &Matrix) -> TestResult {
    let ids: Vec<&str> = want.keys().map(String::as_str).collect();
    assert!(
        ["1", "20", "4", "5"].iter().all(|i| ids.contains(i)) && !ids.contains(&"3"),
        "{ids:?}"
    );
    assert_eq!(
        got.len(),
        want.len(),
        "rows: {:?} vs {:?}",
        got.keys(),
        want.keys()
    );
    for (id, row) in want {
        let g = got.get(id).ok_or(format!("row {id} missing"))?;
        for (col, v) in row {
            assert_eq!(g.get(col), Some(v), "row {id} column {col}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_kafka_full_and_incremental_type_matrix_equals_the_source() -> TestResult {
    // A broker of its own, in memory: the shared one is busy with every other test.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("pgk");
    let c = new_pg_db(&db).await?;
    create_types(&c).await?;
    c.batch_execute(SEED).await?;
    c.batch_execute(SPECIAL).await?;
    let dir = temp_dir(&db);
    let topic = format!("{db}.types");
    let file = pg_project(
        &dir,
        &db,
        &db,
        &format!(
            "  type: kafka\n  brokers: {}\n  format: oms\n  single_topic: {topic}\n  partitions: 1",
            kafka.addr
        ),
        "  include: [\"public.types\"]",
    );
    run_until_caught_up(&file)?;
    c.batch_execute(LATER).await?;
    run_until_caught_up(&file)?;
    let want = expected(&c).await?;
    let msgs = consume_from(&kafka.addr, &topic, 0)?;
    let got = rebuild(&msgs)?;
    same_matrix(&want, &got)?;
    drop(c);
    drop_pg_db(&db).await
}

/// The MariaDB rendering of a value read by the binary protocol, in the comparison's terms.
fn maria_text(v: &mysql_async::Value, cmp: Cmp) -> Option<String> {
    use mysql_async::Value as V;
    let frac = |us: u32| {
        if us == 0 {
            String::new()
        } else {
            format!(".{us:06}").trim_end_matches('0').to_string()
        }
    };
    Some(match v {
        V::NULL => return None,
        V::Bytes(b) if cmp == Cmp::Bytes => b.iter().map(|x| format!("{x:02x}")).collect(),
        V::Bytes(b) => norm(cmp, &String::from_utf8_lossy(b)),
        V::Int(i) => i.to_string(),
        V::UInt(u) => u.to_string(),
        V::Float(f) => format!("{:08x}", f.to_bits()),
        V::Double(f) => format!("{:016x}", f.to_bits()),
        V::Date(y, mo, d, 0, 0, 0, 0) if cmp == Cmp::Same => format!("{y:04}-{mo:02}-{d:02}"),
        V::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}", frac(*us))
        }
        V::Time(neg, days, h, mi, s, us) => format!(
            "{}{:02}:{mi:02}:{s:02}{}",
            if *neg { "-" } else { "" },
            days * 24 + u32::from(*h),
            frac(*us)
        ),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_mariadb_full_and_incremental_type_matrix_equals_the_source() -> TestResult {
    ensure_up(&[Service::MariadbShards]);
    let db = unique_name("pgm");
    let c = new_pg_db(&db).await?;
    create_types(&c).await?;
    c.batch_execute(SEED).await?;
    let (file, dest) = into_mariadb(
        &db,
        &format!("  include: [\"public.types\"]\n  rename:\n    public.types: {db}.types"),
    );
    run_until_caught_up(&file)?;
    c.batch_execute(LATER).await?;
    run_until_caught_up(&file)?;
    let want = expected(&c).await?;
    let mut d = dest_conn(&dest).await?;
    let cols: Vec<&str> = TYPES.iter().map(|(n, _, _)| *n).collect();
    let rows: Vec<mysql_async::Row> = d
        .exec(
            format!(
                "SELECT id, {} FROM `{db}`.types ORDER BY id",
                cols.join(", ")
            ),
            (),
        )
        .await?;
    let mut got = BTreeMap::new();
    for r in rows {
        let id: i64 = r.get(0).ok_or("id")?;
        let mut row = BTreeMap::new();
        for (i, (name, _, cmp)) in TYPES.iter().enumerate() {
            let v: mysql_async::Value = r.get(i + 1).ok_or("column")?;
            row.insert(name.to_string(), maria_text(&v, *cmp));
        }
        got.insert(id.to_string(), row);
    }
    same_matrix(&want, &got)?;
    d.query_drop(format!("DROP DATABASE `{db}`")).await?;
    drop(c);
    drop_pg_db(&db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_added_and_dropped_a_keyless_table_and_unchanged_toast_reach_mariadb() -> TestResult
{
    ensure_up(&[Service::MariadbShards]);
    let db = unique_name("pgddl");
    let c = new_pg_db(&db).await?;
    // `big` is TOASTed out of line (incompressible text of 200 kB); `full` has REPLICA
    // IDENTITY FULL (its old rows come whole, TOASTed values included).
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text, big text); \
         CREATE TABLE full_t (id int PRIMARY KEY, n int, big text); \
         ALTER TABLE full_t REPLICA IDENTITY FULL; \
         CREATE TABLE bag (a int, b text); \
         ALTER TABLE bag REPLICA IDENTITY FULL; \
         CREATE FUNCTION noise(n int) RETURNS text LANGUAGE sql AS \
           $$ SELECT string_agg(md5(g::text || random()::text), '') FROM generate_series(1, n / 32) g $$; \
         INSERT INTO t VALUES (1, 'one', noise(200000)), (2, 'two', 'small'), (3, 'three', NULL); \
         INSERT INTO full_t VALUES (1, 0, noise(200000)); \
         INSERT INTO bag VALUES (1, 'x'), (1, 'x'), (2, NULL), (NULL, NULL);",
    )
    .await?;
    let (file, dest) = into_mariadb(&db, &format!(
            "  include: [\"public.*\"]\n  rename:\n    public.t: {db}.t\n    public.full_t: {db}.full_t\n    public.bag: {db}.bag"
        ));
    run_until_caught_up(&file)?;
    c.batch_execute(
        "UPDATE t SET v = 'one again' WHERE id = 1; \
         UPDATE full_t SET n = n + 1 WHERE id = 1; \
         ALTER TABLE t ADD COLUMN extra int; \
         INSERT INTO t (id, v, extra) VALUES (4, 'four', 44); \
         UPDATE t SET extra = 2 WHERE id = 2; \
         ALTER TABLE t DROP COLUMN v; \
         INSERT INTO t (id, extra) VALUES (5, 55); \
         UPDATE t SET extra = 1 WHERE id = 1; \
         DELETE FROM t WHERE id = 3; \
         INSERT INTO bag VALUES (1, 'x'), (3, 'three'); \
         UPDATE bag SET b = 'y' WHERE a = 2; \
         DELETE FROM bag WHERE a IS NULL;",
    )
    .await?;
    run_until_caught_up(&file)?;
    let mut d = dest_conn(&dest).await?;
    let cols = dest_columns(&mut d, &db).await?;
    assert_eq!(
        cols,
        ["id", "big", "extra"],
        "the columns follow the source"
    );
    for (src, dst) in [
        (
            "SELECT id, md5(big), extra FROM t",
            format!("SELECT id, md5(big), extra FROM `{db}`.t"),
        ),
        (
            "SELECT id, n, md5(big) FROM full_t",
            format!("SELECT id, n, md5(big) FROM `{db}`.full_t"),
        ),
        (
            "SELECT a, b FROM bag",
            format!("SELECT a, b FROM `{db}`.bag"),
        ),
    ] {
        let want = source_text(&c, src).await?;
        assert!(!want.is_empty());
        assert_eq!(dest_text(&mut d, &dst).await?, want, "{src}");
    }
    d.query_drop(format!("DROP DATABASE `{db}`")).await?;
    drop(c);
    drop_pg_db(&db).await
}

/// PostgreSQL `t (id, v, amt)` as the message-queue tests' shape: strings keyed by id.
async fn pg_shape(
    c: &tokio_postgres::Client,
) -> Result<BTreeMap<String, Json>, Box<dyn std::error::Error>> {
    let mut out = BTreeMap::new();
    for r in c
        .query("SELECT id::text, v, amt::text FROM t ORDER BY id", &[])
        .await?
    {
        let id: String = r.try_get(0)?;
        let v: Option<String> = r.try_get(1)?;
        let amt: Option<String> = r.try_get(2)?;
        out.insert(
            id.clone(),
            serde_json::json!({"id": id, "v": v, "amt": amt}),
        );
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reaches_rocketmq_and_datahub_through_the_same_seam() -> TestResult {
    use common::datahub::{datahub_endpoint, datahub_read, rebuild_tuple, DH_PROJECT};
    use common::rocketmq::rocketmq_consume;
    ensure_up(&[Service::Rocketmq, Service::Datahub]);
    // The DataHub project reads its key from the environment, as a user's would.
    std::env::set_var("SLUICE_TEST_DATAHUB_KEY", "sluice-secret");
    let db = unique_name("pgmq");
    let c = new_pg_db(&db).await?;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text, amt numeric(8,2)); \
         INSERT INTO t SELECT g, 'r' || g, g / 4.0 FROM generate_series(1, 40) g",
    )
    .await?;
    let later = "INSERT INTO t VALUES (41, 'new', 1.25), (42, NULL, NULL); \
                 UPDATE t SET v = 'changed', amt = amt + 1 WHERE id % 5 = 0; \
                 DELETE FROM t WHERE id % 7 = 0";
    let rocket_topic = format!("{db}_rmq");
    let dh_topic = format!("{db}_dh");
    let destinations = [
        (
            "rocketmq",
            format!(
                "  type: rocketmq\n  namesrv: {}\n  format: oms\n  topic: {rocket_topic}\n  create_topics: true",
                sluice_testkit::ROCKETMQ_NAMESRV.get()
            ),
        ),
        (
            "datahub",
            format!(
                "  type: datahub\n  endpoint: {}\n  project: {DH_PROJECT}\n  access_id: sluice\n  access_key_env: SLUICE_TEST_DATAHUB_KEY\n  topic: {dh_topic}",
                datahub_endpoint()
            ),
        ),
    ];
    let mut files = Vec::new();
    for (kind, dest) in &destinations {
        let dir = temp_dir(&format!("{db}-{kind}"));
        // One slot each: two projects never share a slot.
        let file = pg_project(
            &dir,
            &format!("{db}-{kind}"),
            &db,
            dest,
            "  include: [\"public.t\"]",
        );
        run_until_caught_up(&file)?;
        files.push(file);
    }
    c.batch_execute(later).await?;
    for file in &files {
        run_until_caught_up(file)?;
    }
    let want = pg_shape(&c).await?;
    assert_eq!(want.len(), 42 - 6, "{want:?}");
    let got = rebuild_oms(&rocketmq_consume(&rocket_topic)?)?;
    assert_eq!(got, want, "RocketMQ, rebuilt by the rocketmq-rust consumer");
    let recs = datahub_read(&datahub_endpoint(), &dh_topic)?;
    let got = rebuild_tuple(&recs, "id", &["id", "v", "amt"])?;
    assert_eq!(got, want, "DataHub TUPLE, read by the official SDK");
    drop(c);
    drop_pg_db(&db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_filters_and_column_subsets_apply_to_postgres_rows() -> TestResult {
    ensure_up(&[Service::MariadbShards]);
    let db = unique_name("pgflt");
    let c = new_pg_db(&db).await?;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text, amt numeric(8,2), secret text); \
         INSERT INTO t SELECT g, CASE WHEN g % 3 = 0 THEN 'skip' ELSE 'r' || g END, g / 2.0, 'hidden' \
         FROM generate_series(1, 30) g",
    )
    .await?;
    let (file, dest) = into_mariadb(&db, &format!(
            "  include: [\"public.t\"]\n  rename:\n    public.t: {db}.t\n  columns:\n    public.t: [id, v, amt]\n  filters:\n    public.t: \"amt > 5 AND v <> 'skip'\""
        ));
    run_until_caught_up(&file)?;
    c.batch_execute(
        "INSERT INTO t VALUES (31, 'in', 99, 'x'), (32, 'skip', 99, 'x'), (33, 'low', 1, 'x'); \
         UPDATE t SET amt = 0 WHERE id = 20; UPDATE t SET v = 'moved in' WHERE id = 3",
    )
    .await?;
    run_until_caught_up(&file)?;
    let mut d = dest_conn(&dest).await?;
    let cols = dest_columns(&mut d, &db).await?;
    assert_eq!(cols, ["id", "v", "amt"], "only the subset's columns");
    let want = source_text(&c, "SELECT id, v, amt FROM t WHERE amt > 5 AND v <> 'skip'").await?;
    assert!(want.len() > 10, "{want:?}");
    // What the filter lets through from then on: a row updated out of it is deleted at the
    // destination, a row updated into it arrives (docs/PROJECTS.md, row filters).
    assert_eq!(
        dest_text(&mut d, &format!("SELECT id, v, amt FROM `{db}`.t")).await?,
        want
    );
    d.query_drop(format!("DROP DATABASE `{db}`")).await?;
    drop(c);
    drop_pg_db(&db).await
}
