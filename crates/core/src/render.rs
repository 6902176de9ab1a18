//! Sluice's native JSON rendering of values and events (the output of `sluice capture`).
//!
//! Rules (docs/CAPTURE.md): integers are exact JSON numbers; DECIMAL a string with the column's
//! scale; FLOAT/DOUBLE the shortest number that reads back to the same binary value; text as
//! UTF-8 strings; binary as base64; temporal types in MySQL's own text form (TIMESTAMP as UTC
//! with `Z`); JSON documents inline; GEOMETRY as `{"srid","wkb"}`.

use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value as Json};

use crate::event::{Event, RowChange};
use crate::position::Position;
use crate::value::Value;

fn fraction(micros: u32, fsp: u8) -> String {
    if fsp == 0 {
        return String::new();
    }
    let digits = format!("{micros:06}");
    format!(".{}", &digits[..usize::from(fsp.min(6))])
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil (proleptic Gregorian) date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds since 1970-01-01 00:00:00 of a DATE (its midnight) or DATETIME read as UTC,
/// or of a TIMESTAMP; None for a zero date, the zero timestamp and every other value.
pub fn epoch_micros(v: &Value) -> Option<i64> {
    let civil = |y: u16, mo: u8, d: u8| -> Option<i64> {
        (mo > 0 && d > 0).then(|| days_from_civil(i64::from(y), u32::from(mo), u32::from(d)))
    };
    Some(match v {
        Value::Date { year, month, day } => civil(*year, *month, *day)? * 86_400_000_000,
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            ..
        } => {
            let secs = civil(*year, *month, *day)? * 86_400
                + i64::from(*hour) * 3600
                + i64::from(*minute) * 60
                + i64::from(*second);
            secs * 1_000_000 + i64::from(*micros)
        }
        Value::Timestamp {
            seconds: 0,
            micros: 0,
            ..
        } => return None,
        Value::Timestamp {
            seconds, micros, ..
        } => seconds * 1_000_000 + i64::from(*micros),
        _ => return None,
    })
}

/// A TIME as signed microseconds (MySQL's TIME is a duration: up to ±838 hours); None for
/// every other value.
pub fn time_micros(v: &Value) -> Option<i64> {
    let Value::Time {
        negative,
        hours,
        minutes,
        seconds,
        micros,
        ..
    } = v
    else {
        return None;
    };
    let us = (i64::from(*hours) * 3600 + i64::from(*minutes) * 60 + i64::from(*seconds))
        * 1_000_000
        + i64::from(*micros);
    Some(if *negative { -us } else { us })
}

/// `NaN`, `Infinity` or `-Infinity`, as PostgreSQL writes them.
fn non_finite(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

/// A value in the native JSON rendering.
pub fn value_to_json(v: &Value) -> Json {
    let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
    match v {
        Value::Null | Value::Unavailable => Json::Null,
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        // The shortest decimal text that reads back as the same f32 (`0.1`, not the f64 widening).
        // NaN and the infinities (PostgreSQL has them) have no JSON number: they are the
        // strings PostgreSQL prints, never null.
        Value::Float(f) if !f.is_finite() => Json::String(non_finite(f64::from(*f))),
        Value::Double(f) if !f.is_finite() => Json::String(non_finite(*f)),
        Value::Float(f) => serde_json::from_str::<Json>(&f.to_string()).unwrap_or(Json::Null),
        Value::Double(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::Decimal(s) | Value::Text(s) => Json::String(s.clone()),
        Value::Bytes(b) => b64(b),
        Value::Date { year, month, day } => Json::String(format!("{year:04}-{month:02}-{day:02}")),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            fsp,
        } => Json::String(format!(
            "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}{}",
            fraction(*micros, *fsp)
        )),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
            fsp,
        } => Json::String(format!(
            "{}{hours:02}:{minutes:02}:{seconds:02}{}",
            if *negative { "-" } else { "" },
            fraction(*micros, *fsp)
        )),
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => {
            if *seconds == 0 && *micros == 0 {
                return Json::String(format!("0000-00-00 00:00:00{}", fraction(0, *fsp)));
            }
            let days = seconds.div_euclid(86_400);
            let secs = seconds.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            Json::String(format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{}Z",
                secs / 3600,
                (secs % 3600) / 60,
                secs % 60,
                fraction(*micros, *fsp)
            ))
        }
        Value::Year(y) => json!(y),
        Value::Bit { value, .. } => json!(value),
        Value::Enum { label, .. } => Json::String(label.clone()),
        Value::Set { text, .. } => Json::String(text.clone()),
        Value::Json(text) => serde_json::from_str::<Box<RawValue>>(text)
            .ok()
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Json::Null),
        Value::Geometry { srid, wkb } => {
            json!({ "srid": srid, "wkb": base64::engine::general_purpose::STANDARD.encode(wkb) })
        }
    }
}

