//! What the destination's tables are like, read from its `information_schema`: the columns of
//! a table shards write into, and which tables can take a change in place.

use std::collections::{HashMap, HashSet};

use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::Conn;
use sluice_core::sink::{DeliveryItem, SinkError};
use sluice_core::{Event, TableId};

use crate::session::connect;

/// Per destination table written in place: the columns of its primary key (see
/// [`crate::apply::Landing::key_only`]).
pub(crate) type KeyOnly = HashMap<TableId, Vec<String>>;
use crate::{unavailable, MysqlSink};

impl MysqlSink {
    /// Sharded: reads the columns of the destination tables these rows go to (those not read
    /// yet), and reports once each shard column the destination no longer has.
    pub(crate) fn read_dest_columns(&mut self, items: &[DeliveryItem]) -> Result<(), SinkError> {
        if self.cfg.shard.is_none() {
            return Ok(());
        }
        // Once per schema in the batch, not per row.
        let mut seen: HashSet<*const sluice_core::TableSchema> = HashSet::new();
        for item in items {
            let Event::Row(r) = &item.event else { continue };
            if !seen.insert(std::sync::Arc::as_ptr(&r.table)) {
                continue;
            }
            let dest = self.dest_of(&r.table.id);
            if !self.dest_columns.contains_key(&dest) {
                let names: Vec<String> = self.read_on_first(
                    "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                     WHERE table_schema = ? AND table_name = ?",
                    &dest,
                    "read the destination table's columns",
                )?;
                if names.is_empty() {
                    // Not there (yet): write rows whole and let the destination say what is wrong.
                    continue;
                }
                let names = names.into_iter().map(|n| n.to_lowercase()).collect();
                self.dest_columns.insert(dest.clone(), names);
            }
            let Some(has) = self.dest_columns.get(&dest) else {
                continue;
            };
            for c in &r.table.columns {
                let name = c.name.to_lowercase();
                if !has.contains(&name) && self.warned.insert((dest.clone(), name)) {
                    tracing::warn!(
                        "column {} of {} is not in the destination table {dest} (dropped by \
                         another shard's DDL?): its values are not written",
                        c.name,
                        r.table.id
                    );
                }
            }
        }
        Ok(())
    }

    /// The destination tables of this batch's changes (not copied rows, not a shard's) whose
    /// only unique key is their primary key, with its columns: read for every batch, so an
    /// index added at the destination while the project runs is seen at the next batch.
    pub(crate) fn read_key_only(&mut self, items: &[DeliveryItem]) -> Result<KeyOnly, SinkError> {
        let mut out = HashMap::new();
        if self.cfg.shard.is_some() || self.cfg.foreign_key_checks {
            return Ok(out);
        }
        let mut seen: HashSet<TableId> = HashSet::new();
        for item in items {
            let Event::Row(r) = &item.event else { continue };
            if item.snapshot || r.table.primary_key.is_empty() || r.op == sluice_core::Op::Delete {
                continue;
            }
            let dest = self.dest_of(&r.table.id);
            if !seen.insert(dest.clone()) {
                continue;
            }
            let indexes: Vec<(String, String, i64)> = self.read_on_probe(
                "SELECT CAST(index_name AS CHAR), CAST(column_name AS CHAR), \
                 CAST(non_unique AS SIGNED) FROM information_schema.statistics \
                 WHERE table_schema = ? AND table_name = ?",
                &dest,
                "read the destination table's keys",
            )?;
            let mut primary: Vec<String> = Vec::new();
            let mut other_unique = false;
            for (index, column, non_unique) in indexes {
                if index.eq_ignore_ascii_case("PRIMARY") {
                    primary.push(column.to_lowercase());
                } else if non_unique == 0 {
                    other_unique = true;
                }
            }
            if !primary.is_empty() && !other_unique {
                primary.sort();
                out.insert(dest, primary);
            }
        }
        Ok(out)
    }

    /// Rows of `sql` about table `dest`, read on the probe session, which the writers' lanes
    /// do not hold (connected first when there is none).
    fn read_on_probe<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
        dest: &TableId,
        what: &str,
    ) -> Result<Vec<T>, SinkError> {
        if self.probe.is_none() {
            self.probe = Some(self.rt.block_on(connect(&self.endpoint))?);
        }
        read(&self.rt, &mut self.probe, sql, dest, what)
    }

    /// Rows of `sql` about table `dest`, read on the first writer.
    fn read_on_first<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
        dest: &TableId,
        what: &str,
    ) -> Result<Vec<T>, SinkError> {
        let mut none = None;
        let slot = self.conns.first_mut().unwrap_or(&mut none);
        read(&self.rt, slot, sql, dest, what)
    }
}

/// Rows of `sql` about table `dest` (its database and name as the two parameters), read on
/// the session in `slot`. A failure drops that session: a lost one is replaced when the batch
/// is sent again, instead of being used for every retry.
fn read<T: FromRow + Send + 'static>(
    rt: &tokio::runtime::Runtime,
    slot: &mut Option<Conn>,
    sql: &str,
    dest: &TableId,
    what: &str,
) -> Result<Vec<T>, SinkError> {
    let conn = slot
        .as_mut()
        .ok_or_else(|| SinkError::Unavailable("writer lost".into()))?;
    let read = rt.block_on(conn.exec(sql, (&dest.db, &dest.table)));
    read.map_err(|e| {
        *slot = None;
        unavailable(what)(e)
    })
}
