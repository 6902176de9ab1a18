//! Full sync reads: a table's schema from `information_schema`, and its rows in primary-key
//! order, one chunk at a time, as the same exact [`Value`]s the binlog decoder produces.
//!
//! Every chunk is one autocommit `SELECT ... WHERE key > last ORDER BY key LIMIT n` (keyset
//! pagination): no global read lock, no long transaction, and a reader can resume after the
//! last key a destination acknowledged. Rows are read with the binary protocol (FLOAT and
//! DOUBLE arrive as their exact binary values), in the session time zone `+00:00` (TIMESTAMP
//! values are UTC) and with `character_set_results = binary`, so text arrives in the column's
//! own character set and is converted by the same code as binlog rows.

use std::collections::HashSet;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as MyValue};
use serde::{Deserialize, Serialize};
use sluice_core::render::{civil_from_days, days_from_civil};
use sluice_core::{Column, ColumnType, TableId, TableSchema, Value};

use crate::decode::history::{ColumnInfo, Family, LogicalSchema};

/// A full-sync read failure.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The server refused a query or the connection failed.
    #[error("{table}: {what}: {source}")]
    Server {
        /// The table.
        table: String,
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: mysql_async::Error,
    },
    /// The table cannot be read by full sync (no key, a type Sluice cannot key on, ...).
    #[error("{table}: {message}")]
    Table {
        /// The table.
        table: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A value could not be converted exactly.
    #[error("{table}, column {column}: {message}")]
    Value {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Why.
        message: String,
    },
}

/// A key value as bound to a chunk query: what the last row of an acknowledged chunk had, kept
/// in the metadata store so a reader resumes right after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyValue {
    /// A signed integer (also YEAR).
    Int(i64),
    /// An unsigned integer (also BIT, ENUM index, SET bits).
    UInt(u64),
    /// FLOAT or DOUBLE.
    Double(f64),
    /// Text (UTF-8; the server converts it to the column's character set) or a DECIMAL.
    Text(String),
    /// Bytes of a binary column.
    Bytes(Vec<u8>),
    /// DATE, DATETIME, TIMESTAMP (UTC): year, month, day, hour, minute, second, micros.
    DateTime(u16, u8, u8, u8, u8, u8, u32),
    /// TIME: negative, hours, minutes, seconds, micros.
    Time(bool, u32, u8, u8, u32),
}

impl KeyValue {
    /// The key value of a column value, or None for a type that cannot be a chunk key.
    pub fn of(v: &Value) -> Option<KeyValue> {
        Some(match v {
            Value::Int(i) => KeyValue::Int(*i),
            Value::UInt(u) => KeyValue::UInt(*u),
            Value::Float(f) => KeyValue::Double(f64::from(*f)),
            Value::Double(f) => KeyValue::Double(*f),
            Value::Decimal(s) | Value::Text(s) => KeyValue::Text(s.clone()),
            Value::Bytes(b) => KeyValue::Bytes(b.clone()),
            Value::Date { year, month, day } => KeyValue::DateTime(*year, *month, *day, 0, 0, 0, 0),
            Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
                ..
            } => KeyValue::DateTime(*year, *month, *day, *hour, *minute, *second, *micros),
            Value::Timestamp {
                seconds, micros, ..
            } => {
                if *seconds == 0 && *micros == 0 {
                    KeyValue::DateTime(0, 0, 0, 0, 0, 0, 0)
                } else {
                    let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
                    let s = seconds.rem_euclid(86_400);
                    KeyValue::DateTime(
                        u16::try_from(y).ok()?,
                        u8::try_from(m).ok()?,
                        u8::try_from(d).ok()?,
                        (s / 3600) as u8,
                        (s / 60 % 60) as u8,
                        (s % 60) as u8,
                        *micros,
                    )
                }
            }
            Value::Time {
                negative,
                hours,
                minutes,
                seconds,
                micros,
                ..
            } => KeyValue::Time(*negative, *hours, *minutes, *seconds, *micros),
            Value::Year(y) => KeyValue::Int(i64::from(*y)),
            Value::Bit { value, .. } => KeyValue::UInt(*value),
            Value::Enum { index, .. } => KeyValue::UInt(u64::from(*index)),
            Value::Set { bits, .. } => KeyValue::UInt(*bits),
            Value::Null | Value::Unavailable | Value::Json(_) | Value::Geometry { .. } => {
                return None
            }
        })
    }

    fn param(&self) -> MyValue {
        match self {
            KeyValue::Int(i) => MyValue::Int(*i),
            KeyValue::UInt(u) => MyValue::UInt(*u),
            KeyValue::Double(f) => MyValue::Double(*f),
            KeyValue::Text(s) => MyValue::Bytes(s.as_bytes().to_vec()),
            KeyValue::Bytes(b) => MyValue::Bytes(b.clone()),
            KeyValue::DateTime(y, mo, d, h, mi, s, us) => {
                MyValue::Date(*y, *mo, *d, *h, *mi, *s, *us)
            }
            KeyValue::Time(neg, h, mi, s, us) => {
                MyValue::Time(*neg, h / 24, (h % 24) as u8, *mi, *s, *us)
            }
        }
    }
}

