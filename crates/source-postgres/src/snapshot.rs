//! Full sync: one unit per table, read in key order in chunks (`WHERE (key) > (last) ORDER
//! BY key LIMIT n`), each chunk resumable after the last key the destination acknowledged.
//!
//! A table without a usable key is read whole in one snapshot that a temporary replication
//! slot exports: the slot's consistent point S is exactly the boundary of that snapshot (it
//! sees every transaction whose commit lies before S, the slot decodes every one after), so
//! the stream skips the table's changes before S ([`copied_at`]) and no row is copied twice
//! or missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_core::source::{Chunk, SnapshotReader, SourceError, UnitPlan, UnitWork};
use sluice_core::{Position, TableId, Value};

use crate::catalog::{regclass, table_info, TableInfo};
use crate::session::{cell, classify_wire, ident, literal, rows, Session};
use crate::{lsn_position, PostgresSource};

const WHOLE: &str = "lsn:";

/// One unit per table, with its estimated rows.
pub(crate) fn plan(s: &Session, tables: &[TableId]) -> Result<Vec<UnitPlan>, SourceError> {
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        let est = s
            .rows(&format!(
                "SELECT greatest(reltuples, 0)::int8 FROM pg_class WHERE oid = {}",
                regclass(t)
            ))?
            .first()
            .map(|r| cell(r, 0).parse().unwrap_or(0))
            .unwrap_or(0);
        out.push(UnitPlan {
            table: t.clone(),
            range: String::new(),
            estimated_rows: est,
        });
    }
    Ok(out)
}

/// Where the stream takes over a table copied whole.
pub(crate) fn copied_at(last_key: &str) -> Option<Position> {
    last_key
        .strip_prefix(WHOLE)
        .and_then(|l| l.parse().ok())
        .map(lsn_position)
}

/// A reader of units on a connection of its own.
pub(crate) struct Reader {
    source: PostgresSource,
    session: Session,
    keys: HashMap<TableId, Vec<String>>,
    chunk_rows: usize,
}

impl Reader {
    pub(crate) fn new(
        source: PostgresSource,
        keys: HashMap<TableId, Vec<String>>,
        chunk_rows: usize,
    ) -> Result<Self, SourceError> {
        let session = Session::open(source.config())?;
        Ok(Self {
            source,
            session,
            keys,
            chunk_rows: chunk_rows.max(1),
        })
    }

    fn decode(info: &TableInfo, row: &[Option<String>]) -> Result<Vec<Value>, SourceError> {
        info.columns
            .iter()
            .zip(row)
            .map(|(c, v)| {
                c.ty.decode(v.as_deref()).map_err(|e| {
                    SourceError::Definite(format!(
                        "full sync of {} column {}: {e}",
                        info.id, c.name
                    ))
                })
            })
            .collect()
    }

    fn decode_all(
        info: &TableInfo,
        got: &[Vec<Option<String>>],
    ) -> Result<Vec<Vec<Value>>, SourceError> {
        got.iter().map(|r| Self::decode(info, r)).collect()
    }

