//! Change events: what a source emits, in commit order.

use std::sync::Arc;

use crate::position::Position;
use crate::schema::{TableId, TableSchema};
use crate::value::Value;

/// The kind of a row change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A new row.
    Insert,
    /// A changed row (before and after images).
    Update,
    /// A removed row.
    Delete,
}

impl Op {
    /// Lower-case name: `insert`, `update`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// One row changed by one committed transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// Insert, update or delete.
    pub op: Op,
    /// The table schema in force at this row's position.
    pub table: Arc<TableSchema>,
    /// The row before the change (update, delete).
    pub before: Option<Vec<Value>>,
    /// The row after the change (insert, update).
    pub after: Option<Vec<Value>>,
    /// Commit time in milliseconds since the epoch (the source's event time).
    pub ts_ms: u64,
    /// Transaction id: the GTID when the source has one, else the position of its first event.
    pub txn: String,
    /// Sequence of this change within its transaction, from 0.
    pub seq: u64,
    /// Position of the event that carried the row.
    pub pos: Position,
}

impl RowChange {
    /// This update as the delete of its before image and the insert of its after image (both
    /// keeping its place: transaction, sequence, position); None for an insert or a delete.
    /// Message-queue destinations deliver an update that moves its row's key this way, each
    /// half under its own key, so that per-key order holds for the old key and the new one.
    pub fn split(&self) -> Option<(RowChange, RowChange)> {
        if self.op != Op::Update {
            return None;
        }
        let (before, after) = (self.before.clone()?, self.after.clone()?);
        let half = |op, before, after| RowChange {
            op,
            before,
            after,
            table: self.table.clone(),
            ts_ms: self.ts_ms,
            txn: self.txn.clone(),
            seq: self.seq,
            pos: self.pos.clone(),
        };
        Some((
            half(Op::Delete, Some(before), None),
            half(Op::Insert, None, Some(after)),
        ))
    }
}

/// Which half of a split key change (see [`RowChange::split`]) a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChange {
    /// The delete of the old key.
    Old,
    /// The insert of the new key.
    New,
}

impl KeyChange {
    /// `old` or `new`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyChange::Old => "old",
            KeyChange::New => "new",
        }
    }
}

/// A schema change (or other statement that is not row data) in the change log.
#[derive(Debug, Clone, PartialEq)]
pub struct Ddl {
    /// The database the statement ran in (may be empty).
    pub db: String,
    /// The table it changes, when known.
    pub table: Option<TableId>,
    /// For a rename (`RENAME TABLE a TO b`, `ALTER TABLE a RENAME TO b`): the new name. After
    /// routing, the new name at the destination, or None when the project does not select it.
    /// Boxed: rare, and it would make every event bigger.
    pub to: Option<Box<TableId>>,
    /// The statement text.
    pub sql: String,
    /// Commit time in milliseconds since the epoch.
    pub ts_ms: u64,
    /// Transaction id.
    pub txn: String,
    /// Sequence within the transaction.
    pub seq: u64,
    /// Position of the statement's event.
    pub pos: Position,
}

/// What a source emits, in commit order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A transaction starts.
    Begin {
        /// Transaction id.
        txn: String,
        /// Position of its first event (where a resume restarts).
        pos: Position,
        /// Event time, ms.
        ts_ms: u64,
    },
    /// A row change.
    Row(RowChange),
    /// A DDL statement.
    Ddl(Ddl),
    /// A transaction committed; `pos` is just past its last event (a safe resume point).
    Commit {
        /// Transaction id.
        txn: String,
        /// Position just past the commit.
        pos: Position,
        /// Commit time, ms.
        ts_ms: u64,
    },
    /// The source is idle but alive; `pos` is its current end.
    Heartbeat {
        /// Current end of the change log.
        pos: Position,
        /// Time of the heartbeat, ms.
        ts_ms: u64,
    },
}