/// Maps a server error while `what` was being done on table `id`.
fn server_error(id: &TableId, what: &'static str) -> impl Fn(mysql_async::Error) -> SnapshotError {
    let table = id.to_string();
    move |source| SnapshotError::Server {
        table: table.clone(),
        what,
        source,
    }
}

/// Quotes an identifier for MySQL.
pub fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// Prepares a connection for chunk reads (time zone, no charset conversion).
pub async fn prepare_session(conn: &mut Conn) -> Result<(), mysql_async::Error> {
    conn.query_drop("SET SESSION time_zone = '+00:00', character_set_results = binary")
        .await
}

#[derive(Debug)]
struct ColumnRow {
    name: String,
    data_type: String,
    column_type: String,
    charset: Option<String>,
    nullable: bool,
    octets: Option<u64>,
    precision: Option<u64>,
    scale: Option<u64>,
    datetime_precision: Option<u64>,
}

/// The labels of `enum('a','b''c')` / `set(...)` as information_schema shows them.
fn labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let inner = column_type[open + 1..].trim_end_matches(')');
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                other => label.push(other),
            }
        }
        out.push(label);
    }
    out
}

fn fsp_name(name: &str, fsp: u8) -> String {
    if fsp == 0 {
        name.into()
    } else {
        format!("{name}({fsp})")
    }
}

