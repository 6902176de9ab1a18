//! A table's latest state rebuilt from the messages a destination was delivered, for
//! verification: every transport reads its messages its own way and offers each here with its
//! source sequence and its place (partition, offset); the rule that decides which message of a
//! key is the state is written once.
//!
//! Invariants:
//! - Per key, the message with the highest source sequence wins; rows copied by full sync
//!   carry none and count before every change; between equal sequences the later place wins
//!   (a key's messages are in one partition, so its offsets order them).
//! - A stale message written after a later one (a higher offset, a lower sequence) changes
//!   nothing; a delete removes the key.
//! - The highest sequence offered is kept, so that a re-delivery can number its messages
//!   after everything a consumer may have seen.

use std::collections::HashMap;

use base64::Engine;
use sluice_core::verify::{Cell, CellKind, TableState, VerifyColumn};

/// What one message says of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// The row is now this (insert, update, snapshot row).
    Put(Vec<Cell>),
    /// The row was deleted (its before image, for the key).
    Delete(Vec<Cell>),
}

/// The latest message per key, by the rule above.
#[derive(Debug, Default)]
pub struct Latest {
    rows: HashMap<Vec<Cell>, (u64, (i64, i64), Option<Vec<Cell>>)>,
    max_sequence: u64,
}

impl Latest {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers a message: its source sequence (None: a full-sync row), its place (partition,
    /// offset), what it says, and how many leading cells are the key.
    pub fn offer(&mut self, sequence: Option<u64>, at: (i64, i64), image: Image, key_len: usize) {
        let seq = sequence.unwrap_or(0);
        self.max_sequence = self.max_sequence.max(seq);
        let (row, deleted) = match image {
            Image::Put(r) => (r, false),
            Image::Delete(r) => (r, true),
        };
        let key = row[..key_len.min(row.len())].to_vec();
        let newer = self
            .rows
            .get(&key)
            .is_none_or(|(s, a, _)| (seq, at) > (*s, *a));
        if newer {
            self.rows.insert(key, (seq, at, (!deleted).then_some(row)));
        }
    }

    /// The state: each key's row (deleted keys absent) and the highest sequence seen.
    pub fn finish(self) -> TableState {
        TableState {
            rows: self
                .rows
                .into_iter()
                .filter_map(|(k, (.., row))| row.map(|r| (k, r)))
                .collect(),
            max_sequence: self.max_sequence,
        }
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
        let s = l.finish();
        assert_eq!(s.max_sequence, 7);
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[&row("1", "")[..1].to_vec()], row("1", "replayed"));
    }

    #[test]
    fn oms_messages_read_as_cells() {
        let put = br#"{"recordType":"UPDATE","postStruct":{"id":"5","v":"x"},"prevStruct":{"id":"5","v":"w"}}"#;
        assert_eq!(
            oms_image(put, &cols()).unwrap(),
            Some(Image::Put(row("5", "x")))
        );
        let del = br#"{"recordType":"DELETE","prevStruct":{"id":"5","v":null}}"#;
        assert_eq!(
            oms_image(del, &cols()).unwrap(),
            Some(Image::Delete(vec![Cell::Text("5".into()), Cell::Null]))
        );
        assert_eq!(
            oms_image(br#"{"recordType":"HEARTBEAT"}"#, &cols()).unwrap(),
            None
        );
        assert!(oms_image(b"nope", &cols()).is_err());
    }
}
