//! Source positions: totally ordered within one source, serialisable, enough to resume.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A place in a MySQL-family binary log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// Binlog file name, e.g. `mariadb-bin.000003`.
    pub file: String,
    /// Byte offset of the event within the file.
    pub offset: u64,
    /// GTID of the transaction the event belongs to (`0-1-42` for MariaDB, `uuid:42` for
    /// MySQL), when the source has GTIDs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gtid: Option<String>,
}

impl BinlogPosition {
    /// The numeric suffix of the file name (`mariadb-bin.000003` -> 3), which orders files
    /// even when the suffix outgrows its zero padding.
    fn file_index(&self) -> (u64, &str) {
        match self.file.rsplit_once('.') {
            Some((base, n)) => (n.parse().unwrap_or(0), base),
            None => (0, self.file.as_str()),
        }
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
        write!(f, "{}:{}", self.file, self.offset)?;
        if let Some(g) = &self.gtid {
            write!(f, " (gtid {g})")?;
        }
        Ok(())
    }
}

/// A position in some source. Opaque to the pipeline; ordered within one source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// A MySQL-family binlog position.
    Binlog(BinlogPosition),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Binlog(p) => p.fmt(f),
        }
    }
}