    fn select_list(info: &TableInfo) -> String {
        info.columns
            .iter()
            .map(|c| ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn read_keyed(
        &mut self,
        info: &TableInfo,
        key: &[String],
        work: &UnitWork,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Chunk) -> bool,
    ) -> Result<(), SourceError> {
        let schema = info.schema();
        let at: Vec<usize> = key
            .iter()
            .map(|k| {
                info.columns
                    .iter()
                    .position(|c| &c.name == k)
                    .ok_or_else(|| {
                        SourceError::Definite(format!("{}: key column {k} does not exist", info.id))
                    })
            })
            .collect::<Result<_, _>>()?;
        let key_list = key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ");
        let table = format!("{}.{}", ident(&info.id.db), ident(&info.id.table));
        let mut after: Option<Vec<String>> = match &work.after {
            Some(a) => Some(serde_json::from_str(a).map_err(|_| {
                SourceError::Definite(format!(
                    "{}: a stored key {a:?} this source did not write",
                    info.id
                ))
            })?),
            None => None,
        };
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let filter = match &after {
                Some(last) => format!(
                    " WHERE ({key_list}) > ({})",
                    last.iter()
                        .zip(&at)
                        .map(|(v, &i)| format!("{}::{}", literal(v), info.columns[i].ty.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => String::new(),
            };
            let got = self.session.rows(&format!(
                "SELECT {} FROM {table}{filter} ORDER BY {key_list} LIMIT {}",
                Self::select_list(info),
                self.chunk_rows
            ))?;
            let done = got.len() < self.chunk_rows;
            let last = match got.last() {
                Some(r) => Some(at.iter().map(|&i| cell(r, i)).collect::<Vec<_>>()),
                None => after.clone(),
            };
            let rows = Self::decode_all(info, &got)?;
            let chunk = Chunk {
                schema: schema.clone(),
                rows,
                last_key: last.as_ref().and_then(|l| serde_json::to_string(l).ok()),
                done,
                fresh: false,
            };
            if !emit(chunk) || done {
                return Ok(());
            }
            after = last;
        }
    }

    /// A table without a key, whole, in the snapshot a temporary slot exports.
    fn read_whole(
        &mut self,
        info: &TableInfo,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Chunk) -> bool,
    ) -> Result<(), SourceError> {
        let schema = info.schema();
        let table = format!("{}.{}", ident(&info.id.db), ident(&info.id.table));
        let select = format!("SELECT {} FROM {table}", Self::select_list(info));
        let chunk_rows = self.chunk_rows;
        let cfg = self.source.replication_config(0)?;
        let client = self.session.client();
        let temp = format!("sluice_copy_{}_{}", std::process::id(), unique());
        self.session.rt().block_on(async {
            let mut repl = pgwire_replication::ReplicationClient::connect_gated(cfg)
                .await
                .map_err(|e| classify_wire("open a replication session", &e))?;
            let made = repl
                .simple_query(&format!(
                    "CREATE_REPLICATION_SLOT {temp} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT"
                ))
                .await
                .map_err(|e| classify_wire("export a snapshot", &e))?;
            let field = |i: usize| {
                made.first()
                    .and_then(|r| r.get(i).cloned().flatten())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            let at = pgwire_replication::Lsn::parse(&field(1))
                .map_err(|e| SourceError::Definite(format!("export a snapshot: {e}")))?
                .as_u64();
            let snapshot = field(2);
            rows(
                client,
                &format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}; \
                     DECLARE sluice_copy NO SCROLL CURSOR FOR {select}",
                    literal(&snapshot)
                ),
            )
            .await?;
            let mut first = true;
            loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let got = rows(client, &format!("FETCH {chunk_rows} FROM sluice_copy")).await?;
                let done = got.len() < chunk_rows;
                let rows = Self::decode_all(info, &got)?;
                let chunk = Chunk {
                    schema: schema.clone(),
                    rows,
                    last_key: Some(format!("{WHOLE}{at}")),
                    done,
                    fresh: first,
                };
                first = false;
                if !emit(chunk) || done {
                    break;
                }
            }
            rows(client, "COMMIT").await?;
            // Ends the session, and with it the temporary slot.
            repl.abort();
            Ok(())
        })
    }
}

/// A number no other copy of this process uses.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

impl SnapshotReader for Reader {
    fn read(
        &mut self,
        work: &UnitWork,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Chunk) -> bool,
    ) -> Result<(), SourceError> {
        let info = self.session.rt().block_on(table_info(
            self.session.client(),
            &work.table,
            &regclass(&work.table),
        ))?;
        let key = if info.primary_key.is_empty() {
            self.keys.get(&work.table).cloned().unwrap_or_default()
        } else {
            info.primary_key.clone()
        };
        if key.is_empty() {
            self.read_whole(&info, stop, emit)
        } else {
            self.read_keyed(&info, &key, work, stop, emit)
        }
    }
}
