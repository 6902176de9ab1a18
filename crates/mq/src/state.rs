//! Reading messages back for verification: every transport reads its messages its own way,
//! turns each into an [`Image`] here (the OMS formats), and offers it with its source sequence
//! and its place to a [`Latest`] (`sluice_core::verify`), where the rule that decides which
//! message of a key is the state is written once.

use base64::Engine;
use sluice_core::verify::{Cell, CellKind, VerifyColumn};
pub use sluice_core::verify::{Image, Latest};

/// The formats whose messages verification reads back.
pub const READABLE: &[&str] = &["oms", "oms-extended"];

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
    let row = columns
        .iter()
        .map(|c| text_cell(img.get(&c.name).unwrap_or(&serde_json::Value::Null), c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(if deleted {
        Image::Delete(row)
    } else {
        Image::Put(row)
    }))
}

/// A value written as MySQL's text form (binary strings in base64; NULL as null) as a cell of
/// `col`: text columns become the hex of their UTF-8 bytes, binary ones of their bytes.
pub fn text_cell(v: &serde_json::Value, col: &VerifyColumn) -> Result<Cell, String> {
    let text = match v {
        serde_json::Value::Null => return Ok(Cell::Null),
        serde_json::Value::String(s) => s,
        other => return Err(format!("column {}: {other} is not a string", col.name)),
    };
    Ok(Cell::Text(match col.kind {
        CellKind::Bytes if is_text(col) => hex(text.as_bytes()),
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
