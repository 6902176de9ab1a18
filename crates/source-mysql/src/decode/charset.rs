//! Character sets: collation ids from the table map, and conversion of stored bytes to UTF-8.

use mysql_common::collations::{Collation, CollationId};

/// The character set of a collation id, or `None` when the id is unknown.
pub fn charset_of_collation(id: u16) -> Option<String> {
    // MariaDB 10.10+ UCA-14.0 collations live above 2048, grouped by character set.
    match id {
        2048..=2303 => return Some("utf8mb3".into()),
        2304..=2559 => return Some("utf8mb4".into()),
        _ => {}
    }
    let collation = Collation::from(CollationId::from(id));
    if collation.id() == CollationId::UNKNOWN_COLLATION_ID {
        return None;
    }
    // MySQL names utf8mb3 "utf8" in older tables.
    Some(match collation.charset() {
        "utf8" => "utf8mb3".to_string(),
        other => other.to_string(),
    })
}

/// Converts bytes stored in `charset` to UTF-8; bytes that are not valid in that character set
/// are an error, never replaced.
pub fn decode(charset: &str, bytes: &[u8]) -> Result<String, String> {
    let invalid = || format!("bytes are not valid {charset}: {bytes:02x?}");
    match charset {
        "utf8mb4" | "utf8mb3" | "utf8" => String::from_utf8(bytes.to_vec()).map_err(|_| invalid()),
        "ascii" => {
            if bytes.is_ascii() {
                String::from_utf8(bytes.to_vec()).map_err(|_| invalid())
            } else {
                Err(invalid())
            }
        }
        // MySQL's latin1 is Windows-1252 with the five undefined bytes mapped to C1 controls,
        // which is exactly the WHATWG windows-1252 decoder.
        "latin1" => whatwg(encoding_rs::WINDOWS_1252, bytes).ok_or_else(invalid),
        "gbk" | "gb2312" | "gb18030" => whatwg(encoding_rs::GB18030, bytes).ok_or_else(invalid),
        "big5" => whatwg(encoding_rs::BIG5, bytes).ok_or_else(invalid),
        "sjis" | "cp932" => whatwg(encoding_rs::SHIFT_JIS, bytes).ok_or_else(invalid),
        "euckr" => whatwg(encoding_rs::EUC_KR, bytes).ok_or_else(invalid),
        "cp1251" => whatwg(encoding_rs::WINDOWS_1251, bytes).ok_or_else(invalid),
        "latin2" => whatwg(encoding_rs::ISO_8859_2, bytes).ok_or_else(invalid),
        "greek" => whatwg(encoding_rs::ISO_8859_7, bytes).ok_or_else(invalid),
        "hebrew" => whatwg(encoding_rs::ISO_8859_8, bytes).ok_or_else(invalid),
        "koi8r" => whatwg(encoding_rs::KOI8_R, bytes).ok_or_else(invalid),
        "koi8u" => whatwg(encoding_rs::KOI8_U, bytes).ok_or_else(invalid),
        other => Err(format!(
            "character set {other} is not supported; convert the column to utf8mb4"
        )),
    }
}

fn whatwg(enc: &'static encoding_rs::Encoding, bytes: &[u8]) -> Option<String> {
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collations_map_to_their_charsets() {
        assert_eq!(charset_of_collation(45).as_deref(), Some("utf8mb4"));
        assert_eq!(charset_of_collation(33).as_deref(), Some("utf8mb3"));
        assert_eq!(charset_of_collation(8).as_deref(), Some("latin1"));
        assert_eq!(charset_of_collation(28).as_deref(), Some("gbk"));
        assert_eq!(charset_of_collation(63).as_deref(), Some("binary"));
        assert_eq!(charset_of_collation(2309).as_deref(), Some("utf8mb4"));
    }

    #[test]
    fn decoding_is_exact_and_refuses_invalid_bytes() {
        assert_eq!(
            decode("latin1", &[0x63, 0x61, 0x66, 0xe9, 0x80]).as_deref(),
            Ok("café€")
        );
        assert_eq!(
            decode("gbk", &[0xd6, 0xd0, 0xce, 0xc4]).as_deref(),
            Ok("中文")
        );
        assert!(decode("utf8mb4", &[0xff]).is_err());
        assert!(decode("ascii", &[0x80]).is_err());
    }
}
