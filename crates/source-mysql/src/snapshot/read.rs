//! Chunk reads in key order, and binary-protocol cells as exact values.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as MyValue};
use serde::{Deserialize, Serialize};
use sluice_core::render::{civil_from_days, days_from_civil};
use sluice_core::verify::Cell;
use sluice_core::{ColumnType, TableSchema, Value};

use super::{quote, SnapshotError};

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

/// The values of one row read with `schema`'s columns.
fn values_of(schema: &TableSchema, r: mysql_async::Row) -> Result<Vec<Value>, SnapshotError> {
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
    Ok(row)
}

/// Reads every row of a table without a key in one statement (in the transaction the session
/// has open: see [`crate::handover::open_snapshot`]), handing them over `batch` at a time;
/// `emit` returns false to stop.
pub async fn read_all(
    conn: &mut Conn,
    schema: &TableSchema,
    batch: usize,
    mut emit: impl FnMut(Vec<Vec<Value>>, bool) -> bool,
) -> Result<(), SnapshotError> {
    let server = |what| {
        let table = schema.id.to_string();
        move |source| SnapshotError::Server {
            table: table.clone(),
            what,
            source,
        }
    };
    let cols: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
    let sql = format!(
        "SELECT {} FROM {}.{}",
        cols.join(", "),
        quote(&schema.id.db),
        quote(&schema.id.table)
    );
    // The binary protocol, as for chunks: FLOAT and DOUBLE arrive as their exact values.
    let mut result = conn
        .exec_iter(sql, ())
        .await
        .map_err(server("reading the table"))?;
    let mut rows = Vec::with_capacity(batch);
    while let Some(r) = result.next().await.map_err(server("reading the table"))? {
        rows.push(values_of(schema, r)?);
        if rows.len() >= batch && !emit(std::mem::take(&mut rows), false) {
            return Ok(());
        }
    }
    emit(rows, true);
    Ok(())
}

/// Every row of a table that `condition` (SQL) keeps, whole, in the binary protocol as chunks
/// are read (a re-delivery's rows, chosen by key).
pub async fn read_where(
    conn: &mut Conn,
    schema: &TableSchema,
    condition: &str,
) -> Result<Vec<Vec<Value>>, SnapshotError> {
    let cols: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
    let sql = format!(
        "SELECT {} FROM {}.{} WHERE {condition}",
        cols.join(", "),
        quote(&schema.id.db),
        quote(&schema.id.table)
    );
    let raw: Vec<mysql_async::Row> =
        conn.exec(sql, ())
            .await
            .map_err(|source| SnapshotError::Server {
                table: schema.id.to_string(),
                what: "reading rows by key",
                source,
            })?;
    raw.into_iter().map(|r| values_of(schema, r)).collect()
}

/// The value of a key column of type `ty` from its canonical cell (verification's text:
/// numbers and temporals as the server prints them, strings as the hex of their UTF-8 bytes,
/// binaries as the hex of their bytes).
pub fn key_value(cell: &Cell, ty: &ColumnType) -> Result<Value, String> {
    let Cell::Text(t) = cell else {
        return Ok(Value::Null);
    };
    let bytes = || -> Result<Vec<u8>, String> {
        (0..t.len() / 2)
            .map(|i| {
                t.get(2 * i..2 * i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("{t:?} is not hex"))
            })
            .collect()
    };
    let num =
        |s: &str| -> Result<u32, String> { s.parse().map_err(|_| format!("{t:?} is not a date")) };
    let date = |d: &str| -> Result<(u16, u8, u8), String> {
        let p: Vec<&str> = d.split('-').collect();
        match p.as_slice() {
            [y, m, d] => Ok((num(y)? as u16, num(m)? as u8, num(d)? as u8)),
            _ => Err(format!("{t:?} is not a date")),
        }
    };
    Ok(match ty {
        ColumnType::Integer { unsigned: true, .. } => {
            Value::UInt(t.parse().map_err(|_| format!("{t:?} is not a number"))?)
        }
        ColumnType::Integer { .. } => {
            Value::Int(t.parse().map_err(|_| format!("{t:?} is not a number"))?)
        }
        ColumnType::Decimal { .. } => Value::Decimal(t.clone()),
        ColumnType::Year => Value::Year(t.parse().map_err(|_| format!("{t:?} is not a year"))?),
        ColumnType::Text { .. } | ColumnType::Enum { .. } | ColumnType::Set { .. } => {
            Value::Text(String::from_utf8(bytes()?).map_err(|e| e.to_string())?)
        }
        ColumnType::Binary { .. } => Value::Bytes(bytes()?),
        ColumnType::Date => {
            let (year, month, day) = date(t)?;
            Value::Date { year, month, day }
        }
        ColumnType::DateTime { fsp } => {
            let (d, time) = t
                .split_once(' ')
                .ok_or_else(|| format!("{t:?} is not a datetime"))?;
            let (year, month, day) = date(d)?;
            let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
            let p: Vec<&str> = hms.split(':').collect();
            let [h, m, s] = p.as_slice() else {
                return Err(format!("{t:?} is not a datetime"));
            };
            let micros = if frac.is_empty() {
                0
            } else {
                num(&format!("{frac:0<6}"))?
            };
            Value::DateTime {
                year,
                month,
                day,
                hour: num(h)? as u8,
                minute: num(m)? as u8,
                second: num(s)? as u8,
                micros,
                fsp: *fsp,
            }
        }
        other => {
            return Err(format!(
                "a key of type {other:?} cannot be given back as a value"
            ))
        }
    })
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
        rows.push(values_of(schema, r)?);
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
