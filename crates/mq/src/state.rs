//! Reading messages back for verification: every transport reads its messages its own way,
//! turns each into an [`Image`] here (the OMS, Canal, Maxwell and SharePlex formats), and offers it with its source sequence
//! and its place to a [`Latest`] (`sluice_core::verify`), where the rule that decides which
//! message of a key is the state is written once.

use base64::Engine;
use sluice_core::verify::{Cell, CellKind, VerifyColumn};
pub use sluice_core::verify::{Image, Latest};

/// The formats whose messages verification reads back.
pub const READABLE: &[&str] = &["oms", "oms-extended", "canal", "maxwell", "shareplex"];

/// Whether verification reads back messages of `format` written to `transport`; the error
/// says which formats it reads.
pub fn readable(transport: &str, format: &str) -> Result<(), String> {
    if READABLE.contains(&format) {
        return Ok(());
    }
    Err(format!(
        "verification reads {transport} messages in the {} formats; {format} is not built yet",
        READABLE.join(" and ")
    ))
}

/// Reads a message of `format` (one of [`READABLE`]) as the cells of `columns`: None for what
/// describes no row (DDL, heartbeat).
pub fn image(
    format: &str,
    payload: &[u8],
    columns: &[VerifyColumn],
) -> Result<Option<Image>, String> {
    match format {
        "canal" => canal_image(payload, columns),
        "maxwell" => maxwell_image(payload, columns),
        "shareplex" => shareplex_image(payload, columns),
        _ => oms_image(payload, columns),
    }
}

/// Reads a message of the OMS formats (`oms`, `oms-extended`) as the cells of `columns`:
/// None for what describes no row (DDL, heartbeat).
pub fn oms_image(payload: &[u8], columns: &[VerifyColumn]) -> Result<Option<Image>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not OMS JSON: {e}"))?;
    let (img, deleted) = match v["recordType"].as_str().unwrap_or("") {
        "INSERT" | "UPDATE" | "ROW" => (&v["postStruct"], false),
        "DELETE" => (&v["prevStruct"], true),
        _ => return Ok(None),
    };
    text_row(img, columns, Binary::Base64).map(|row| Some(Image::of(deleted, row)))
}

/// Reads a Canal FlatMessage (its one row in `data`; binary values as Latin-1 text) as the
/// cells of `columns`: None for DDL.
pub fn canal_image(payload: &[u8], columns: &[VerifyColumn]) -> Result<Option<Image>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not Canal JSON: {e}"))?;
    if v["isDdl"].as_bool() == Some(true) {
        return Ok(None);
    }
    let deleted = match v["type"].as_str().unwrap_or("") {
        "INSERT" | "UPDATE" => false,
        "DELETE" => true,
        _ => return Ok(None),
    };
    let Some(img) = v["data"].as_array().and_then(|d| d.last()) else {
        return Ok(None);
    };
    text_row(img, columns, Binary::Latin1).map(|row| Some(Image::of(deleted, row)))
}

/// Reads a SharePlex message (MySQL's text, binary values as base64) as the cells of
/// `columns`: an update's row is its `key` (the whole row before) with the changed columns of
/// `data` over it. None for what describes no row (a truncate).
pub fn shareplex_image(payload: &[u8], columns: &[VerifyColumn]) -> Result<Option<Image>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not SharePlex JSON: {e}"))?;
    let (img, deleted) = match v["meta"]["op"].as_str().unwrap_or("") {
        "ins" => (v["data"].clone(), false),
        "del" => (v["data"].clone(), true),
        "upd" => {
            let mut row = v["key"].clone();
            if let (Some(r), Some(changed)) = (row.as_object_mut(), v["data"].as_object()) {
                r.extend(changed.iter().map(|(k, x)| (k.clone(), x.clone())));
            }
            (row, false)
        }
        _ => return Ok(None),
    };
    text_row(&img, columns, Binary::Base64).map(|row| Some(Image::of(deleted, row)))
}

/// Reads a Maxwell message (`data`, its values as JSON: numbers as numbers, strings as text,
/// binary strings in base64, inline JSON, spatial values as `{srid, wkb}`) as the cells of
/// `columns`: None for DDL and heartbeats.
pub fn maxwell_image(payload: &[u8], columns: &[VerifyColumn]) -> Result<Option<Image>, String> {
    use serde_json::value::RawValue;
    let bad = |e: serde_json::Error| format!("not Maxwell JSON: {e}");
    let top: std::collections::HashMap<String, Box<RawValue>> =
        serde_json::from_slice(payload).map_err(bad)?;
    let kind: String = match top.get("type") {
        Some(t) => serde_json::from_str(t.get()).map_err(bad)?,
        None => return Ok(None),
    };
    let deleted = match kind.as_str() {
        "insert" | "update" | "bootstrap-insert" => false,
        "delete" => true,
        _ => return Ok(None),
    };
    let Some(data) = top.get("data") else {
        return Ok(None);
    };
    let data: std::collections::HashMap<String, Box<RawValue>> =
        serde_json::from_str(data.get()).map_err(bad)?;
    let row = columns
        .iter()
        .map(|c| match data.get(&c.name).map(|r| r.get()) {
            None | Some("null") => Ok(Cell::Null),
            Some(raw) if raw.starts_with('"') => {
                let v: serde_json::Value = serde_json::from_str(raw).map_err(bad)?;
                text_cell(&v, c, Binary::Base64)
            }
            Some(raw) if c.is_spatial() => {
                let v: serde_json::Value = serde_json::from_str(raw).map_err(bad)?;
                text_cell(&v["wkb"], c, Binary::Base64)
            }
            // Inline JSON keeps its text; a number its digits.
            Some(raw) if c.kind == CellKind::Bytes => Ok(Cell::Text(hex(raw.as_bytes()))),
            Some(raw) => Ok(Cell::Text(raw.to_string())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Image::of(deleted, row)))
}

/// The cells of `columns` from an image written as MySQL's text (column name -> value).
fn text_row(
    img: &serde_json::Value,
    columns: &[VerifyColumn],
    binary: Binary,
) -> Result<Vec<Cell>, String> {
    let null = serde_json::Value::Null;
    columns
        .iter()
        .map(|c| text_cell(img.get(&c.name).unwrap_or(&null), c, binary))
        .collect()
}

/// How a format writes a binary value as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// Standard base64 (OMS).
    Base64,
    /// Each byte as the code point of the same number (Canal).
    Latin1,
}

