//! Full-sync rows by the destination's bulk path: `LOAD DATA LOCAL INFILE` of a tab-separated
//! payload built in memory (never a file), instead of multi-row INSERTs. Measured on MariaDB
//! 10.11, 1M sysbench rows: 4 sessions of 5,000-row LOAD DATA put 153k rows/s where one
//! session's LOAD DATA of the whole file put 88k and 4 sessions of prepared INSERTs 66k.
//!
//! Invariants:
//! - Exactness: every value is written as text the server parses back to the same value (see
//!   [`field`]); binary strings and geometry go hex-encoded through `UNHEX`, BIT through
//!   `CAST(.. AS UNSIGNED)`, FLOAT as the exact double of its 4-byte value. A value with no
//!   exact text form (a partial row image, a non-finite float) makes the whole run decline.
//! - Nothing is lost or silently changed: with LOCAL the server treats duplicate keys and bad
//!   values as warnings (it cannot stop the client mid-file). A load that did not insert every
//!   row, or left any warning, is reported as declined; the caller then writes the same rows
//!   again by its ordinary, idempotent path (delete of their keys, then INSERT), which either
//!   lands them or names the value the destination refuses.
//! - Only payloads this sink registered are ever sent: a LOCAL INFILE request for any other
//!   name gets no data (the server cannot read the client's files).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use mysql_async::prelude::{GlobalHandler, Queryable};
use mysql_async::{InfileData, LocalInfileError};
use sluice_core::{TableId, TableSchema, Value};

use crate::apply::{kept_columns, Action};
use crate::q;
use crate::value::utc;

/// The payloads waiting for the server's LOCAL INFILE request, by name, and the tables already
/// said to be loaded this way.
#[derive(Clone, Default)]
pub(crate) struct Payloads(
    Arc<Mutex<HashMap<Vec<u8>, Bytes>>>,
    Arc<Mutex<HashSet<TableId>>>,
);

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Payloads {
    fn put(&self, data: Vec<u8>) -> String {
        let name = format!("sluice-chunk-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        if let Ok(mut m) = self.0.lock() {
            m.insert(name.clone().into_bytes(), Bytes::from(data));
        }
        name
    }

    /// Says once per table that its copied rows go by LOAD DATA.
    pub(crate) fn announce(&self, table: &TableId) {
        // Checked before cloning: this runs for every chunk loaded.
        let new = self
            .1
            .lock()
            .is_ok_and(|mut s| !s.contains(table) && s.insert(table.clone()));
        if new {
            tracing::info!(%table, "full sync: copied rows are written by LOAD DATA LOCAL INFILE");
        }
    }

    fn forget(&self, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(name.as_bytes());
        }
    }
}

impl GlobalHandler for Payloads {
    fn handle(&self, file_name: &[u8]) -> BoxFuture<'static, Result<InfileData, LocalInfileError>> {
        // Any other name gets no data (the load then inserts nothing and declines). Not an
        // error: the driver would leave the session mid-protocol, unusable.
        let data = self.0.lock().ok().and_then(|mut m| m.remove(file_name));
        Box::pin(async move {
            Ok(match data {
                Some(b) => stream::once(async move { Ok(b) }).boxed(),
                None => stream::empty().boxed(),
            })
        })
    }
}

/// How a column's values travel in the payload.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// Its text, escaped.
    Text,
    /// Hex digits, turned back into bytes by `UNHEX` (binary strings; geometry in the server's
    /// internal form, SRID then WKB).
    Hex,
    /// Decimal digits cast to an unsigned number (BIT: its text would be stored as bytes).
    Bits,
}

fn form_of(v: &Value) -> Option<Form> {
    match v {
        Value::Null => None,
        Value::Bytes(_) | Value::Geometry { .. } => Some(Form::Hex),
        Value::Bit { .. } => Some(Form::Bits),
        _ => Some(Form::Text),
    }
}

/// How the rows of one run went.
pub(crate) enum Loaded {
    /// Every row inserted, no warning.
    Clean,
    /// Not (or not wholly) written this way, with why; the caller writes the rows again.
    Declined(String),
}

