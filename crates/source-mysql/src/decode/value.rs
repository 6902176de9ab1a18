//! One binlog cell -> one exact [`Value`], given the column's type from the table map.

use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value as MyValue;
use sluice_core::{ColumnType, Value};

use super::charset;

/// Why a cell could not be turned into a value. The caller adds table, column and position.
pub type CellError = String;

/// Converts one decoded binlog cell to a [`Value`] of the given column type.
pub fn convert(ty: &ColumnType, cell: BinlogValue<'_>) -> Result<Value, CellError> {
    let v = match cell {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            // The DOM also reads MySQL's opaque scalars (dates, times, decimals inside JSON).
            let dom = j
                .parse()
                .map_err(|e| format!("binary JSON cannot be read: {e}"))?;
            return Ok(Value::Json(super::json_text::from_dom(&dom)));
        }
        BinlogValue::JsonDiff(_) => {
            return Err("a partial JSON update must be applied to its before image".into())
        }
    };
    if v == MyValue::NULL {
        return Ok(Value::Null);
    }
    match ty {
        ColumnType::Integer { unsigned, bytes } => integer(v, *unsigned, *bytes),
        ColumnType::Float => match v {
            MyValue::Float(f) => Ok(Value::Float(f)),
            other => Err(format!("FLOAT column holds {other:?}")),
        },
        ColumnType::Double => match v {
            MyValue::Double(f) => Ok(Value::Double(f)),
            other => Err(format!("DOUBLE column holds {other:?}")),
        },
        ColumnType::Decimal { .. } => Ok(Value::Decimal(utf8(bytes(v)?)?)),
        ColumnType::Text { charset } => Ok(Value::Text(charset::decode(charset, &bytes(v)?)?)),
        ColumnType::Binary { pad_to } => {
            let mut b = bytes(v)?;
            if b.len() < usize::from(*pad_to) {
                b.resize(usize::from(*pad_to), 0);
            }
            Ok(Value::Bytes(b))
        }
        ColumnType::Vector => Ok(Value::Bytes(bytes(v)?)),
        ColumnType::Date => match v {
            MyValue::Date(year, month, day, ..) => Ok(Value::Date { year, month, day }),
            other => Err(format!("DATE column holds {other:?}")),
        },
        ColumnType::DateTime { fsp } => match v {
            MyValue::Date(year, month, day, hour, minute, second, micros) => Ok(Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
                fsp: *fsp,
            }),
            other => Err(format!("DATETIME column holds {other:?}")),
        },
        ColumnType::Time { fsp } => match v {
            MyValue::Time(negative, days, h, minutes, seconds, micros) => Ok(Value::Time {
                negative,
                hours: days * 24 + u32::from(h),
                minutes,
                seconds,
                micros,
                fsp: *fsp,
            }),
            other => Err(format!("TIME column holds {other:?}")),
        },
        ColumnType::Timestamp { fsp } => timestamp(v, *fsp),
        ColumnType::Year => {
            let text = utf8(bytes(v)?)?;
            let y: u16 = text.parse().map_err(|_| format!("YEAR holds {text:?}"))?;
            // The binlog stores YEAR as year - 1900 with 0 for the zero year; the decoder adds
            // 1900 back, so 1900 (outside YEAR's 1901..=2155) is the zero year.
            Ok(Value::Year(if y == 1900 { 0 } else { y }))
        }
        ColumnType::Bit { width } => {
            let b = bytes(v)?;
            if b.len() > 8 {
                return Err(format!("BIT value of {} bytes exceeds 64 bits", b.len()));
            }
            let value = b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
            Ok(Value::Bit {
                value,
                width: *width,
            })
        }
        ColumnType::Enum { values } => {
            let index = match v {
                MyValue::Int(i) => u16::try_from(i).map_err(|_| format!("ENUM index {i}"))?,
                MyValue::UInt(i) => u16::try_from(i).map_err(|_| format!("ENUM index {i}"))?,
                other => return Err(format!("ENUM column holds {other:?}")),
            };
            let label = match index {
                0 => String::new(),
                i => match values.get(usize::from(i) - 1) {
                    Some(l) => l.clone(),
                    // Without ENUM metadata in the table map the label is unknown: show the index.
                    None if values.is_empty() => i.to_string(),
                    None => {
                        return Err(format!("ENUM index {i} beyond its {} values", values.len()))
                    }
                },
            };
            Ok(Value::Enum { index, label })
        }
        ColumnType::Set { values } => {
            let b = bytes(v)?;
            if b.len() > 8 {
                return Err(format!("SET value of {} bytes exceeds 64 members", b.len()));
            }
            let bits = b
                .iter()
                .rev()
                .fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
            let text = if values.is_empty() {
                bits.to_string()
            } else {
                let mut members = Vec::new();
                for i in 0..64 {
                    if bits & (1u64 << i) != 0 {
                        members.push(
                            values
                                .get(i)
                                .ok_or_else(|| {
                                    format!("SET bit {i} beyond its {} members", values.len())
                                })?
                                .as_str(),
                        );
                    }
                }
                members.join(",")
            };
            Ok(Value::Set { bits, text })
        }
        ColumnType::Json => {
            // MariaDB's JSON is LONGTEXT: the text is the document, kept byte for byte (key
            // order, spacing, every digit of a number); it is only checked to be JSON.
            let text = utf8(bytes(v)?)?;
            serde_json::from_str::<serde::de::IgnoredAny>(&text)
                .map_err(|e| format!("JSON column holds invalid JSON: {e}"))?;
            Ok(Value::Json(text))
        }
        ColumnType::Geometry => {
            let b = bytes(v)?;
            if b.len() < 4 {
                return Err(format!("GEOMETRY value of {} bytes has no SRID", b.len()));
            }
            let srid = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            Ok(Value::Geometry {
                srid,
                wkb: b[4..].to_vec(),
            })
        }
    }
}

