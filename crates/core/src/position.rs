//! Source positions: totally ordered within one source, serialisable, enough to resume.
//!
//! A [`Position`] is a coordinate in a source's change log: the kind of log, a file (segment)
//! name, an offset in it, and the transaction's label when the log has one. The source that
//! makes a position is the only one that interprets it (where to resume, what a file name
//! means); the pipeline only orders, prints and stores positions, and formats copy the parts
//! into their source fields (Canal's `logfileName`, Debezium's `file`/`pos`/`gtid`).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a PostgreSQL WAL position (an LSN in `offset`), shown as PostgreSQL shows it.
pub const LSN_KIND: &str = "lsn";

/// A place in a source's change log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The kind of log (`binlog` for the MySQL family).
    kind: String,
    /// The log file holding the event (`mariadb-bin.000003`); empty for a log without files.
    file: String,
    /// Byte offset of the event in the file (or in the log).
    offset: u64,
    /// Label of the transaction the event belongs to (a GTID: `0-1-42` for MariaDB,
    /// `uuid:42` for MySQL), when the source has one. It does not take part in the order.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    gtid: Option<String>,
}

impl Position {
    /// A position in a log of `kind`, at `offset` of `file`.
    pub fn new(kind: impl Into<String>, file: impl Into<String>, offset: u64) -> Self {
        Self {
            kind: kind.into(),
            file: file.into(),
            offset,
            gtid: None,
        }
    }

    /// The same position, labelled with its transaction's GTID.
    pub fn with_gtid(mut self, gtid: Option<String>) -> Self {
        self.gtid = gtid;
        self
    }

    /// The kind of log.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The log file (empty for a log without files).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The offset in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The transaction label, when the source has one.
    pub fn gtid(&self) -> Option<&str> {
        self.gtid.as_deref()
    }

    /// The numeric suffix of the file name (`mariadb-bin.000003` -> 3; 0 when it has none),
    /// which orders files even when the suffix outgrows its zero padding.
    pub fn file_index(&self) -> u64 {
        self.file_parts().0
    }

    fn file_parts(&self) -> (u64, &str) {
        match self.file.rsplit_once('.') {
            Some((base, n)) => (n.parse().unwrap_or(0), base),
            None => (0, self.file.as_str()),
        }
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Position {
    /// Kind, then file order, then offset. The GTID does not take part: it labels the
    /// transaction.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, ab) = self.file_parts();
        let (b, bb) = other.file_parts();
        (self.kind.as_str(), a, ab, self.offset).cmp(&(other.kind.as_str(), b, bb, other.offset))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == LSN_KIND {
            // As PostgreSQL shows an LSN: two hexadecimal halves.
            return write!(f, "{:X}/{:X}", self.offset >> 32, self.offset & 0xffff_ffff);
        }
        if self.file.is_empty() {
            write!(f, "{}", self.offset)?;
        } else {
            write!(f, "{}:{}", self.file, self.offset)?;
        }
        if let Some(g) = &self.gtid {
            write!(f, " (gtid {g})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_file_number_then_offset_and_store_as_before() {
        let a = Position::new("binlog", "mariadb-bin.000009", 900);
        let b = Position::new("binlog", "mariadb-bin.000010", 4);
        assert!(a < b, "file 10 after file 9 whatever the padding");
        let g = b.clone().with_gtid(Some("0-1-7".into()));
        assert_eq!(
            g.cmp(&b),
            Ordering::Equal,
            "the GTID labels, it does not order"
        );
        assert_eq!(g.to_string(), "mariadb-bin.000010:4 (gtid 0-1-7)");
        // The stored form of checkpoints written before positions became one struct.
        let stored = r#"{"kind":"binlog","file":"mariadb-bin.000010","offset":4,"gtid":"0-1-7"}"#;
        assert_eq!(serde_json::to_string(&g).ok().as_deref(), Some(stored));
        let back: Position = serde_json::from_str(stored).expect("reads");
        assert_eq!(back, g);
    }
}