/// The column type as the binlog decoder would see it, with the same type text.
fn column_type(c: &ColumnRow, json: bool) -> Result<(ColumnType, String), String> {
    let unsigned = c.column_type.to_ascii_lowercase().contains("unsigned");
    let int = |bytes: u8, name: &str| {
        (
            ColumnType::Integer { bytes, unsigned },
            if unsigned {
                format!("{name} unsigned")
            } else {
                name.to_string()
            },
        )
    };
    let fsp = c.datetime_precision.unwrap_or(0).min(6) as u8;
    let text_or_binary = |text: &str, binary: String, pad_to: u16| match c.charset.as_deref() {
        None | Some("binary") => (ColumnType::Binary { pad_to }, binary),
        Some(cs) => (
            ColumnType::Text {
                charset: cs.to_string(),
            },
            text.to_string(),
        ),
    };
    Ok(match c.data_type.to_ascii_lowercase().as_str() {
        "tinyint" => int(1, "tinyint"),
        "smallint" => int(2, "smallint"),
        "mediumint" => int(3, "mediumint"),
        "int" | "integer" => int(4, "int"),
        "bigint" => int(8, "bigint"),
        "float" => (ColumnType::Float, "float".into()),
        "double" | "real" => (ColumnType::Double, "double".into()),
        "decimal" | "numeric" => {
            let precision = c.precision.unwrap_or(10).min(65) as u8;
            let scale = c.scale.unwrap_or(0).min(30) as u8;
            (
                ColumnType::Decimal { precision, scale },
                format!(
                    "decimal({precision},{scale}){}",
                    if unsigned { " unsigned" } else { "" }
                ),
            )
        }
        "varchar" => text_or_binary("varchar", "varbinary".into(), 0),
        "varbinary" => (ColumnType::Binary { pad_to: 0 }, "varbinary".into()),
        "char" => {
            let len = u16::try_from(c.octets.unwrap_or(0)).unwrap_or(u16::MAX);
            text_or_binary("char", format!("binary({len})"), len)
        }
        "binary" => {
            let len = u16::try_from(c.octets.unwrap_or(0)).unwrap_or(u16::MAX);
            (ColumnType::Binary { pad_to: len }, format!("binary({len})"))
        }
        "tinytext" | "text" | "mediumtext" | "longtext" if json => {
            (ColumnType::Json, "json".into())
        }
        "tinytext" | "text" | "mediumtext" | "longtext" => text_or_binary("text", "blob".into(), 0),
        "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            (ColumnType::Binary { pad_to: 0 }, "blob".into())
        }
        "enum" => (
            ColumnType::Enum {
                values: labels(&c.column_type),
            },
            "enum".into(),
        ),
        "set" => (
            ColumnType::Set {
                values: labels(&c.column_type),
            },
            "set".into(),
        ),
        "date" => (ColumnType::Date, "date".into()),
        "datetime" => (ColumnType::DateTime { fsp }, fsp_name("datetime", fsp)),
        "time" => (ColumnType::Time { fsp }, fsp_name("time", fsp)),
        "timestamp" => (ColumnType::Timestamp { fsp }, fsp_name("timestamp", fsp)),
        "year" => (ColumnType::Year, "year".into()),
        "bit" => {
            let width = c.precision.unwrap_or(1).min(64) as u8;
            (ColumnType::Bit { width }, format!("bit({width})"))
        }
        "json" => (ColumnType::Json, "json".into()),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => {
            (ColumnType::Geometry, "geometry".into())
        }
        "vector" => (ColumnType::Vector, "vector".into()),
        other => {
            return Err(format!(
                "column {} has type {other}, which full sync does not read yet",
                c.name
            ))
        }
    })
}

/// A table as full sync reads it now, with an estimate of its size.
#[derive(Debug, Clone)]
pub struct SnapshotTable {
    /// Columns and key (the primary key, or the unique columns the user named).
    pub schema: TableSchema,
    /// `information_schema.tables.table_rows`: an estimate for progress display.
    pub estimated_rows: u64,
}

