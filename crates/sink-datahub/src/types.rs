//! The type map of TUPLE topics (OMS's map as the base, kept exact) and each value's text.
//!
//! | source type | DataHub type | value |
//! |---|---|---|
//! | TINYINT .. BIGINT, BIT(n<64), YEAR | BIGINT | the number |
//! | BIGINT UNSIGNED, BIT(64) | DECIMAL | the number (up to 18446744073709551615) |
//! | FLOAT | FLOAT | the 4-byte value's shortest text |
//! | DOUBLE | DOUBLE | the 8-byte value's shortest text |
//! | DECIMAL(p,s), p <= 38 and s <= 18 | DECIMAL | its digits, with its scale |
//! | DECIMAL beyond that | STRING | its digits |
//! | TIMESTAMP | TIMESTAMP | microseconds since the epoch (UTC); 0 is the zero timestamp |
//! | DATE, DATETIME, TIME | STRING | MySQL's text (`2024-05-01 08:00:00.250000`, zero dates kept) |
//! | CHAR .. LONGTEXT, ENUM, SET, JSON | STRING | the text (UTF-8) |
//! | BINARY .. LONGBLOB, GEOMETRY, VECTOR | STRING | base64 of the bytes (geometry: WKB) |
//!
//! DATETIME has no time zone and may be a zero date, and TIMESTAMP's zero value has no
//! instant: only TIMESTAMP maps to DataHub's TIMESTAMP (1970-01-01 00:00:00 UTC itself cannot
//! be a MySQL TIMESTAMP, so 0 is unambiguous).

use sluice_core::{ColumnType, Value};
use sluice_format::text::{value_text, BytesAs};

/// The DataHub type of a column given by its `information_schema` type text.
pub fn of_sql(column_type: &str, json: bool) -> &'static str {
    let t = column_type.trim().to_ascii_lowercase();
    let base: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let args: Vec<u32> = t
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(a, _)| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let unsigned = t.contains("unsigned");
    if json {
        return "string";
    }
    match base.as_str() {
        "bigint" if unsigned => "decimal",
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" | "bool"
        | "boolean" => "bigint",
        "bit" if args.first().copied().unwrap_or(1) >= 64 => "decimal",
        "bit" => "bigint",
        "float" => "float",
        "double" | "real" => "double",
        "decimal" | "numeric" | "dec" | "fixed" => {
            let (p, s) = (
                args.first().copied().unwrap_or(10),
                args.get(1).copied().unwrap_or(0),
            );
            if p <= 38 && s <= 18 {
                "decimal"
            } else {
                "string"
            }
        }
        "timestamp" => "timestamp",
        _ => "string",
    }
}

/// The DataHub type of a column as a row's schema gives it (a column added by DDL).
pub fn of_column(ty: &ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer {
            bytes: 8,
            unsigned: true,
        } => "decimal",
        ColumnType::Integer { .. } | ColumnType::Year => "bigint",
        ColumnType::Bit { width } if *width >= 64 => "decimal",
        ColumnType::Bit { .. } => "bigint",
        ColumnType::Float => "float",
        ColumnType::Double => "double",
        ColumnType::Decimal { precision, scale } if *precision <= 38 && *scale <= 18 => "decimal",
        ColumnType::Timestamp { .. } => "timestamp",
        _ => "string",
    }
}

/// A value as the text DataHub takes for a field of type `ty` (None: NULL). A column the
/// source did not log is an error: a TUPLE record is a whole row.
pub fn text(v: &Value, ty: &str) -> Result<Option<String>, &'static str> {
    Ok(match v {
        Value::Unavailable => {
            return Err("the source did not give every column of the row (MySQL: binlog_row_image is not FULL; PostgreSQL: an unchanged TOASTed value of a row deleted since)")
        }
        Value::Timestamp {
            seconds, micros, ..
        } if ty == "timestamp" => Some((seconds * 1_000_000 + i64::from(*micros)).to_string()),
        Value::Year(y) if ty == "bigint" => Some(y.to_string()),
        other => value_text(other, BytesAs::Base64),
    })
}

/// The DataHub type of a row's column: by its type text when the source gave one, else by
/// its decoded type.
pub fn of(c: &sluice_core::Column) -> &'static str {
    if c.sql_type.is_empty() {
        of_column(&c.ty)
    } else {
        of_sql(&c.sql_type, matches!(c.ty, sluice_core::ColumnType::Json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_keeps_every_value_exact() {
        for (sql, want) in [
            ("int(11)", "bigint"),
            ("tinyint(1)", "bigint"),
            ("bigint(20) unsigned", "decimal"),
            ("int(10) unsigned", "bigint"),
            ("bit(1)", "bigint"),
            ("bit(64)", "decimal"),
            ("float", "float"),
            ("double", "double"),
            ("decimal(10,2)", "decimal"),
            ("decimal(65,30)", "string"),
            ("timestamp(6)", "timestamp"),
            ("datetime(3)", "string"),
            ("date", "string"),
            ("year(4)", "bigint"),
            ("varchar(20)", "string"),
            ("enum('a','b')", "string"),
            ("varbinary(8)", "string"),
        ] {
            assert_eq!(of_sql(sql, false), want, "{sql}");
        }
        assert_eq!(of_sql("longtext", true), "string");
        let ts = Value::Timestamp {
            seconds: 1_714_550_400,
            micros: 250_000,
            fsp: 6,
        };
        assert_eq!(
            text(&ts, "timestamp").ok().flatten().as_deref(),
            Some("1714550400250000")
        );
        assert_eq!(
            text(&Value::UInt(u64::MAX), "decimal")
                .ok()
                .flatten()
                .as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(
            text(&Value::Bytes(vec![0, 255]), "string")
                .ok()
                .flatten()
                .as_deref(),
            Some("AP8=")
        );
        assert_eq!(text(&Value::Null, "bigint"), Ok(None));
        assert!(text(&Value::Unavailable, "bigint").is_err());
    }
}
