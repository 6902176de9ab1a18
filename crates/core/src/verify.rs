//! What verification asks of each side (the source, and a destination that can be queried):
//! key-range chunks of a table, each side computing a digest of a chunk itself, and the rows
//! of a chunk when the digests differ. Both sides render every value in one canonical text
//! form ([`Cell`]) chosen by the *source's* column kinds, so that a digest or a row compares
//! equal exactly when the values delivered are equal.
//!
//! Invariants:
//! - A [`Cell`] is the value's exact text (numbers and temporals as the server prints them;
//!   strings and binaries as their bytes in hex); it is also its SQL literal.
//! - Two digests are comparable only when both sides report the same [`VerifySide::dialect`].

use std::collections::HashMap;

use crate::TableId;

/// How a column's values are rendered (from the source column's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// Integers, DECIMAL, FLOAT, DOUBLE, YEAR: the server's text, as is.
    Number,
    /// BIT: its unsigned integer value.
    Bits,
    /// Strings, binaries, ENUM, SET, JSON: the bytes, in hex.
    Bytes,
    /// DATE, TIME, DATETIME, TIMESTAMP (in UTC): the server's text, with its fraction.
    Temporal,
}

impl CellKind {
    /// The kind of a column of `column_type` (as `information_schema.columns.column_type`
    /// shows it: `decimal(10,2) unsigned`, `varchar(20)`, `timestamp(6)`).
    pub fn of(column_type: &str) -> Self {
        let t = column_type.trim().to_ascii_lowercase();
        let base = t.split(['(', ' ']).next().unwrap_or("");
        match base {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
            | "numeric" | "float" | "double" | "real" | "year" => CellKind::Number,
            "bit" => CellKind::Bits,
            "date" | "time" | "datetime" | "timestamp" => CellKind::Temporal,
            _ => CellKind::Bytes,
        }
    }
}

/// A column compared: its name on both sides, how it is rendered, and the character set of a
/// string column (a key value is given in it, so the server compares by the column's
/// collation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyColumn {
    /// The name.
    pub name: String,
    /// How its values are rendered.
    pub kind: CellKind,
    /// A text column's character set (none: binary or not text).
    pub charset: Option<String>,
    /// The source column's type as `information_schema` shows it (`timestamp(3)`), for a
    /// destination that writes values by type (DataHub's TIMESTAMP fields).
    pub column_type: String,
}

impl VerifyColumn {
    /// The column `name` of type `column_type` (its kind follows from the type).
    pub fn new(name: &str, column_type: &str, charset: Option<&str>) -> Self {
        Self {
            name: name.to_string(),
            kind: CellKind::of(column_type),
            charset: charset.map(str::to_string),
            column_type: column_type.to_string(),
        }
    }
}

impl VerifyColumn {
    /// The base of the column's type (`float`, `year`, `geometry`), lower case.
    pub fn base_type(&self) -> String {
        let t = self.column_type.trim().to_ascii_lowercase();
        t.split(['(', ' ']).next().unwrap_or("").to_string()
    }

    /// Whether the column holds a spatial value (compared as its WKB where it travels as
    /// one, in messages).
    pub fn is_spatial(&self) -> bool {
        matches!(
            self.base_type().as_str(),
            "geometry"
                | "point"
                | "linestring"
                | "polygon"
                | "multipoint"
                | "multilinestring"
                | "multipolygon"
                | "geometrycollection"
        )
    }

    /// A cell in the form in which two renderings of one value agree where a server's text
    /// and a message's text of it may be spelled differently: FLOAT and DOUBLE as the 4- and
    /// 8-byte value the text reads as (the shortest text that reads back as it), YEAR as its
    /// number (`0000` and `0` are the year 0).
    pub fn settled(&self, cell: Cell) -> Cell {
        let Cell::Text(t) = &cell else { return cell };
        let again = match self.base_type().as_str() {
            "float" => t.parse::<f32>().ok().map(|v| format!("{v:e}")),
            "double" | "real" => t.parse::<f64>().ok().map(|v| format!("{v:e}")),
            "year" => t.parse::<u16>().ok().map(|v| v.to_string()),
            _ => None,
        };
        again.map_or(cell, Cell::Text)
    }
}

/// One value in canonical text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Its text: digits for [`CellKind::Number`] and [`CellKind::Bits`], hex for
    /// [`CellKind::Bytes`], the server's text for [`CellKind::Temporal`].
    Text(String),
}

impl Cell {
    /// The SQL literal of this cell for a column of `kind` (MySQL family).
    pub fn literal(&self, kind: CellKind) -> String {
        match (self, kind) {
            (Cell::Null, _) => "NULL".into(),
            (Cell::Text(t), CellKind::Number | CellKind::Bits) => t.clone(),
            (Cell::Text(t), CellKind::Bytes) => format!("X'{t}'"),
            (Cell::Text(t), CellKind::Temporal) => format!("'{}'", t.replace('\'', "''")),
        }
    }

