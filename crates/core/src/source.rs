//! The source seam: what every source (MySQL-family binlogs now; PostgreSQL, Oracle and the
//! OceanBase log proxy later) provides, so that the pipeline runs every stage without knowing
//! which source it reads.
//!
//! A source provides three things:
//! - a [`Catalog`]: its tables, their columns, keys and definitions, and the current end of
//!   its change log (what the prechecks and the schema step read);
//! - for full sync, a hand-over position, a plan of units and [`SnapshotReader`]s that read
//!   them in chunks, resumable after the last acknowledged chunk;
//! - a change stream from a checkpoint ([`Source::stream`]), in commit order.
//!
//! Invariants a source keeps (docs/SOURCES.md):
//! - Positions it emits are totally ordered; a Commit's position is a safe resume point.
//! - Its own state (for MySQL, the schema history) travels in the stream as
//!   [`Streamed::State`] right after the event that changed it; the pipeline stores the state
//!   as of each checkpoint beside it and hands it back on resume. The source owns the only
//!   copy that is ever interpreted.
//! - Every change after the hand-over position is in the stream; a row read by full sync
//!   shows a state at or after that position.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::event::Event;
use crate::position::Position;
use crate::schema::{TableDef, TableId, TableSchema};
use crate::value::Value;

/// Why a source failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// Unreachable or interrupted (network, a restart): trying again later can work.
    #[error("{0}")]
    Unavailable(String),
    /// The change log no longer holds what the checkpoint needs (purged binlog, lost WAL):
    /// only a new start can make the destination whole.
    #[error("{0}")]
    Purged(String),
    /// Retrying cannot help (bad settings, a missing privilege, an unsupported type or DDL);
    /// the message names the object, the position when there is one, and the fix.
    #[error("{0}")]
    Definite(String),
}

impl SourceError {
    /// Whether trying again later can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Unavailable(_))
    }

    /// The same kind of error with its message rewritten by `f`.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            SourceError::Unavailable(m) => SourceError::Unavailable(f(m)),
            SourceError::Purged(m) => SourceError::Purged(f(m)),
            SourceError::Definite(m) => SourceError::Definite(f(m)),
        }
    }

    /// The same kind of error, saying what was being done (`full sync: ...`).
    pub fn context(self, what: &str) -> Self {
        self.map_message(|m| format!("{what}: {m}"))
    }
}

/// A column as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    /// Its name.
    pub name: String,
    /// Whether it is part of the primary key.
    pub in_primary_key: bool,
}

/// What the prechecks and the schema step read of a source, on one connection.
pub trait Catalog {
    /// Every user table (not the server's own schemas).
    fn tables(&mut self) -> Result<Vec<TableId>, SourceError>;
    /// A table's columns, in order.
    fn columns(&mut self, table: &TableId) -> Result<Vec<CatalogColumn>, SourceError>;
    /// Every table that has a primary key (one read for all: a selection can hold thousands).
    fn primary_keyed(&mut self) -> Result<std::collections::HashSet<TableId>, SourceError>;
    /// The columns of a NOT NULL unique key of a table without a primary key, if it has one.
    fn unique_key(&mut self, table: &TableId) -> Result<Option<Vec<String>>, SourceError>;
    /// A table's whole definition, for destinations that create tables.
    fn definition(&mut self, table: &TableId) -> Result<TableDef, SourceError>;
    /// The current end of the change log (where `--until caught-up` stops).
    fn end(&mut self) -> Result<Position, SourceError>;
    /// The source server's id, for formats that carry it (0 when it has none).
    fn server_id(&mut self) -> Result<u32, SourceError>;
    /// What must hold on the source before anything is read (its log settings, our replica
    /// id, the user's privileges, log retention, keys of `tables`), each finding with its fix.
    /// `rows` is the estimated number of rows full sync will copy (0 without full sync).
    fn precheck(&mut self, tables: &[TableId], rows: u64) -> Result<Findings, SourceError>;
}

/// One precheck finding: what was checked, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The item checked (`binlog_format`, `privileges`, `server_id`, ...).
    pub item: String,
    /// What was found.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.problem, self.fix)
    }
}

/// A precheck's findings: failures refuse a start (unless forced), warnings are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// The items checked, in order (passed or not).
    pub checked: Vec<String>,
    /// What makes the project impossible or lossy.
    pub failures: Vec<Finding>,
    /// What the user should know.
    pub warnings: Vec<Finding>,
}

/// One unit of full sync as the source plans it: a table, or a key range of a large one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPlan {
    /// The table.
    pub table: TableId,
    /// The range, in the source's own notation (stored, handed back to the reader).
    pub range: String,
    /// Estimated rows (for progress).
    pub estimated_rows: u64,
}

/// A unit to read, with where its copy resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitWork {
    /// The unit's number.
    pub unit: u32,
    /// The table.
    pub table: TableId,
    /// Its range, as planned.
    pub range: String,
    /// The last key of the last acknowledged chunk, as the reader reported it.
    pub after: Option<String>,
}

/// Rows read by full sync, in key order within their unit.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The table's schema.
    pub schema: Arc<TableSchema>,
    /// Whole rows, in column order.
    pub rows: Vec<Vec<Value>>,
    /// Where the unit resumes once this chunk is acknowledged (stored as is).
    pub last_key: Option<String>,
    /// The unit is finished with this chunk.
    pub done: bool,
    /// The first chunk of a table read whole from the start again (no key to resume by):
    /// the destination drops what an interrupted earlier copy left first.
    pub fresh: bool,
}

