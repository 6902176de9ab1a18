//! The full-sync records of a project: its units (a table or a key range of one), how far each
//! got, and whether the stage finished. A unit's progress and its table's row count are written
//! in one transaction, only for chunks the destination acknowledged.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{sqlite, write_checkpoint, Checkpoint, FullUnit, MetaError, MetaStore};

impl MetaStore {
    /// Starts full sync: the checkpoint where incremental sync will replay from (taken before
    /// any row is read) and the units to copy, in one transaction.
    pub fn begin_full(
        &mut self,
        project: &str,
        cp: &Checkpoint,
        units: &[FullUnit],
    ) -> Result<(), MetaError> {
        let path = self.path.clone();
        let err = sqlite(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        write_checkpoint(&tx, &path, project, cp)?;
        tx.execute("DELETE FROM full_unit WHERE project = ?1", params![project])
            .map_err(err)?;
        for u in units {
            tx.execute(
                "INSERT INTO full_unit (project, unit, db, tbl, range, last_key, rows, total, done)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    project,
                    u.unit,
                    u.db,
                    u.table,
                    u.range,
                    u.last_key,
                    u.rows as i64,
                    u.total as i64,
                    u.done
                ],
            )
            .map_err(err)?;
        }
        tx.execute(
            "INSERT INTO full_stage (project, done) VALUES (?1, 0)
             ON CONFLICT(project) DO UPDATE SET done = 0",
            params![project],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Whether full sync was begun (Some) and finished (Some(true)).
    pub fn full_stage(&self, project: &str) -> Result<Option<bool>, MetaError> {
        self.conn
            .query_row(
                "SELECT done FROM full_stage WHERE project = ?1",
                params![project],
                |r| r.get::<_, bool>(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// The full-sync units of a project, in unit order.
    pub fn full_units(&self, project: &str) -> Result<Vec<FullUnit>, MetaError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT unit, db, tbl, range, last_key, rows, total, done FROM full_unit
                 WHERE project = ?1 ORDER BY unit",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![project], |r| {
                Ok(FullUnit {
                    unit: r.get(0)?,
                    db: r.get(1)?,
                    table: r.get(2)?,
                    range: r.get(3)?,
                    last_key: r.get(4)?,
                    rows: r.get::<_, i64>(5)? as u64,
                    total: r.get::<_, i64>(6)? as u64,
                    done: r.get(7)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Records an acknowledged chunk of a unit (its last key, rows added, whether the unit is
    /// finished) and the rows it adds to `table`'s count, in one transaction.
    pub fn save_unit_progress(
        &mut self,
        project: &str,
        unit: u32,
        last_key: Option<&str>,
        rows: u64,
        done: bool,
        table: &str,
    ) -> Result<(), MetaError> {
        let path = self.path.clone();
        let err = sqlite(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "UPDATE full_unit SET last_key = COALESCE(?3, last_key), rows = rows + ?4, done = ?5
             WHERE project = ?1 AND unit = ?2",
            params![project, unit, last_key, rows as i64, done],
        )
        .map_err(err)?;
        if rows > 0 {
            tx.execute(
                "INSERT INTO table_rows (project, tbl, rows) VALUES (?1, ?2, ?3)
                 ON CONFLICT(project, tbl) DO UPDATE SET rows = rows + ?3",
                params![project, table, rows as i64],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Adds full-sync units to a project (tables added to a running project) and marks its
    /// full sync unfinished, so that its next run copies them before incremental sync goes on
    /// from the stored checkpoint. The units are numbered after the existing ones; returns
    /// them as stored.
    pub fn add_full_units(
        &mut self,
        project: &str,
        units: &[FullUnit],
    ) -> Result<Vec<FullUnit>, MetaError> {
        let path = self.path.clone();
        let err = sqlite(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let next: u32 = tx
            .query_row(
                "SELECT COALESCE(MAX(unit) + 1, 0) FROM full_unit WHERE project = ?1",
                params![project],
                |r| r.get(0),
            )
            .map_err(err)?;
        let mut stored = Vec::with_capacity(units.len());
        for (i, u) in units.iter().enumerate() {
            let unit = next + i as u32;
            tx.execute(
                "INSERT INTO full_unit (project, unit, db, tbl, range, last_key, rows, total, done)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, ?6, 0)",
                params![project, unit, u.db, u.table, u.range, u.total as i64],
            )
            .map_err(err)?;
            stored.push(FullUnit {
                unit,
                last_key: None,
                rows: 0,
                done: false,
                ..u.clone()
            });
        }
        if !units.is_empty() {
            tx.execute(
                "INSERT INTO full_stage (project, done) VALUES (?1, 0)
                 ON CONFLICT(project) DO UPDATE SET done = 0",
                params![project],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(stored)
    }

    /// Drops the unfinished full-sync units of `tables` (removed from a project); the full
    /// sync is finished again when no other unit is left.
    pub fn drop_unfinished_units(
        &mut self,
        project: &str,
        tables: &[sluice_core::TableId],
    ) -> Result<(), MetaError> {
        let path = self.path.clone();
        let err = sqlite(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for t in tables {
            tx.execute(
                "DELETE FROM full_unit WHERE project = ?1 AND db = ?2 AND tbl = ?3 AND done = 0",
                params![project, t.db, t.table],
            )
            .map_err(err)?;
        }
        let left: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM full_unit WHERE project = ?1 AND done = 0",
                params![project],
                |r| r.get(0),
            )
            .map_err(err)?;
        if left == 0 {
            tx.execute(
                "UPDATE full_stage SET done = 1 WHERE project = ?1",
                params![project],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Marks full sync finished (incremental sync takes over from the stored checkpoint).
    pub fn finish_full(&self, project: &str) -> Result<(), MetaError> {
        self.conn
            .execute(
                "UPDATE full_stage SET done = 1 WHERE project = ?1",
                params![project],
            )
            .map(|_| ())
            .map_err(self.err())
    }
}
