//! Character sets: collation ids from the table map, and conversion of stored bytes to UTF-8.

use mysql_common::collations::{Collation, CollationId};

use super::{charset_overrides, charset_tables};

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
/// (or that the server has no Unicode character for) are an error, never replaced.
///
/// Single-byte sets use the server's own tables ([`super::charset_tables`]): MariaDB's differ
/// from the standard code pages in places. Multi-byte sets use Mozilla's WHATWG decoders
/// (`encoding_rs`); UTF-16, UCS-2 and UTF-32 are decoded here.
pub fn decode(charset: &str, bytes: &[u8]) -> Result<String, String> {
    let invalid = || format!("bytes are not valid {charset}: {bytes:02x?}");
    if let Some(table) = charset_tables::table(charset) {
        return bytes
            .iter()
            .map(|&b| match table[usize::from(b)] {
                charset_tables::NONE => None,
                u => char::from_u32(u32::from(u)),
            })
            .collect::<Option<String>>()
            .ok_or_else(invalid);
    }
    match charset {
        "utf8mb4" | "utf8mb3" | "utf8" => String::from_utf8(bytes.to_vec()).map_err(|_| invalid()),
        "gb18030" => whatwg(encoding_rs::GB18030, bytes).ok_or_else(invalid),
        cs if multi_byte(cs).is_some() => with_overrides(cs, bytes).ok_or_else(invalid),
        "utf16" | "ucs2" => utf16(bytes, u16::from_be_bytes, charset == "ucs2").ok_or_else(invalid),
        "utf16le" => utf16(bytes, u16::from_le_bytes, false).ok_or_else(invalid),
        "utf32" => bytes
            .chunks(4)
            .map(|c| {
                let a: [u8; 4] = c.try_into().ok()?;
                char::from_u32(u32::from_be_bytes(a))
            })
            .collect::<Option<String>>()
            .ok_or_else(invalid),
        other => Err(format!(
            "character set {other} is not supported; convert the column to utf8mb4"
        )),
    }
}

/// UTF-16 in the given byte order; `bmp_only` (UCS-2) refuses surrogates.
fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16, bmp_only: bool) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes.chunks(2).map(|c| unit([c[0], c[1]]));
    if bmp_only {
        return units.map(|u| char::from_u32(u32::from(u))).collect();
    }
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// How many bytes the character starting at a slice's first byte takes.
type CharWidth = fn(&[u8]) -> usize;

/// The WHATWG decoder of a multi-byte set of MariaDB's, and how long a character starting
/// with a given byte is.
fn multi_byte(charset: &str) -> Option<(&'static encoding_rs::Encoding, CharWidth)> {
    // Lead bytes of two-byte characters 0x81..=0xFE (EUC-KR, GB, Big5).
    fn double(b: &[u8]) -> usize {
        if (0x81..=0xfe).contains(&b[0]) {
            2
        } else {
            1
        }
    }
    fn shift_jis(b: &[u8]) -> usize {
        if matches!(b[0], 0x81..=0x9f | 0xe0..=0xfc) {
            2
        } else {
            1
        }
    }
    fn euc_jp(b: &[u8]) -> usize {
        match b[0] {
            0x8f => 3,
            0x8e | 0xa1..=0xfe => 2,
            _ => 1,
        }
    }
    Some(match charset {
        "gbk" | "gb2312" => (encoding_rs::GB18030, double),
        "big5" => (encoding_rs::BIG5, double),
        "euckr" => (encoding_rs::EUC_KR, double),
        "sjis" | "cp932" => (encoding_rs::SHIFT_JIS, shift_jis),
        "ujis" | "eucjpms" => (encoding_rs::EUC_JP, euc_jp),
        _ => return None,
    })
}

/// `bytes` of a [`multi_byte`] set: the WHATWG decoder, except the characters where MariaDB
/// converts otherwise ([`charset_overrides`], checked against the server by a live test).
fn with_overrides(charset: &str, bytes: &[u8]) -> Option<String> {
    let (enc, width) = multi_byte(charset)?;
    let overrides = charset_overrides::overrides(charset);
    if overrides.is_empty() {
        return whatwg(enc, bytes);
    }
    let mut out = String::with_capacity(bytes.len());
    let (mut i, mut run) = (0, 0);
    while i < bytes.len() {
        let n = width(&bytes[i..]).min(bytes.len() - i);
        let code = bytes[i..i + n]
            .iter()
            .fold(0u32, |a, b| (a << 8) | u32::from(*b));
        if n > 1 {
            if let Ok(k) = overrides.binary_search_by_key(&code, |(c, _)| *c) {
                out.push_str(&whatwg(enc, &bytes[run..i])?);
                out.push(overrides[k].1);
                run = i + n;
            }
        }
        i += n;
    }
    out.push_str(&whatwg(enc, &bytes[run..])?);
    Some(out)
}

/// The WHATWG decoder alone of a multi-byte set (what the override tables are made against).
#[doc(hidden)]
pub fn whatwg_only(charset: &str, bytes: &[u8]) -> Option<String> {
    whatwg(multi_byte(charset)?.0, bytes)
}

fn whatwg(enc: &'static encoding_rs::Encoding, bytes: &[u8]) -> Option<String> {
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| s.into_owned())
}

/// Every character set [`decode`] reads.
pub fn supported() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = charset_tables::NAMES.to_vec();
    all.extend([
        "utf8mb4", "utf8mb3", "gbk", "gb2312", "gb18030", "big5", "sjis", "cp932", "ujis",
        "eucjpms", "euckr", "utf16", "ucs2", "utf16le", "utf32",
    ]);
    all
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
