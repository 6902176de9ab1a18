//! Binlog positions: how this source reads and makes the pipeline's opaque [`Position`]s.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use sluice_core::Position;

/// The kind of log this source's positions are in.
pub const KIND: &str = "binlog";

/// A place in a MySQL-family binary log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// Binlog file name, e.g. `mariadb-bin.000003`.
    pub file: String,
    /// Byte offset of the event within the file.
    pub offset: u64,
    /// GTID of the transaction the event belongs to, when the source has GTIDs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gtid: Option<String>,
}

impl BinlogPosition {
    /// At `offset` of `file`.
    pub fn new(file: impl Into<String>, offset: u64) -> Self {
        Self {
            file: file.into(),
            offset,
            gtid: None,
        }
    }

    /// As the pipeline's position.
    pub fn to_position(&self) -> Position {
        Position::new(KIND, self.file.clone(), self.offset).with_gtid(self.gtid.clone())
    }

    /// A position this source made; an error names one of another kind of log.
    pub fn from_position(p: &Position) -> Result<Self, String> {
        if p.kind() != KIND {
            return Err(format!(
                "position {p} is in a {} log, not a binlog: the checkpoint belongs to another kind of source",
                p.kind()
            ));
        }
        Ok(Self {
            file: p.file().to_string(),
            offset: p.offset(),
            gtid: p.gtid().map(str::to_string),
        })
    }

    /// The numeric suffix of the file name (`mariadb-bin.000003` -> 3), which orders files
    /// even when the suffix outgrows its zero padding.
    fn file_index(&self) -> (u64, &str) {
        match self.file.rsplit_once('.') {
            Some((base, n)) => (n.parse().unwrap_or(0), base),
            None => (0, self.file.as_str()),
        }
    }
}

impl From<&BinlogPosition> for Position {
    fn from(b: &BinlogPosition) -> Self {
        b.to_position()
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BinlogPosition {
    /// File order, then offset. The GTID does not take part: it labels the transaction.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, ab) = self.file_index();
        let (b, bb) = other.file_index();
        (a, ab, self.offset).cmp(&(b, bb, other.offset))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_position().fmt(f)
    }
}