/// Loads the puts of `run` (rows of one table, copied by full sync) into `name` with one
/// `LOAD DATA LOCAL INFILE`, of the columns the destination has (`has`; all when None).
pub(crate) async fn load(
    conn: &mut mysql_async::Transaction<'_>,
    payloads: &Payloads,
    name: &str,
    table: &TableSchema,
    run: &[Action<'_>],
    has: Option<&HashSet<String>>,
) -> Result<Loaded, mysql_async::Error> {
    let keep = kept_columns(table, has);
    let rows: Vec<&[Value]> = run
        .iter()
        .filter_map(|a| match a {
            Action::Put(_, row, _) => Some(*row),
            Action::Remove(..) => None,
        })
        .collect();
    // One form per column, from its values: a column whose values need two forms declines.
    let mut forms: Vec<Option<Form>> = vec![None; table.columns.len()];
    for row in &rows {
        for ((slot, v), _) in forms
            .iter_mut()
            .zip(row.iter())
            .zip(&keep)
            .filter(|(_, k)| **k)
        {
            match (form_of(v), *slot) {
                (None, _) => {}
                (Some(f), None) => *slot = Some(f),
                (Some(f), Some(g)) if f == g => {}
                _ => {
                    return Ok(Loaded::Declined(
                        "a column holds values of two kinds".into(),
                    ))
                }
            }
        }
    }
    let mut data = Vec::with_capacity(rows.len() * 64);
    let mut text = String::new();
    for row in &rows {
        let mut first = true;
        for (v, _) in row.iter().zip(&keep).filter(|(_, k)| **k) {
            if !first {
                data.push(b'\t');
            }
            first = false;
            if let Err(why) = field(v, &mut data, &mut text) {
                return Ok(Loaded::Declined(why));
            }
        }
        data.push(b'\n');
    }
    let mut targets = Vec::new();
    let mut sets = Vec::new();
    for (i, (c, _)) in table
        .columns
        .iter()
        .zip(&keep)
        .enumerate()
        .filter(|(_, (_, k))| **k)
    {
        match forms[i].unwrap_or(Form::Text) {
            Form::Text => targets.push(q(&c.name)),
            Form::Hex => {
                targets.push(format!("@v{i}"));
                sets.push(format!("{} = UNHEX(@v{i})", q(&c.name)));
            }
            Form::Bits => {
                targets.push(format!("@v{i}"));
                sets.push(format!("{} = CAST(@v{i} AS UNSIGNED)", q(&c.name)));
            }
        }
    }
    let file = payloads.put(data);
    let mut sql = format!(
        "LOAD DATA LOCAL INFILE '{file}' INTO TABLE {name} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
        targets.join(", ")
    );
    if !sets.is_empty() {
        sql.push_str(" SET ");
        sql.push_str(&sets.join(", "));
    }
    let done = conn.query_drop(sql).await;
    // Sent or not, the payload is not needed any more.
    payloads.forget(&file);
    done?;
    let (inserted, warnings) = (conn.affected_rows(), conn.get_warnings());
    if inserted != rows.len() as u64 || warnings > 0 {
        return Ok(Loaded::Declined(format!(
            "{inserted} of {} rows inserted, {warnings} warnings (keys already there, or values the table changes)",
            rows.len()
        )));
    }
    Ok(Loaded::Clean)
}

/// Appends `v` as one field of the payload: `\N` for NULL, else text the server parses back to
/// exactly `v` in its column (escaped: backslash, tab, newline, carriage return and NUL), or
/// hex for the [`Form::Hex`] kinds. An error says why `v` has no such form.
fn field(v: &Value, out: &mut Vec<u8>, text: &mut String) -> Result<(), String> {
    text.clear();
    match v {
        Value::Null => {
            out.extend_from_slice(b"\\N");
            return Ok(());
        }
        Value::Unavailable => return Err("a partial row image".into()),
        Value::Bytes(b) => {
            hex(b, out);
            return Ok(());
        }
        Value::Geometry { srid, wkb } => {
            hex(&srid.to_le_bytes(), out);
            hex(wkb, out);
            return Ok(());
        }
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) => {
            escape(s.as_bytes(), out);
            return Ok(());
        }
        Value::Enum { label: s, .. } | Value::Set { text: s, .. } => {
            escape(s.as_bytes(), out);
            return Ok(());
        }
        Value::Int(i) => write!(text, "{i}"),
        Value::UInt(u) => write!(text, "{u}"),
        // Four digits: a YEAR column reads the text "0" as 2000, "0000" as the zero year.
        Value::Year(y) => write!(text, "{y:04}"),
        Value::Bit { value, .. } => write!(text, "{value}"),
        // The shortest text of a double parses back to it (the server's strtod rounds
        // correctly); a FLOAT goes as the double it exactly is, which the column then holds
        // exactly.
        Value::Float(f) if f.is_finite() => write!(text, "{:e}", f64::from(*f)),
        Value::Double(d) if d.is_finite() => write!(text, "{d:e}"),
        Value::Float(_) | Value::Double(_) => return Err("a float that is not finite".into()),
        Value::Date { year, month, day } => write!(text, "{year:04}-{month:02}-{day:02}"),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            ..
        } => write!(
            text,
            "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06}"
        ),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
            ..
        } => write!(
            text,
            "{}{hours:02}:{minutes:02}:{seconds:02}.{micros:06}",
            if *negative { "-" } else { "" }
        ),
        // In UTC: writer sessions run with time_zone '+00:00'.
        Value::Timestamp {
            seconds, micros, ..
        } => {
            if *seconds == 0 && *micros == 0 {
                write!(text, "0000-00-00 00:00:00")
            } else {
                let (y, m, d, h, mi, s) = utc(*seconds);
                write!(
                    text,
                    "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{micros:06}"
                )
            }
        }
    }
    .map_err(|e| e.to_string())?;
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// Copies `s`, escaping the bytes the format reads specially (the stretches between them are
/// copied whole: most values have none).
fn escape(s: &[u8], out: &mut Vec<u8>) {
    let mut from = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(&s[from..i]);
        out.extend_from_slice(esc);
        from = i + 1;
    }
    out.extend_from_slice(&s[from..]);
}

