//! Values as text, the way MySQL's own client shows them (the convention of the OMS and Canal
//! formats): numbers in full, DECIMAL with its scale, temporal values in MySQL's text form,
//! TIMESTAMP in UTC. Binary values are left to each format (base64 or Latin-1).

use base64::Engine as _;
use sluice_core::render::value_to_json;
use sluice_core::Value;

/// How a format writes bytes as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BytesAs {
    /// Standard base64.
    Base64,
    /// Each byte as the Unicode code point of the same number (ISO-8859-1), as Canal does.
    Latin1,
}

/// The bytes as text.
pub fn bytes_text(b: &[u8], how: BytesAs) -> String {
    match how {
        BytesAs::Base64 => base64::engine::general_purpose::STANDARD.encode(b),
        BytesAs::Latin1 => b.iter().map(|&c| char::from(c)).collect(),
    }
}

/// TIMESTAMP seconds + micros as `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC.
pub fn timestamp_text(seconds: i64, micros: u32, fsp: u8) -> String {
    let iso = value_to_json(&Value::Timestamp {
        seconds,
        micros,
        fsp,
    });
    iso.as_str()
        .map(|s| s.trim_end_matches('Z').replacen('T', " ", 1))
        .unwrap_or_default()
}

/// A value as text; `None` for SQL NULL (and for a column the source did not log).
pub fn value_text(v: &Value, bytes: BytesAs) -> Option<String> {
    Some(match v {
        Value::Null | Value::Unavailable => return None,
        Value::Bytes(b) => bytes_text(b, bytes),
        Value::Geometry { wkb, .. } => bytes_text(wkb, bytes),
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => timestamp_text(*seconds, *micros, *fsp),
        Value::Json(text) => text.clone(),
        Value::Bit { value, .. } => value.to_string(),
        other => match value_to_json(other) {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => return None,
            n => n.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_are_mysqls() {
        let ts = Value::Timestamp {
            seconds: 1_714_550_400,
            micros: 250_000,
            fsp: 3,
        };
        assert_eq!(
            value_text(&ts, BytesAs::Base64).as_deref(),
            Some("2024-05-01 08:00:00.250")
        );
        assert_eq!(
            value_text(&Value::UInt(u64::MAX), BytesAs::Base64).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(
            value_text(&Value::Bytes(vec![0, 0xff]), BytesAs::Latin1).as_deref(),
            Some("\u{0}\u{ff}")
        );
        assert_eq!(value_text(&Value::Null, BytesAs::Base64), None);
    }
}