    /// The cell as a reader sees it: text for numbers and temporals, the bytes decoded as
    /// UTF-8 (lossy) for hex.
    pub fn shown(&self, kind: CellKind) -> String {
        match (self, kind) {
            (Cell::Null, _) => "NULL".into(),
            (Cell::Text(t), CellKind::Bytes) => {
                let bytes: Vec<u8> = (0..t.len() / 2)
                    .filter_map(|i| u8::from_str_radix(t.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect();
                format!("{:?}", String::from_utf8_lossy(&bytes))
            }
            (Cell::Text(t), _) => t.clone(),
        }
    }
}

/// A chunk of a table: the rows whose key is after `after` and at most `upto` (none: open).
#[derive(Debug, Clone)]
pub struct ChunkQuery<'a> {
    /// The table on this side (the destination's name after rename).
    pub table: &'a TableId,
    /// The columns compared, in order; the key columns come first.
    pub columns: &'a [VerifyColumn],
    /// How many of `columns` are the key.
    pub key_len: usize,
    /// The key of the last row of the previous chunk.
    pub after: Option<&'a [Cell]>,
    /// The key of the last row of this chunk.
    pub upto: Option<&'a [Cell]>,
    /// A row filter (SQL condition) that only the source applies.
    pub filter: Option<&'a str>,
    /// Render text columns (a [`CellKind::Bytes`] column with a character set) as the hex of
    /// their UTF-8 bytes, to compare with text decoded from messages.
    pub utf8_text: bool,
}

/// A chunk's digest: row count and two order-independent sums of a per-row checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Digest {
    /// Rows.
    pub rows: u64,
    /// Sum of the rows' checksums.
    pub sum: u64,
    /// XOR of the rows' checksums.
    pub xor: u64,
}

/// A statement that makes a destination row equal to the source's.
#[derive(Debug, Clone, Copy)]
pub enum Fix<'a> {
    /// Insert this row (all of the query's columns).
    Insert(&'a [Cell]),
    /// Delete the row with this key.
    Delete(&'a [Cell]),
    /// Set these columns (indexes into the query's columns) to the row's values.
    Update(&'a [Cell], &'a [usize]),
}

/// A verification failure on one side.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The server cannot be reached now; trying again later can help.
    #[error("{0}")]
    Unavailable(String),
    /// The server refused, or the table cannot be compared (a missing table or column).
    #[error("{0}")]
    Definite(String),
}

/// One side of a verification, on its own connection.
pub trait VerifySide: Send {
    /// The family of SQL and value rendering this side uses; digests of two sides compare
    /// only when their dialects are equal (otherwise rows are compared).
    fn dialect(&self) -> &'static str;
    /// The key of the `n`-th row after `q.after` (the end of the chunk), or None when fewer
    /// rows follow (the chunk is then open-ended).
    fn boundary(&mut self, q: &ChunkQuery<'_>, n: usize) -> Result<Option<Vec<Cell>>, VerifyError>;
    /// The chunk's digest, computed by the server.
    fn digest(&mut self, q: &ChunkQuery<'_>) -> Result<Digest, VerifyError>;
    /// The chunk's rows (`q.columns` in order), in key order.
    fn rows(&mut self, q: &ChunkQuery<'_>) -> Result<Vec<Vec<Cell>>, VerifyError>;
    /// The rows with these keys (`q.after`/`q.upto` ignored).
    fn rows_by_key(
        &mut self,
        q: &ChunkQuery<'_>,
        keys: &[Vec<Cell>],
    ) -> Result<Vec<Vec<Cell>>, VerifyError>;
    /// The statement of a correction, in this side's SQL.
    fn correction(&self, q: &ChunkQuery<'_>, fix: Fix<'_>) -> String;
    /// Runs statements in one transaction (a destination's correction).
    fn apply(&mut self, statements: &[String]) -> Result<(), VerifyError>;
}

/// What one message says of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// The row is now this (insert, update, snapshot row).
    Put(Vec<Cell>),
    /// The row was deleted (its before image, for the key).
    Delete(Vec<Cell>),
}

impl Image {
    /// A deleted row's image, or a row's.
    pub fn of(deleted: bool, row: Vec<Cell>) -> Self {
        if deleted {
            Image::Delete(row)
        } else {
            Image::Put(row)
        }
    }
}

/// A key's latest message: its sequence, its place (partition, offset) and the row (None:
/// deleted).
type Entry = (u64, (i64, i64), Option<Vec<Cell>>);

/// A destination table's state rebuilt from the messages it was delivered: the latest message
/// per key. Per key, the message with the highest source sequence wins; rows copied by full
/// sync carry none and count before every change; between equal sequences the later place
/// (partition, offset) wins. A stale message written after a later one (a higher offset, a
/// lower sequence) changes nothing; a delete removes the key. The highest sequence offered is
/// kept, so that a re-delivery can number its messages after everything a consumer may have
/// seen.
#[derive(Debug, Default)]
pub struct Latest {
    rows: HashMap<Vec<Cell>, Entry>,
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

    /// The row of `key` now (None: never seen, or deleted).
    pub fn get(&self, key: &[Cell]) -> Option<&Vec<Cell>> {
        self.rows.get(key).and_then(|(.., row)| row.as_ref())
    }

    /// The keys that have a row now.
    pub fn keys(&self) -> impl Iterator<Item = &Vec<Cell>> {
        self.rows
            .iter()
            .filter(|(_, (.., row))| row.is_some())
            .map(|(k, _)| k)
    }

    /// How many keys have a row now.
    pub fn len(&self) -> usize {
        self.keys().count()
    }

    /// Whether no key has a row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest source sequence offered (0: none had one).
    pub fn max_sequence(&self) -> u64 {
        self.max_sequence
    }
}

/// A destination that cannot be queried by key range (a message queue): its latest state per
/// key is rebuilt from what was delivered.
pub trait StateSide: Send {
    /// Offers every message of destination table `to` not read yet by this side (the first
    /// time, all of them; then those that arrived since) up to its end now to `into`, each as
    /// the cells of `columns` (the key first; text columns as UTF-8 hex).
    fn read(
        &mut self,
        to: &TableId,
        columns: &[VerifyColumn],
        key_len: usize,
        into: &mut Latest,
    ) -> Result<(), VerifyError>;
}