pub(crate) fn integer(v: MyValue, unsigned: bool, bytes: u8) -> Result<Value, CellError> {
    let raw: i128 = match v {
        MyValue::Int(i) => i128::from(i),
        MyValue::UInt(u) => i128::from(u),
        other => return Err(format!("integer column holds {other:?}")),
    };
    // The row decoder may read a narrow column with the other signedness (seen for MEDIUMINT):
    // reinterpret the stored bits by the column's own width and signedness.
    let bits = u32::from(bytes.clamp(1, 8)) * 8;
    let modulus: i128 = 1i128 << bits;
    let value = if unsigned {
        if raw < 0 {
            raw + modulus
        } else {
            raw
        }
    } else if raw >= modulus / 2 {
        raw - modulus
    } else {
        raw
    };
    if unsigned {
        u64::try_from(value)
            .map(Value::UInt)
            .map_err(|_| format!("unsigned {bytes}-byte column holds {raw}"))
    } else {
        i64::try_from(value)
            .map(Value::Int)
            .map_err(|_| format!("signed {bytes}-byte column holds {raw}"))
    }
}

fn timestamp(v: MyValue, fsp: u8) -> Result<Value, CellError> {
    match v {
        MyValue::Int(seconds) => Ok(Value::Timestamp {
            seconds,
            micros: 0,
            fsp,
        }),
        MyValue::Bytes(b) => {
            let text = utf8(b)?;
            let (s, us) = text.split_once('.').unwrap_or((&text, "0"));
            let seconds: i64 = s.parse().map_err(|_| format!("TIMESTAMP holds {text:?}"))?;
            let micros: u32 = us
                .parse()
                .map_err(|_| format!("TIMESTAMP holds {text:?}"))?;
            Ok(Value::Timestamp {
                seconds,
                micros,
                fsp,
            })
        }
        other => Err(format!("TIMESTAMP column holds {other:?}")),
    }
}

fn bytes(v: MyValue) -> Result<Vec<u8>, CellError> {
    match v {
        MyValue::Bytes(b) => Ok(b),
        other => Err(format!("expected bytes, found {other:?}")),
    }
}

fn utf8(b: Vec<u8>) -> Result<String, CellError> {
    String::from_utf8(b).map_err(|e| format!("not UTF-8: {e}"))
}