fn hex(b: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &x in b {
        out.push(DIGITS[usize::from(x >> 4)]);
        out.push(DIGITS[usize::from(x & 15)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &Value) -> String {
        let mut out = Vec::new();
        field(v, &mut out, &mut String::new()).expect("has a text form");
        String::from_utf8(out).expect("ascii or utf-8")
    }

    #[test]
    fn fields_escape_what_the_format_reads_specially() {
        assert_eq!(
            one(&Value::Text("a\\b\tc\nd\re\0f".into())),
            "a\\\\b\\tc\\nd\\re\\0f"
        );
        // A text that reads like the NULL marker stays a text.
        assert_eq!(one(&Value::Text("\\N".into())), "\\\\N");
        assert_eq!(one(&Value::Null), "\\N");
        assert_eq!(one(&Value::Text(String::new())), "");
        assert_eq!(one(&Value::Bytes(vec![0, 0xff, 0x0a])), "00FF0A");
    }

    #[test]
    fn floats_go_as_the_exact_double_they_are() {
        for f in [0.1f32, -3.40282e38, f32::MIN_POSITIVE, 1.0e-45] {
            let back: f64 = one(&Value::Float(f)).parse().expect("a number");
            assert_eq!(back, f64::from(f));
            assert_eq!(back as f32, f);
        }
        for d in [0.1f64, -1.7976931348623157e308, 5e-324] {
            let back: f64 = one(&Value::Double(d)).parse().expect("a number");
            assert_eq!(back.to_bits(), d.to_bits());
        }
        let mut out = Vec::new();
        assert!(field(&Value::Double(f64::NAN), &mut out, &mut String::new()).is_err());
    }

    #[test]
    fn times_keep_their_sign_hours_and_micros() {
        let t = Value::Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            micros: 1,
            fsp: 6,
        };
        assert_eq!(one(&t), "-838:59:59.000001");
        let ts = Value::Timestamp {
            seconds: 1_000_000_000,
            micros: 500_000,
            fsp: 1,
        };
        assert_eq!(one(&ts), "2001-09-09 01:46:40.500000");
    }
}