/// Reads the current schema of `id`. `key_override` names unique columns to use when the
/// table has no primary key.
pub async fn table(
    conn: &mut Conn,
    id: &TableId,
    key_override: Option<&[String]>,
) -> Result<SnapshotTable, SnapshotError> {
    let server = |what: &'static str| server_error(id, what);
    type Raw = (
        String,
        String,
        String,
        Option<String>,
        String,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    );
    let rows: Vec<Raw> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR), CAST(column_type AS CHAR), \
             CAST(character_set_name AS CHAR), CAST(is_nullable AS CHAR), character_octet_length, \
             numeric_precision, numeric_scale, datetime_precision \
             FROM information_schema.columns WHERE table_schema = ? AND table_name = ? \
             ORDER BY ordinal_position",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading information_schema.columns"))?;
    if rows.is_empty() {
        return Err(SnapshotError::Table {
            table: id.to_string(),
            message: "the table does not exist (or this user may not see it; grant SELECT)".into(),
        });
    }
    let json: HashSet<String> = crate::live::json_columns(conn, id)
        .await
        .unwrap_or_default();
    let mut columns = Vec::with_capacity(rows.len());
    for (name, data_type, ctype, charset, nullable, octets, precision, scale, dtp) in rows {
        let c = ColumnRow {
            name,
            data_type,
            column_type: ctype,
            charset,
            nullable: nullable.eq_ignore_ascii_case("YES"),
            octets,
            precision,
            scale,
            datetime_precision: dtp,
        };
        let (ty, sql_type) =
            column_type(&c, json.contains(&c.name)).map_err(|message| SnapshotError::Table {
                table: id.to_string(),
                message,
            })?;
        columns.push(Column {
            name: c.name,
            ty,
            sql_type,
            nullable: c.nullable,
        });
    }
    let pk: Vec<String> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR) FROM information_schema.statistics \
             WHERE table_schema = ? AND table_name = ? AND index_name = 'PRIMARY' \
             ORDER BY seq_in_index",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading the primary key"))?;
    let key_names: Vec<String> = match (pk.is_empty(), key_override) {
        (false, _) => pk,
        (true, Some(k)) if !k.is_empty() => k.to_vec(),
        (true, _) => {
            return Err(SnapshotError::Table {
                table: id.to_string(),
                message: "the table has no primary key, so full sync cannot read it in key \
                          ranges or resume; add a primary key, or name NOT NULL unique columns \
                          in objects.keys"
                    .into(),
            })
        }
    };
    let mut primary_key = Vec::new();
    for k in &key_names {
        let i = columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(k))
            .ok_or_else(|| SnapshotError::Table {
                table: id.to_string(),
                message: format!("key column {k} does not exist"),
            })?;
        if matches!(columns[i].ty, ColumnType::Json | ColumnType::Geometry) {
            return Err(SnapshotError::Table {
                table: id.to_string(),
                message: format!("key column {k} is JSON or GEOMETRY and cannot order chunks"),
            });
        }
        primary_key.push(i);
    }
    let estimated_rows: Option<u64> = conn
        .exec_first(
            "SELECT table_rows FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading information_schema.tables"))?;
    Ok(SnapshotTable {
        schema: TableSchema {
            id: id.clone(),
            columns,
            primary_key,
        },
        estimated_rows: estimated_rows.unwrap_or(0),
    })
}

