//! Re-delivery: the correction of a message-queue destination that a verification found
//! unequal. The rows of the keys that are missing or different are read again from the source
//! and delivered as fresh snapshot rows, and the keys the source does not have as deletes,
//! through the project's own sink (its topics, keys, partitions and format).
//!
//! Invariants:
//! - It runs only while the project does not (it takes the project's run lock).
//! - Each message gets a source sequence after both the checkpoint's and every sequence found
//!   in the topics (`floor`), so a consumer that drops what it has seen (docs/FORMATS.md)
//!   takes it, and a key's state rebuilt by sequence ends at the re-delivered row. The
//!   checkpoint keeps its position and takes the last sequence used, so the changes that
//!   follow are numbered after the re-delivery.
//! - The checkpoint is written only after the destination acknowledged every message.

use std::sync::Arc;

use sluice_core::sink::DeliveryItem;
use sluice_core::verify::{Cell, VerifyColumn};
use sluice_core::{Event, Op, RowChange, TableId, TableSchema, Value};

use crate::checks::table_specs;
use crate::error::RunError;
use crate::lock::RunLock;
use crate::project::Project;

/// What to deliver again for one source table.
#[derive(Debug, Clone)]
pub struct Redelivery {
    /// The source table.
    pub table: TableId,
    /// Its key columns, as the verification compared them.
    pub key: Vec<VerifyColumn>,
    /// Keys whose current source row is delivered again (missing or different).
    pub rows: Vec<Vec<Cell>>,
    /// Keys the source does not have: delivered as deletes.
    pub gone: Vec<Vec<Cell>>,
}

/// What a re-delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redelivered {
    /// Rows delivered again.
    pub rows: u64,
    /// Deletes delivered.
    pub deletes: u64,
    /// Keys asked for whose row the source no longer has (changed since the verification read
    /// it): not delivered; the next verification shows them.
    pub vanished: u64,
    /// The sequences used: after `first - 1`, up to `last`.
    pub first: u64,
    /// The last sequence used (the checkpoint's now).
    pub last: u64,
}

/// Most messages in one delivered batch.
const BATCH: usize = 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Delivers `work` again through `p`'s destination, numbering the messages after `floor` (the
/// highest sequence the destination holds) and after the checkpoint's sequence.
pub fn redeliver(p: &Project, floor: u64, work: &[Redelivery]) -> Result<Redelivered, RunError> {
    let _lock = RunLock::acquire(&p.data_dir, &p.name)?;
    let mut meta = sluice_meta::MetaStore::open(&p.data_dir)?;
    let Some(mut cp) = meta.checkpoint(&p.name)? else {
        return Err(RunError::Check(format!(
            "project {} has no checkpoint yet: run it before correcting its destination",
            p.name
        )));
    };
    let source = p.source.open().map_err(RunError::from_source)?;
    let (specs, server_id) = {
        let mut cat = source.catalog().map_err(RunError::from_source)?;
        let tables: Vec<TableId> = work.iter().map(|w| w.table.clone()).collect();
        let specs = table_specs(cat.as_mut(), p, &tables)?;
        (specs, cat.server_id().map_err(RunError::from_source)?)
    };
    let mut info = p.source_info.clone();
    info.server_id = server_id;
    let mut sink = p.destination.sink(info).map_err(RunError::Sink)?;
    sink.prepare(&specs).map_err(RunError::Sink)?;
    let mut seq = cp.sequence.max(floor);
    let mut done = Redelivered {
        first: seq + 1,
        ..Redelivered::default()
    };
    let txn = cp.txn_number + 1;
    let mut items: Vec<DeliveryItem> = Vec::new();
    for w in work {
        let key_override = p.keys.get(&w.table).map(Vec::as_slice);
        let found = source
            .rows_by_key(&w.table, key_override, &w.key, &w.rows, &w.gone)
            .map_err(RunError::from_source)?
            .ok_or_else(|| {
                RunError::Check("this source cannot read rows by key for a re-delivery".into())
            })?;
        done.vanished += (w.rows.len() as u64).saturating_sub(found.rows.len() as u64);
        let change = |schema: &Arc<TableSchema>, op: Op, row: Vec<Value>| {
            let (before, after) = match op {
                Op::Delete => (Some(row), None),
                _ => (None, Some(row)),
            };
            Event::Row(RowChange {
                op,
                table: schema.clone(),
                before,
                after,
                ts_ms: now_ms(),
                txn: String::new(),
                seq: 0,
                pos: cp.position.clone(),
            })
        };
        let ops = found
            .rows
            .into_iter()
            .map(|r| (Op::Insert, r))
            .chain(found.gone.into_iter().map(|r| (Op::Delete, r)));
        for (op, row) in ops {
            let routed = p
                .router
                .route(change(&found.schema, op, row))
                .map_err(|e| RunError::Check(format!("{e} (re-delivery); fix objects.filters")))?;
            let Some(event) = routed else { continue };
            seq = seq.checked_add(1).ok_or_else(|| {
                RunError::Check(format!(
                    "the destination holds a message with source sequence {floor}, the \
                     highest there is: no sequence is left to number a re-delivery after it; \
                     remove that message (it was not written by this project)"
                ))
            })?;
            match op {
                Op::Delete => done.deletes += 1,
                _ => done.rows += 1,
            }
            items.push(DeliveryItem {
                event,
                // A row read again is a snapshot row (OMS ROW, Debezium r); a delete is one.
                snapshot: op != Op::Delete,
                sequence: Some(seq),
                txn_number: txn,
                last_in_txn: false,
                key_change: None,
            });
        }
    }
    if let Some(last) = items.last_mut() {
        last.last_in_txn = true;
    }
    for batch in items.chunks(BATCH) {
        sink.deliver(batch).map_err(RunError::Sink)?;
    }
    done.last = seq;
    if !items.is_empty() {
        cp.sequence = seq;
        cp.txn_number = txn;
        meta.save_checkpoint(&p.name, &cp, &[])?;
    }
    Ok(done)
}
