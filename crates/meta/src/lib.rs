//! The embedded metadata store: one SQLite file (`meta.db`) under a project's data directory.
//!
//! Invariant: a checkpoint (position, source sequence, transaction number, schema history,
//! rows per table) is written in one SQLite transaction with `synchronous=FULL`, so after any
//! crash the store holds either the old checkpoint or the new one, whole.
//!
//! A sharded project's checkpoint is the vector of its instances' checkpoints, kept in ONE row
//! (`vector_checkpoint`): each part (`PROJECT.INSTANCE`, registered with [`MetaStore::
//! register_parts`]) replaces its own component in a transaction that rewrites the row, so the
//! vector is always read and written whole.
#![deny(missing_docs)]

mod full;
mod verify;

pub use verify::VerifyRecord;

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sluice_core::Position;

/// A metadata-store failure.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// SQLite failed.
    #[error("metadata store {path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A stored value could not be read back.
    #[error("metadata store {path}: corrupt {what}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Which value.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Where a project may resume, as one unit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Resume position (the end of the last fully acknowledged transaction).
    pub position: Position,
    /// Source sequence of the last acknowledged change.
    pub sequence: u64,
    /// Number of the last acknowledged transaction.
    pub txn_number: u64,
    /// The schema history (JSON) valid for every position at or after `position`.
    pub history: String,
    /// Source time of the checkpoint, ms.
    pub ts_ms: u64,
}

/// A project's recorded state.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Current stage (`schema`, `full`, `incremental`).
    pub stage: String,
    /// NotStarted, Running, Paused, Failed, Completed, Stopped.
    pub state: String,
    /// Last error or note.
    pub message: String,
    /// The checkpoint, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Wall-clock ms when the checkpoint was written.
    pub updated_ms: u64,
    /// Rows delivered per table (`db.table`), incremental and full.
    pub rows: Vec<(String, u64)>,
    /// Full-sync units (empty when full sync never ran).
    pub full: Vec<FullUnit>,
    /// Whether full sync finished.
    pub full_done: bool,
}

impl Status {
    /// Full-sync progress per table (`db.table`, by name): rows copied, rows estimated, and
    /// whether every unit of the table finished.
    pub fn full_tables(&self) -> std::collections::BTreeMap<String, (u64, u64, bool)> {
        let mut tables = std::collections::BTreeMap::new();
        for u in &self.full {
            let e = tables
                .entry(format!("{}.{}", u.db, u.table))
                .or_insert((0, 0, true));
            e.0 += u.rows;
            e.1 += u.total;
            e.2 &= u.done;
        }
        tables
    }
}

/// One slice of a table that full sync copies, and how far it got.
#[derive(Debug, Clone, PartialEq)]
pub struct FullUnit {
    /// Number of the unit within the project.
    pub unit: u32,
    /// Source database.
    pub db: String,
    /// Source table.
    pub table: String,
    /// The key range (opaque to the store).
    pub range: String,
    /// Key of the last acknowledged row (opaque), None before the first chunk.
    pub last_key: Option<String>,
    /// Rows acknowledged.
    pub rows: u64,
    /// Estimated rows of the unit (for progress).
    pub total: u64,
    /// Every row of the unit was acknowledged.
    pub done: bool,
}