/// The definition of `id` as the source has it now (columns with full types, defaults,
/// character sets; primary key; secondary indexes), for destinations that create tables.
pub async fn table_def(
    conn: &mut Conn,
    id: &TableId,
) -> Result<sluice_core::TableDef, SnapshotError> {
    use sluice_core::{ColumnDef, IndexDef, TableDef};
    let server = |what: &'static str| server_error(id, what);
    let mariadb: bool = conn
        .query_first::<String, _>("SELECT VERSION()")
        .await
        .map_err(server("reading the server version"))?
        .is_some_and(|v| v.contains("MariaDB"));
    type Raw = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<Raw> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR), CAST(is_nullable AS CHAR), \
             CAST(column_default AS CHAR), CAST(character_set_name AS CHAR), CAST(collation_name AS CHAR), \
             CAST(extra AS CHAR) \
             FROM information_schema.columns WHERE table_schema = ? AND table_name = ? \
             ORDER BY ordinal_position",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading information_schema.columns"))?;
    if rows.is_empty() {
        return Err(SnapshotError::Table {
            table: id.to_string(),
            message: "the table does not exist (or this user may not see it; grant SELECT)".into(),
        });
    }
    let json: HashSet<String> = crate::live::json_columns(conn, id)
        .await
        .unwrap_or_default();
    let mut columns = Vec::new();
    for (name, column_type, nullable, default, charset, collation, extra) in rows {
        let extra_l = extra.to_ascii_lowercase();
        if extra_l.contains("generated") && !extra_l.contains("default_generated") {
            return Err(SnapshotError::Table {
                table: id.to_string(),
                message: format!(
                    "column {name} is a generated column, which the database destination does not create yet; \
                     leave it out with objects.columns"
                ),
            });
        }
        // MariaDB shows defaults as SQL (`'abc'`, `NULL`, `current_timestamp()`); MySQL shows
        // literals bare and marks expressions DEFAULT_GENERATED.
        let default = match default {
            None => None,
            Some(d) if mariadb && d.eq_ignore_ascii_case("NULL") => None,
            Some(d) if mariadb => Some(d),
            Some(d)
                if extra_l.contains("default_generated")
                    || d.eq_ignore_ascii_case("CURRENT_TIMESTAMP")
                    || d.to_ascii_uppercase().starts_with("CURRENT_TIMESTAMP(") =>
            {
                Some(d)
            }
            Some(d) => Some(format!("'{}'", d.replace('\\', "\\\\").replace('\'', "''"))),
        };
        columns.push(ColumnDef {
            json: json.contains(&name),
            name,
            column_type,
            nullable: nullable.eq_ignore_ascii_case("YES"),
            default,
            charset,
            collation,
            auto_increment: extra_l.contains("auto_increment"),
        });
    }
    let stats: Vec<(String, i64, String, Option<u64>)> = conn
        .exec(
            "SELECT CAST(index_name AS CHAR), non_unique, CAST(column_name AS CHAR), sub_part \
             FROM information_schema.statistics WHERE table_schema = ? AND table_name = ? \
             ORDER BY index_name, seq_in_index",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading information_schema.statistics"))?;
    let mut primary_key = Vec::new();
    let mut indexes: Vec<IndexDef> = Vec::new();
    for (index, non_unique, column, sub_part) in stats {
        if index == "PRIMARY" {
            primary_key.push(column);
            continue;
        }
        match indexes.iter_mut().find(|i| i.name == index) {
            Some(i) => i.columns.push((column, sub_part)),
            None => indexes.push(IndexDef {
                name: index,
                unique: non_unique == 0,
                columns: vec![(column, sub_part)],
            }),
        }
    }
    Ok(TableDef {
        columns,
        primary_key,
        indexes,
    })
}

/// The logical schema of a table read from `information_schema`, for seeding the schema
/// history at the position where it is known to be current.
pub fn logical_schema(schema: &TableSchema) -> LogicalSchema {
    LogicalSchema {
        columns: schema
            .columns
            .iter()
            .map(|c| ColumnInfo {
                name: c.name.clone(),
                sql_type: c.sql_type.clone(),
                family: Family::of_column(&c.ty),
            })
            .collect(),
        primary_key: schema
            .primary_key_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

/// The smallest and largest value of the first key column, when it is an integer (for
/// splitting a table into ranges that readers copy in parallel). None for an empty table or
/// a key of another type.
pub async fn integer_key_bounds(
    conn: &mut Conn,
    schema: &TableSchema,
) -> Result<Option<(i128, i128)>, SnapshotError> {
    let Some(col) = schema
        .primary_key
        .first()
        .and_then(|&i| schema.columns.get(i))
    else {
        return Ok(None);
    };
    if !matches!(col.ty, ColumnType::Integer { .. }) {
        return Ok(None);
    }
    let k = quote(&col.name);
    let sql = format!(
        "SELECT CAST(MIN({k}) AS CHAR), CAST(MAX({k}) AS CHAR) FROM {}.{}",
        quote(&schema.id.db),
        quote(&schema.id.table)
    );
    let row: Option<(Option<String>, Option<String>)> =
        conn.query_first(sql)
            .await
            .map_err(|source| SnapshotError::Server {
                table: schema.id.to_string(),
                what: "reading the key range",
                source,
            })?;
    Ok(match row {
        Some((Some(lo), Some(hi))) => match (lo.parse::<i128>(), hi.parse::<i128>()) {
            (Ok(lo), Ok(hi)) => Some((lo, hi)),
            _ => None,
        },
        _ => None,
    })
}

/// A slice of a table: rows whose first key column lies in `[lo, hi)` (unbounded where None).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRange {
    /// Inclusive lower bound of the first key column.
    pub lo: Option<i128>,
    /// Exclusive upper bound of the first key column.
    pub hi: Option<i128>,
}

fn int_param(v: i128) -> MyValue {
    match i64::try_from(v) {
        Ok(i) => MyValue::Int(i),
        Err(_) => MyValue::UInt(u64::try_from(v).unwrap_or(u64::MAX)),
    }
}

/// One chunk read: rows in key order and the key of the last one.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Rows, each with every column of the schema.
    pub rows: Vec<Vec<Value>>,
    /// Key of the last row (None when the chunk is empty).
    pub last_key: Option<Vec<KeyValue>>,
}