/// Reads full-sync units; one per reader thread, each on its own connection.
pub trait SnapshotReader: Send {
    /// Reads `work` from where it resumes, handing each chunk to `emit` (which returns false
    /// to stop); returns once the unit is read or `stop` is raised.
    fn read(
        &mut self,
        work: &UnitWork,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Chunk) -> bool,
    ) -> Result<(), SourceError>;
}

/// What the change stream hands the pipeline.
// Events are the common case and move by value; boxing each would cost an allocation per row
// for the sake of the two rare variants.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Streamed {
    /// A change, in commit order.
    Event(Event),
    /// The source's state after the event just before it (stored with the next checkpoint).
    State(Arc<String>),
    /// Bytes of change log read since the last report (for metrics).
    Read(u64),
}

/// Rows read by key for a re-delivery ([`Source::rows_by_key`]).
#[derive(Debug, Clone)]
pub struct KeyedRows {
    /// The table's schema now.
    pub schema: Arc<TableSchema>,
    /// The rows found, whole.
    pub rows: Vec<Vec<Value>>,
    /// The keys the source does not have, as rows (key values, NULL elsewhere).
    pub gone: Vec<Vec<Value>>,
}

/// A source.
pub trait Source: Send + Sync {
    /// The catalog, on a connection of its own.
    fn catalog(&self) -> Result<Box<dyn Catalog + '_>, SourceError>;

    /// Whether the project starts from the log's current end (rather than a past position).
    fn starts_now(&self) -> bool;

    /// Sets up on the source what streaming `tables` (the project's selection) needs, before
    /// the hand-over position is taken or the stream opens (a PostgreSQL replication slot and
    /// publication); called at the start of every run, so it is idempotent.
    fn prepare(&self, tables: &[TableId]) -> Result<(), SourceError> {
        let _ = tables;
        Ok(())
    }

    /// The pipeline stored a checkpoint at `position`: everything before it is acknowledged
    /// by the destination, so a source that holds its log for us may free it (PostgreSQL
    /// confirms the slot's flush position). Called from the writer thread while `stream`
    /// runs on the reader's; it must not block.
    fn checkpointed(&self, position: &Position) {
        let _ = position;
    }

    /// What the project keeps on the source now, for status (a PostgreSQL slot and the WAL
    /// it retains); None when it keeps nothing there.
    fn retained(&self) -> Result<Option<String>, SourceError> {
        Ok(None)
    }

    /// Frees what the project keeps on the source (a replication slot, a publication it
    /// made), when the project is released.
    fn release(&self) -> Result<(), SourceError> {
        Ok(())
    }

    /// For a start in the past: takes each of `defs` (the definitions of `tables` now) back
    /// to the start position, reading the log up to `end`. A table created since becomes
    /// None (its replayed CREATE TABLE makes it).
    fn definitions_at_start(
        &self,
        tables: &[TableId],
        end: &Position,
        defs: &mut [Option<TableDef>],
    ) -> Result<(), SourceError>;

    /// The position incremental sync replays from after full sync: every transaction before
    /// it is visible to a copy that starts afterwards.
    fn handover(&self) -> Result<Position, SourceError>;

    /// Splits `tables` into units for `readers` parallel readers (`keys`: the key columns of
    /// tables without a primary key).
    fn plan(
        &self,
        tables: &[TableId],
        keys: &HashMap<TableId, Vec<String>>,
        chunk_rows: usize,
        readers: usize,
    ) -> Result<Vec<UnitPlan>, SourceError>;

    /// A reader of units, `chunk_rows` rows per chunk.
    fn snapshot_reader(
        &self,
        keys: HashMap<TableId, Vec<String>>,
        chunk_rows: usize,
    ) -> Result<Box<dyn SnapshotReader>, SourceError>;

    /// For a unit copied whole (a table without a key), the position its copy was read at,
    /// from the `last_key` its reader reported: the stream skips the table's changes before
    /// it (they are in the copy).
    fn copied_at(&self, last_key: &str) -> Option<Position>;

    /// The state of a source that has read nothing yet.
    fn initial_state(&self) -> String;

    /// One side of a verification, on a connection of its own (None: this source cannot be
    /// verified yet).
    fn verifier(&self) -> Result<Option<Box<dyn crate::verify::VerifySide>>, SourceError> {
        Ok(None)
    }

    /// For a re-delivery after a verification: the current rows of `table` whose key columns
    /// (`key`, as the verification compares them, in `schema`'s key order) equal one of `keys`
    /// (canonical cells, text as UTF-8 hex), whole and typed as full sync reads them; and for
    /// each of `gone` (keys the source does not have), a row holding that key and NULL
    /// elsewhere, to be delivered as a delete. `key_override` names the key of a table without
    /// a primary key. None: this source cannot re-read rows by key.
    fn rows_by_key(
        &self,
        table: &TableId,
        key_override: Option<&[String]>,
        key: &[crate::verify::VerifyColumn],
        keys: &[Vec<crate::verify::Cell>],
        gone: &[Vec<crate::verify::Cell>],
    ) -> Result<Option<KeyedRows>, SourceError> {
        let _ = (table, key_override, key, keys, gone);
        Ok(None)
    }

    /// Streams changes from `from` (a checkpoint's position and the state stored with it),
    /// or from the project's configured start, until `emit` breaks or the source fails.
    fn stream(
        &self,
        from: Option<(&Position, &str)>,
        emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
    ) -> Result<(), SourceError>;
}