/// The store's schema, created when missing.
const SCHEMA: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS checkpoint (
               project TEXT PRIMARY KEY, position TEXT NOT NULL, sequence INTEGER NOT NULL,
               txn_number INTEGER NOT NULL, history TEXT NOT NULL, ts_ms INTEGER NOT NULL,
               updated_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS state (
               project TEXT PRIMARY KEY, stage TEXT NOT NULL, state TEXT NOT NULL,
               message TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS table_rows (
               project TEXT NOT NULL, tbl TEXT NOT NULL, rows INTEGER NOT NULL,
               PRIMARY KEY (project, tbl));
             CREATE TABLE IF NOT EXISTS control (
               project TEXT PRIMARY KEY, paused INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS full_stage (
               project TEXT PRIMARY KEY, done INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS full_unit (
               project TEXT NOT NULL, unit INTEGER NOT NULL, db TEXT NOT NULL, tbl TEXT NOT NULL,
               range TEXT NOT NULL, last_key TEXT, rows INTEGER NOT NULL, total INTEGER NOT NULL,
               done INTEGER NOT NULL, PRIMARY KEY (project, unit));
             CREATE TABLE IF NOT EXISTS part (
               project TEXT PRIMARY KEY, parent TEXT NOT NULL, instance TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS vector_checkpoint (
               project TEXT PRIMARY KEY, parts TEXT NOT NULL, updated_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS verify_result (
               project TEXT NOT NULL, tbl TEXT NOT NULL, dest TEXT NOT NULL, at_ms INTEGER NOT NULL,
               took_ms INTEGER NOT NULL, rows INTEGER NOT NULL, equal INTEGER NOT NULL,
               missing INTEGER NOT NULL, extra INTEGER NOT NULL, different INTEGER NOT NULL,
               detail TEXT NOT NULL, PRIMARY KEY (project, tbl));";

/// The vector checkpoint of a sharded project: per instance, its checkpoint.
pub type VectorCheckpoint = std::collections::BTreeMap<String, Checkpoint>;

/// The store.
pub struct MetaStore {
    conn: Connection,
    path: String,
}

impl MetaStore {
    /// Opens (creating if needed) `dir/meta.db`.
    pub fn open(dir: &Path) -> Result<Self, MetaError> {
        let file = dir.join("meta.db");
        let path = file.display().to_string();
        let err = sqlite(&path);
        std::fs::create_dir_all(dir).map_err(|e| MetaError::Corrupt {
            path: path.clone(),
            what: "data directory".into(),
            reason: e.to_string(),
        })?;
        let conn = Connection::open(&file).map_err(err)?;
        // Several runs (the parts of a sharded project, `sluice status`) share the file: wait
        // for a lock instead of failing, and take write locks up front (IMMEDIATE) so a
        // reader never has to upgrade.
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        // Switching a new file to WAL needs it alone for a moment; several processes opening it
        // at once may be told it is locked without waiting: try again briefly.
        let mut tries = 0;
        loop {
            let r = conn.execute_batch(SCHEMA);
            match r {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 50 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20 * tries));
                }
                other => {
                    other.map_err(err)?;
                    break;
                }
            }
        }
        Ok(Self { conn, path })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> MetaError + '_ {
        |source| MetaError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The project's checkpoint, if it has one (a part's: its component of the vector).
    pub fn checkpoint(&self, project: &str) -> Result<Option<Checkpoint>, MetaError> {
        read_checkpoint(&self.conn, &self.path, project)
    }

    /// Records that `parts` (instance name, part project name) make up the sharded project
    /// `parent`, whose checkpoint is then one vector.
    pub fn register_parts(
        &mut self,
        parent: &str,
        parts: &[(String, String)],
    ) -> Result<(), MetaError> {
        let path = self.path.clone();
        let err = sqlite(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for (instance, name) in parts {
            tx.execute(
                "INSERT INTO part (project, parent, instance) VALUES (?1, ?2, ?3)
                 ON CONFLICT(project) DO UPDATE SET parent = ?2, instance = ?3",
                params![name, parent, instance],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The vector checkpoint of a sharded project (empty when none of its parts has one).
    pub fn vector_checkpoint(&self, parent: &str) -> Result<VectorCheckpoint, MetaError> {
        read_vector(&self.conn, &self.path, parent)
    }

    /// Writes the checkpoint and adds the rows delivered since the last one, in one transaction.
    pub fn save_checkpoint(
        &mut self,
        project: &str,
        cp: &Checkpoint,
        rows: &[(String, u64)],
    ) -> Result<(), MetaError> {
        let path = self.path.clone();
        let err = sqlite(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        write_checkpoint(&tx, &path, project, cp)?;
        for (table, n) in rows {
            tx.execute(
                "INSERT INTO table_rows (project, tbl, rows) VALUES (?1, ?2, ?3)
                 ON CONFLICT(project, tbl) DO UPDATE SET rows = rows + ?3",
                params![project, table, *n as i64],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Records the project's stage and state.
    pub fn set_state(
        &self,
        project: &str,
        stage: &str,
        state: &str,
        message: &str,
    ) -> Result<(), MetaError> {
        self.conn
            .execute(
                "INSERT INTO state (project, stage, state, message) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(project) DO UPDATE SET stage = ?2, state = ?3, message = ?4",
                params![project, stage, state, message],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Forgets everything the store holds of a project and of its parts (a deleted project):
    /// a new project of the same name starts afresh.
    pub fn forget(&mut self, project: &str) -> Result<(), MetaError> {
        let path = self.path.clone();
        let err = sqlite(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // Parts are `project.INSTANCE` (compared as a prefix: LIKE would take `_` as a wildcard).
        let prefix = format!("{project}.");
        for table in [
            "checkpoint",
            "state",
            "table_rows",
            "control",
            "full_stage",
            "full_unit",
            "vector_checkpoint",
            "verify_result",
        ] {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE project = ?1 OR substr(project, 1, length(?2)) = ?2"
                ),
                params![project, prefix],
            )
            .map_err(err)?;
        }
        tx.execute(
            "DELETE FROM part WHERE parent = ?1 OR project = ?1",
            params![project],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Asks a running project to pause (true) or resume (false); it looks within a second.
    pub fn set_paused(&self, project: &str, paused: bool) -> Result<(), MetaError> {
        self.conn
            .execute(
                "INSERT INTO control (project, paused) VALUES (?1, ?2)
                 ON CONFLICT(project) DO UPDATE SET paused = ?2",
                params![project, paused],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Whether the project was asked to pause.
    pub fn paused(&self, project: &str) -> Result<bool, MetaError> {
        Ok(self
            .conn
            .query_row(
                "SELECT paused FROM control WHERE project = ?1",
                params![project],
                |r| r.get::<_, bool>(0),
            )
            .optional()
            .map_err(self.err())?
            .unwrap_or(false))
    }

    /// The part projects of the sharded project `parent` (empty for any other project).
    pub fn parts(&self, parent: &str) -> Result<Vec<String>, MetaError> {
        let mut st = self
            .conn
            .prepare("SELECT project FROM part WHERE parent = ?1 ORDER BY 1")
            .map_err(self.err())?;
        let rows = st
            .query_map(params![parent], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Projects known to the store.
    pub fn projects(&self) -> Result<Vec<String>, MetaError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT project FROM state UNION SELECT project FROM checkpoint \
                 UNION SELECT project FROM vector_checkpoint ORDER BY 1",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// The project's status.
    pub fn status(&self, project: &str) -> Result<Status, MetaError> {
        let (stage, state, message) = self
            .conn
            .query_row(
                "SELECT stage, state, message FROM state WHERE project = ?1",
                params![project],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err())?
            .unwrap_or_else(|| ("".into(), "NotStarted".into(), "".into()));
        let updated_ms: i64 = self
            .conn
            .query_row(
                "SELECT updated_ms FROM checkpoint WHERE project = ?1
                 UNION ALL SELECT v.updated_ms FROM vector_checkpoint v JOIN part p
                   ON p.parent = v.project WHERE p.project = ?1",
                params![project],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?
            .unwrap_or(0);
        let mut st = self
            .conn
            .prepare("SELECT tbl, rows FROM table_rows WHERE project = ?1 ORDER BY tbl")
            .map_err(self.err())?;
        let rows = st
            .query_map(params![project], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(self.err())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err())?;
        Ok(Status {
            stage,
            state,
            message,
            checkpoint: self.checkpoint(project)?,
            updated_ms: updated_ms as u64,
            rows,
            full: self.full_units(project)?,
            full_done: self.full_stage(project)?.unwrap_or(false),
        })
    }
}

fn sqlite(path: &str) -> impl Fn(rusqlite::Error) -> MetaError + Copy + '_ {
    move |source| MetaError::Sqlite {
        path: path.to_string(),
        source,
    }
}

fn corrupt(path: &str, what: &str, e: impl std::fmt::Display) -> MetaError {
    MetaError::Corrupt {
        path: path.to_string(),
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// The sharded project and instance `project` is a part of, if it is one.
fn part_of(
    conn: &Connection,
    path: &str,
    project: &str,
) -> Result<Option<(String, String)>, MetaError> {
    conn.query_row(
        "SELECT parent, instance FROM part WHERE project = ?1",
        params![project],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(sqlite(path))
}

fn read_vector(conn: &Connection, path: &str, parent: &str) -> Result<VectorCheckpoint, MetaError> {
    let parts: Option<String> = conn
        .query_row(
            "SELECT parts FROM vector_checkpoint WHERE project = ?1",
            params![parent],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite(path))?;
    match parts {
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| corrupt(path, "vector checkpoint", e))
        }
        None => Ok(VectorCheckpoint::new()),
    }
}

fn read_checkpoint(
    conn: &Connection,
    path: &str,
    project: &str,
) -> Result<Option<Checkpoint>, MetaError> {
    if let Some((parent, instance)) = part_of(conn, path, project)? {
        if let Some(cp) = read_vector(conn, path, &parent)?.remove(&instance) {
            return Ok(Some(cp));
        }
        // A store written before parts shared one vector keeps the part's own row.
    }
    let row = conn
        .query_row(
            "SELECT position, sequence, txn_number, history, ts_ms FROM checkpoint WHERE project = ?1",
            params![project],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()
        .map_err(sqlite(path))?;
    let Some((pos, sequence, txn_number, history, ts_ms)) = row else {
        return Ok(None);
    };
    let position =
        serde_json::from_str(&pos).map_err(|e| corrupt(path, "checkpoint position", e))?;
    Ok(Some(Checkpoint {
        position,
        sequence: sequence as u64,
        txn_number: txn_number as u64,
        history,
        ts_ms: ts_ms as u64,
    }))
}

/// Writes `project`'s checkpoint inside the caller's transaction: a part replaces its component
/// of the parent's vector (read and rewritten whole under the transaction's write lock).
fn write_checkpoint(
    conn: &Connection,
    path: &str,
    project: &str,
    cp: &Checkpoint,
) -> Result<(), MetaError> {
    if let Some((parent, instance)) = part_of(conn, path, project)? {
        let mut vector = read_vector(conn, path, &parent)?;
        vector.insert(instance, cp.clone());
        let json =
            serde_json::to_string(&vector).map_err(|e| corrupt(path, "vector checkpoint", e))?;
        conn.execute(
            "INSERT INTO vector_checkpoint (project, parts, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(project) DO UPDATE SET parts = ?2, updated_ms = ?3",
            params![parent, json, now_ms() as i64],
        )
        .map_err(sqlite(path))?;
        // The part's own row (from a store written before the vector) is superseded.
        conn.execute(
            "DELETE FROM checkpoint WHERE project = ?1",
            params![project],
        )
        .map_err(sqlite(path))?;
        return Ok(());
    }
    let pos =
        serde_json::to_string(&cp.position).map_err(|e| corrupt(path, "checkpoint position", e))?;
    conn.execute(
        "INSERT INTO checkpoint (project, position, sequence, txn_number, history, ts_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(project) DO UPDATE SET position = ?2, sequence = ?3, txn_number = ?4,
           history = ?5, ts_ms = ?6, updated_ms = ?7",
        params![
            project,
            pos,
            cp.sequence as i64,
            cp.txn_number as i64,
            cp.history,
            cp.ts_ms as i64,
            now_ms() as i64
        ],
    )
    .map_err(sqlite(path))?;
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_and_its_counters_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("sluice-meta-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cp = Checkpoint {
            position: Position::new("binlog", "b.000003", 1234).with_gtid(Some("0-1-9".into())),
            sequence: 41,
            txn_number: 7,
            history: "{\"tables\":{}}".into(),
            ts_ms: 99,
        };
        {
            let mut m = MetaStore::open(&dir).expect("open");
            assert_eq!(m.checkpoint("p").expect("read"), None);
            m.save_checkpoint("p", &cp, &[("d.t".into(), 3)])
                .expect("save");
            m.save_checkpoint("p", &cp, &[("d.t".into(), 2)])
                .expect("save");
            m.set_state("p", "incremental", "Running", "")
                .expect("state");
        }
        let m = MetaStore::open(&dir).expect("reopen");
        let s = m.status("p").expect("status");
        assert_eq!(s.checkpoint, Some(cp));
        assert_eq!(s.rows, vec![("d.t".to_string(), 5)]);
        assert_eq!(s.state, "Running");
        assert_eq!(m.projects().expect("projects"), vec!["p".to_string()]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn cp_at(offset: u64) -> Checkpoint {
        Checkpoint {
            position: Position::new("binlog", "b.000001", offset),
            sequence: offset,
            txn_number: 1,
            history: "{}".into(),
            ts_ms: offset,
        }
    }

    #[test]
    fn the_parts_of_a_sharded_project_share_one_vector_checkpoint() {
        let dir = std::env::temp_dir().join(format!("sluice-meta-v-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut m = MetaStore::open(&dir).expect("open");
        // A part's own row from before the vector is read until the part writes again.
        m.save_checkpoint("sh.a", &cp_at(4), &[])
            .expect("legacy row");
        m.register_parts(
            "sh",
            &[("a".into(), "sh.a".into()), ("b".into(), "sh.b".into())],
        )
        .expect("register");
        assert_eq!(m.checkpoint("sh.a").expect("read"), Some(cp_at(4)));
        assert!(m.vector_checkpoint("sh").expect("vector").is_empty());
        m.save_checkpoint("sh.b", &cp_at(200), &[("d.t".into(), 1)])
            .expect("save b");
        m.save_checkpoint("sh.a", &cp_at(100), &[]).expect("save a");
        m.save_checkpoint("sh.a", &cp_at(150), &[]).expect("save a");
        let m = MetaStore::open(&dir).expect("reopen");
        let v = m.vector_checkpoint("sh").expect("vector");
        assert_eq!(v.len(), 2);
        assert_eq!(v["a"], cp_at(150));
        assert_eq!(v["b"], cp_at(200));
        assert_eq!(m.checkpoint("sh.a").expect("read"), Some(cp_at(150)));
        assert_eq!(m.checkpoint("sh.b").expect("read"), Some(cp_at(200)));
        assert_eq!(
            m.status("sh.b").expect("status").rows,
            vec![("d.t".to_string(), 1)]
        );
        // The vector is the only copy: the legacy row is gone.
        assert!(m.projects().expect("projects").contains(&"sh".to_string()));
        let legacy: i64 = m
            .conn
            .query_row("SELECT COUNT(*) FROM checkpoint", [], |r| r.get(0))
            .expect("count");
        assert_eq!(legacy, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