/// Reads up to `limit` rows of `range` after `after` (exclusive), in key order.
pub async fn read_chunk(
    conn: &mut Conn,
    schema: &TableSchema,
    range: &KeyRange,
    after: Option<&[KeyValue]>,
    limit: usize,
) -> Result<Chunk, SnapshotError> {
    let keys: Vec<String> = schema
        .primary_key
        .iter()
        .filter_map(|&i| schema.columns.get(i))
        .map(|c| quote(&c.name))
        .collect();
    let mut conds = Vec::new();
    let mut params: Vec<MyValue> = Vec::new();
    if let (Some(first), Some(lo)) = (keys.first(), range.lo) {
        conds.push(format!("{first} >= ?"));
        params.push(int_param(lo));
    }
    if let (Some(first), Some(hi)) = (keys.first(), range.hi) {
        conds.push(format!("{first} < ?"));
        params.push(int_param(hi));
    }
    if let Some(after) = after {
        // (k1, k2, ...) > (a1, a2, ...), spelled out so every server version uses the index.
        let mut ors = Vec::new();
        for i in 0..keys.len().min(after.len()) {
            let mut ands: Vec<String> = keys[..i].iter().map(|k| format!("{k} = ?")).collect();
            ands.push(format!("{} > ?", keys[i]));
            params.extend(after[..=i].iter().map(KeyValue::param));
            ors.push(format!("({})", ands.join(" AND ")));
        }
        conds.push(format!("({})", ors.join(" OR ")));
    }
    let cols: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
    let sql = format!(
        "SELECT {} FROM {}.{}{} ORDER BY {} LIMIT {limit}",
        cols.join(", "),
        quote(&schema.id.db),
        quote(&schema.id.table),
        if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        },
        keys.join(", ")
    );
    let raw: Vec<mysql_async::Row> =
        conn.exec(sql, params)
            .await
            .map_err(|source| SnapshotError::Server {
                table: schema.id.to_string(),
                what: "reading a chunk",
                source,
            })?;
    let mut rows = Vec::with_capacity(raw.len());
    for r in raw {
        let cells = r.unwrap();
        let mut row = Vec::with_capacity(cells.len());
        for (cell, col) in cells.into_iter().zip(&schema.columns) {
            row.push(
                convert(&col.ty, cell).map_err(|message| SnapshotError::Value {
                    table: schema.id.to_string(),
                    column: col.name.clone(),
                    message,
                })?,
            );
        }
        rows.push(row);
    }
    let last_key = match rows.last() {
        None => None,
        Some(last) => {
            let mut key = Vec::new();
            for &i in &schema.primary_key {
                let v = last.get(i).and_then(KeyValue::of).ok_or_else(|| {
                    SnapshotError::Table {
                        table: schema.id.to_string(),
                        message: "a key column holds NULL or an unorderable value; name NOT NULL unique columns in objects.keys".into(),
                    }
                })?;
                key.push(v);
            }
            Some(key)
        }
    };
    Ok(Chunk { rows, last_key })
}

