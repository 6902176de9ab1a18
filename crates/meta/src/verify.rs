//! The results of a project's verifications: per table, the last run's counts and the first
//! differences found (as JSON), written when the table's comparison ends.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{MetaError, MetaStore};

/// One table's last verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRecord {
    /// The source table (`db.table`).
    pub table: String,
    /// Its name at the destination.
    pub dest: String,
    /// When it started (ms since the epoch).
    pub at_ms: i64,
    /// How long it took (ms).
    pub took_ms: i64,
    /// Source rows compared.
    pub rows: u64,
    /// Rows equal on both sides.
    pub equal: u64,
    /// Rows missing at the destination.
    pub missing: u64,
    /// Rows at the destination that the source does not have.
    pub extra: u64,
    /// Rows present on both sides with different values.
    pub different: u64,
    /// The first differences, as the verifier reports them (JSON).
    pub detail: String,
}

impl MetaStore {
    /// Stores a table's verification (replacing the previous one).
    pub fn save_verify(&self, project: &str, r: &VerifyRecord) -> Result<(), MetaError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO verify_result
                   (project, tbl, dest, at_ms, took_ms, rows, equal, missing, extra, different, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    project,
                    r.table,
                    r.dest,
                    r.at_ms,
                    r.took_ms,
                    r.rows as i64,
                    r.equal as i64,
                    r.missing as i64,
                    r.extra as i64,
                    r.different as i64,
                    r.detail
                ],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// The last verification of each table of a project, by table.
    pub fn verify_results(&self, project: &str) -> Result<Vec<VerifyRecord>, MetaError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT tbl, dest, at_ms, took_ms, rows, equal, missing, extra, different, detail
                 FROM verify_result WHERE project = ?1 ORDER BY tbl",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![project], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok(VerifyRecord {
                    table: r.get(0)?,
                    dest: r.get(1)?,
                    at_ms: r.get(2)?,
                    took_ms: r.get(3)?,
                    rows: n(4)?,
                    equal: n(5)?,
                    missing: n(6)?,
                    extra: n(7)?,
                    different: n(8)?,
                    detail: r.get(9)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }
}