fn image(row: &RowChange, values: Option<&Vec<Value>>) -> Json {
    match values {
        None => Json::Null,
        Some(vals) => {
            let mut m = Map::new();
            for (col, v) in row.table.columns.iter().zip(vals) {
                if *v == Value::Unavailable {
                    continue;
                }
                m.insert(col.name.clone(), value_to_json(v));
            }
            Json::Object(m)
        }
    }
}

fn position_json(p: &Position) -> Json {
    let mut m = Map::new();
    m.insert("file".into(), json!(p.file()));
    m.insert("offset".into(), json!(p.offset()));
    if let Some(g) = p.gtid() {
        m.insert("gtid".into(), json!(g));
    }
    Json::Object(m)
}

/// An event in the native rendering; `None` for events that are not rows or DDL.
pub fn event_to_json(e: &Event) -> Option<Json> {
    match e {
        Event::Row(r) => Some(json!({
            "op": r.op.as_str(),
            "db": r.table.id.db,
            "table": r.table.id.table,
            "pk": r.table.primary_key_names(),
            "before": image(r, r.before.as_ref()),
            "after": image(r, r.after.as_ref()),
            "ts_ms": r.ts_ms,
            "txn": r.txn,
            "seq": r.seq,
            "pos": position_json(&r.pos),
        })),
        Event::Ddl(d) => Some(json!({
            "op": "ddl",
            "db": d.db,
            "table": d.table.as_ref().map(|t| t.table.clone()),
            "pk": [],
            "before": null,
            "after": null,
            "ts_ms": d.ts_ms,
            "txn": d.txn,
            "seq": d.seq,
            "pos": position_json(&d.pos),
            "ddl": d.sql,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_values_render_as_mysql_shows_them() {
        let ts = Value::Timestamp {
            seconds: 1_700_000_000,
            micros: 120_000,
            fsp: 3,
        };
        assert_eq!(value_to_json(&ts), json!("2023-11-14T22:13:20.120Z"));
        let zero = Value::Timestamp {
            seconds: 0,
            micros: 0,
            fsp: 0,
        };
        assert_eq!(value_to_json(&zero), json!("0000-00-00 00:00:00"));
        let t = Value::Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            micros: 0,
            fsp: 0,
        };
        assert_eq!(value_to_json(&t), json!("-838:59:59"));
        let dt = Value::DateTime {
            year: 0,
            month: 0,
            day: 0,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
            fsp: 0,
        };
        assert_eq!(value_to_json(&dt), json!("0000-00-00 00:00:00"));
        assert_eq!(
            value_to_json(&Value::Timestamp {
                seconds: -1,
                micros: 0,
                fsp: 0
            }),
            json!("1969-12-31T23:59:59Z")
        );
    }

    #[test]
    fn numbers_are_exact() {
        assert_eq!(
            value_to_json(&Value::UInt(u64::MAX)).to_string(),
            "18446744073709551615"
        );
        assert_eq!(value_to_json(&Value::Float(0.1)).to_string(), "0.1");
        assert_eq!(value_to_json(&Value::Double(f64::NAN)), json!("NaN"));
        assert_eq!(
            value_to_json(&Value::Float(f32::NEG_INFINITY)),
            json!("-Infinity")
        );
        assert_eq!(
            value_to_json(&Value::Json("{\"a\":[1,2.5]}".into())),
            json!({"a": [1, 2.5]})
        );
    }
}