fn bytes(v: MyValue) -> Result<Vec<u8>, String> {
    match v {
        MyValue::Bytes(b) => Ok(b),
        other => Err(format!("expected bytes, found {other:?}")),
    }
}

/// One binary-protocol cell -> the [`Value`] the binlog decoder gives for the same column.
///
/// Most types arrive as the binlog carries them and share the decoder's conversion; TIMESTAMP
/// (parts in the session's UTC rather than epoch seconds), YEAR (the year itself), ENUM and SET
/// (labels rather than index and bit mask) differ.
pub fn convert(ty: &ColumnType, v: MyValue) -> Result<Value, String> {
    if v == MyValue::NULL {
        return Ok(Value::Null);
    }
    let utf8 = |b: Vec<u8>| String::from_utf8(b).map_err(|e| format!("not UTF-8: {e}"));
    Ok(match ty {
        ColumnType::Timestamp { fsp } => match v {
            MyValue::Date(0, 0, 0, 0, 0, 0, 0) => Value::Timestamp {
                seconds: 0,
                micros: 0,
                fsp: *fsp,
            },
            // The session time zone is +00:00: the parts are UTC.
            MyValue::Date(y, mo, d, h, mi, s, micros) => Value::Timestamp {
                seconds: days_from_civil(i64::from(y), u32::from(mo), u32::from(d)) * 86_400
                    + i64::from(h) * 3600
                    + i64::from(mi) * 60
                    + i64::from(s),
                micros,
                fsp: *fsp,
            },
            other => return Err(format!("TIMESTAMP column holds {other:?}")),
        },
        ColumnType::Year => match v {
            MyValue::Int(y) => Value::Year(u16::try_from(y).map_err(|_| format!("YEAR {y}"))?),
            MyValue::UInt(y) => Value::Year(u16::try_from(y).map_err(|_| format!("YEAR {y}"))?),
            other => return Err(format!("YEAR column holds {other:?}")),
        },
        ColumnType::Enum { values } => {
            let label = utf8(bytes(v)?)?;
            let index = match values.iter().position(|l| *l == label) {
                Some(i) => u16::try_from(i + 1).map_err(|_| "ENUM index overflows".to_string())?,
                None if label.is_empty() => 0,
                None => {
                    return Err(format!(
                        "ENUM label {label:?} is not among the column's values"
                    ))
                }
            };
            Value::Enum { index, label }
        }
        ColumnType::Set { values } => {
            let text = utf8(bytes(v)?)?;
            let mut bits = 0u64;
            for m in text.split(',').filter(|m| !m.is_empty()) {
                let i = values
                    .iter()
                    .position(|l| l == m)
                    .ok_or_else(|| format!("SET member {m:?} is not among the column's values"))?;
                bits |= 1u64 << i;
            }
            Value::Set { bits, text }
        }
        _ => crate::decode::value::convert(ty, mysql_async::binlog::value::BinlogValue::Value(v))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_unescape_quotes() {
        assert_eq!(
            labels("enum('a','b''c','d,e','')"),
            vec!["a", "b'c", "d,e", ""]
        );
        assert_eq!(labels("set('x')"), vec!["x"]);
    }

    #[test]
    fn key_values_survive_serialization() {
        let k = vec![
            KeyValue::Int(-5),
            KeyValue::Text("é".into()),
            KeyValue::DateTime(2024, 2, 29, 23, 59, 59, 5),
        ];
        let s = serde_json::to_string(&k).expect("ser");
        let back: Vec<KeyValue> = serde_json::from_str(&s).expect("de");
        assert_eq!(back, k);
        let ts = KeyValue::of(&Value::Timestamp {
            seconds: 951_782_400 + 3661,
            micros: 7,
            fsp: 6,
        });
        assert_eq!(ts, Some(KeyValue::DateTime(2000, 2, 29, 1, 1, 1, 7)));
    }
}
