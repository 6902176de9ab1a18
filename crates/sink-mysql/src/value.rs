//! Values as statement parameters.

use mysql_async::Value as MyValue;
use sluice_core::render::civil_from_days;
use sluice_core::Value;

/// A value as a statement parameter. TIMESTAMP is written in UTC (the session is +00:00).
pub fn param(v: &Value) -> Result<MyValue, String> {
    Ok(match v {
        Value::Null => MyValue::NULL,
        Value::Unavailable => {
            return Err("the source did not give every column of the row (MySQL: binlog_row_image is not FULL; PostgreSQL: an unchanged TOASTed value of a row deleted since); a database destination needs whole rows".into())
        }
        Value::Int(i) => MyValue::Int(*i),
        Value::UInt(u) => MyValue::UInt(*u),
        Value::Float(f) => MyValue::Float(*f),
        Value::Double(f) => MyValue::Double(*f),
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) => MyValue::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => MyValue::Bytes(b.clone()),
        // Zero dates go as text: a zero-length binary DATE is read as 1970-01-01 by seekdb.
        Value::Date { year: 0, month: 0, day: 0 } => MyValue::Bytes(b"0000-00-00".to_vec()),
        Value::DateTime {
            year: 0,
            month: 0,
            day: 0,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
            ..
        } => MyValue::Bytes(b"0000-00-00 00:00:00".to_vec()),
        Value::Date { year, month, day } => MyValue::Date(*year, *month, *day, 0, 0, 0, 0),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            ..
        } => MyValue::Date(*year, *month, *day, *hour, *minute, *second, *micros),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
            ..
        } => MyValue::Time(*negative, hours / 24, (hours % 24) as u8, *minutes, *seconds, *micros),
        Value::Timestamp {
            seconds, micros, ..
        } => {
            if *seconds == 0 && *micros == 0 {
                MyValue::Bytes(b"0000-00-00 00:00:00".to_vec())
            } else {
                let (y, m, d, h, mi, s) = utc(*seconds);
                MyValue::Date(
                    u16::try_from(y).map_err(|_| format!("TIMESTAMP year {y}"))?,
                    m as u8,
                    d as u8,
                    h as u8,
                    mi as u8,
                    s as u8,
                    *micros,
                )
            }
        }
        Value::Year(y) => MyValue::UInt(u64::from(*y)),
        Value::Bit { value, .. } => MyValue::UInt(*value),
        Value::Enum { label, .. } => MyValue::Bytes(label.as_bytes().to_vec()),
        Value::Set { text, .. } => MyValue::Bytes(text.as_bytes().to_vec()),
        Value::Geometry { srid, wkb } => {
            // MySQL's internal geometry value: 4-byte little-endian SRID, then WKB.
            let mut b = srid.to_le_bytes().to_vec();
            b.extend_from_slice(wkb);
            MyValue::Bytes(b)
        }
    })
}

/// Seconds since the Unix epoch as the UTC civil date and time: (year, month, day, hour,
/// minute, second).
pub(crate) fn utc(seconds: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    (y, m, d, s / 3600, s / 60 % 60, s % 60)
}

/// Bytes a value takes as a statement parameter (its text or binary length; 8 for numbers,
/// dates and times), for the acknowledged-bytes metric and `throttle_bytes`.
pub(crate) fn param_len(v: &Value) -> u64 {
    match v {
        Value::Null | Value::Unavailable => 0,
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) => s.len() as u64,
        Value::Enum { label: s, .. } | Value::Set { text: s, .. } => s.len() as u64,
        Value::Bytes(b) => b.len() as u64,
        Value::Geometry { wkb, .. } => 4 + wkb.len() as u64,
        _ => 8,
    }
}

/// Bytes the row changes of a batch write: every value of each after image (the before image
/// of a delete, whose key is what is sent).
pub(crate) fn batch_len(items: &[sluice_core::sink::DeliveryItem]) -> u64 {
    items
        .iter()
        .filter_map(|i| match &i.event {
            sluice_core::Event::Row(r) => r.after.as_deref().or(r.before.as_deref()),
            _ => None,
        })
        .map(|image| image.iter().map(param_len).sum::<u64>())
        .sum()
}