/// A value written as MySQL's text form (binary strings as `binary` says; NULL as null) as a
/// cell of `col`: text columns become the hex of their UTF-8 bytes, binary ones of their bytes.
pub fn text_cell(
    v: &serde_json::Value,
    col: &VerifyColumn,
    binary: Binary,
) -> Result<Cell, String> {
    let text = match v {
        serde_json::Value::Null => return Ok(Cell::Null),
        serde_json::Value::String(s) => s,
        other => return Err(format!("column {}: {other} is not a string", col.name)),
    };
    Ok(Cell::Text(match col.kind {
        CellKind::Bytes if is_text(col) => hex(text.as_bytes()),
        CellKind::Bytes if binary == Binary::Latin1 => hex(&text
            .chars()
            .map(|c| u8::try_from(u32::from(c)))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| format!("column {}: not Latin-1 bytes", col.name))?),
        CellKind::Bytes => hex(&base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("column {}: not base64: {e}", col.name))?),
        _ => text.clone(),
    }))
}

/// Whether a [`CellKind::Bytes`] column holds text (it has a character set other than binary).
pub fn is_text(col: &VerifyColumn) -> bool {
    col.charset
        .as_deref()
        .is_some_and(|cs| !cs.is_empty() && cs != "binary")
}

/// Upper-case hex of bytes, as cells hold them.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<VerifyColumn> {
        vec![
            VerifyColumn::new("id", "int", None),
            VerifyColumn::new("v", "varchar(10)", Some("utf8mb4")),
        ]
    }

    fn row(id: &str, v: &str) -> Vec<Cell> {
        vec![Cell::Text(id.into()), Cell::Text(hex(v.as_bytes()))]
    }

    #[test]
    fn the_highest_sequence_wins_then_the_later_place() {
        let mut l = Latest::new();
        l.offer(None, (0, 0), Image::Put(row("1", "copy")), 1);
        l.offer(Some(7), (0, 5), Image::Put(row("1", "seven")), 1);
        // Stale: later offset, lower sequence.
        l.offer(Some(3), (0, 9), Image::Put(row("1", "stale")), 1);
        // Equal sequence (a replay): the later offset wins.
        l.offer(Some(7), (0, 11), Image::Put(row("1", "replayed")), 1);
        l.offer(Some(2), (0, 1), Image::Put(row("2", "two")), 1);
        l.offer(Some(4), (0, 2), Image::Delete(row("2", "two")), 1);
        assert_eq!(l.max_sequence(), 7);
        assert_eq!(l.len(), 1);
        assert_eq!(l.get(&row("1", "")[..1]), Some(&row("1", "replayed")));
        assert_eq!(l.get(&row("2", "")[..1]), None);
    }

    #[test]
    fn maxwell_messages_read_as_cells() {
        let cols = vec![
            VerifyColumn::new("id", "bigint(20) unsigned", None),
            VerifyColumn::new("j", "longtext", Some("utf8mb4")),
            VerifyColumn::new("b", "varbinary(4)", Some("binary")),
        ];
        let put =
            br#"{"type":"insert","data":{"id":18446744073709551615,"j":{"a": [1]},"b":"AP8="}}"#;
        assert_eq!(
            maxwell_image(put, &cols),
            Ok(Some(Image::Put(vec![
                Cell::Text("18446744073709551615".into()),
                Cell::Text(hex(br#"{"a": [1]}"#)),
                Cell::Text("00FF".into())
            ])))
        );
    }

    #[test]
    fn canal_messages_read_as_cells() {
        let cols = vec![
            VerifyColumn::new("id", "int", None),
            VerifyColumn::new("b", "varbinary(4)", Some("binary")),
        ];
        let put = r#"{"type":"UPDATE","isDdl":false,"data":[{"id":"5","b":"\u0000\u00ff"}]}"#;
        assert_eq!(
            canal_image(put.as_bytes(), &cols),
            Ok(Some(Image::Put(vec![
                Cell::Text("5".into()),
                Cell::Text("00FF".into())
            ])))
        );
        assert_eq!(
            canal_image(br#"{"type":"ALTER","isDdl":true,"data":null}"#, &cols),
            Ok(None)
        );
    }

    #[test]
    fn oms_messages_read_as_cells() {
        let put = br#"{"recordType":"UPDATE","postStruct":{"id":"5","v":"x"},"prevStruct":{"id":"5","v":"w"}}"#;
        assert_eq!(oms_image(put, &cols()), Ok(Some(Image::Put(row("5", "x")))));
        let del = br#"{"recordType":"DELETE","prevStruct":{"id":"5","v":null}}"#;
        assert_eq!(
            oms_image(del, &cols()),
            Ok(Some(Image::Delete(vec![
                Cell::Text("5".into()),
                Cell::Null
            ])))
        );
        assert_eq!(
            oms_image(br#"{"recordType":"HEARTBEAT"}"#, &cols()),
            Ok(None)
        );
        assert!(oms_image(b"nope", &cols()).is_err());
    }
}
