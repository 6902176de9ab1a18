//! The change stream: START_REPLICATION on the project's slot from a checkpoint, pgoutput
//! messages decoded into events, the acknowledged checkpoint confirmed to the slot, and
//! heartbeats written into the WAL while idle.
//!
//! Schema changes: pgoutput sends a table's current columns (a Relation message) before its
//! first row after a change of them. The source's state holds the columns each table had;
//! a Relation message that differs becomes an `ALTER TABLE` in MySQL terms (ADD, DROP,
//! MODIFY or CHANGE COLUMN), which database destinations apply like a MySQL source's DDL.
//!
//! An update of a row whose TOASTed value did not change does not carry that value: it is
//! taken from the old row when the table has REPLICA IDENTITY FULL (exact), else read from the
//! table by key (the value now, which may be newer than at this change; a later change of it
//! follows in the stream), else, when the row no longer exists, it is unavailable (formats
//! omit it; docs/POSTGRES.md).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use sluice_core::schema::{Column, TableSchema};
use sluice_core::source::{SourceError, Streamed};
use sluice_core::{Ddl, Event, Op, RowChange, TableId, Value};
use tokio_postgres::Client;

use crate::pgoutput::{self, Datum, Message, RelColumn};
use crate::session::{cell, classify, classify_wire, connect, ident, literal, rows, runtime};
use crate::types::{Ty, TypeFacts, FACTS_SQL};
use crate::{known_key, lsn_position, Known, PostgresSource};

/// The prefix of our heartbeat messages in the WAL.
const HEARTBEAT: &str = "sluice.heartbeat";

/// Microseconds since 2000-01-01 (PostgreSQL's epoch) as milliseconds since 1970.
fn pg_ms(micros: i64) -> u64 {
    (micros / 1000 + 946_684_800_000).max(0) as u64
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A table as the stream decodes it.
struct Rel {
    schema: Arc<TableSchema>,
    types: Vec<Ty>,
}

/// The open transaction.
struct Txn {
    id: String,
    lsn: u64,
    ts_ms: u64,
    seq: u64,
}

struct Stream<'a> {
    src: &'a PostgresSource,
    side: Client,
    types: HashMap<(u32, i32), Ty>,
    rels: HashMap<u32, Rel>,
    known: Known,
    txn: Option<Txn>,
}

pub(crate) fn run(
    src: &PostgresSource,
    start: u64,
    known: Known,
    emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
) -> Result<(), SourceError> {
    let rt = runtime()?;
    rt.block_on(async {
        let side = connect(src.config()).await?;
        check_slot(src, &side).await?;
        let mut s = Stream {
            src,
            side,
            types: HashMap::new(),
            rels: HashMap::new(),
            known,
            txn: None,
        };
        let cfg = src.replication_config(start)?;
        let mut repl = ReplicationClient::connect(cfg)
            .await
            .map_err(|e| classify_wire("start replication", &e))?;
        let r = s.pump(&mut repl, emit).await;
        repl.stop();
        r
    })
}

/// Refuses a slot that is missing or lost before replication starts, with the fix.
async fn check_slot(src: &PostgresSource, side: &Client) -> Result<(), SourceError> {
    let r = rows(
        side,
        &format!(
            "SELECT wal_status::text, active::text, active_pid::text FROM pg_replication_slots WHERE slot_name = {}",
            literal(&src.slot)
        ),
    )
    .await?;
    let Some(row) = r.first() else {
        return Err(SourceError::Definite(format!(
            "replication slot {} does not exist (dropped by hand?): what it held is gone; \
             give the project a new name to start over with a full sync",
            src.slot
        )));
    };
    if cell(row, 0) == "lost" {
        return Err(SourceError::Purged(format!(
            "replication slot {} was invalidated: the server removed WAL it still needed \
             (raise max_slot_wal_keep_size, or keep projects from staying stopped that long)",
            src.slot
        )));
    }
    if cell(row, 1) == "true" {
        // Another session holds it (often our own previous one, still closing): retried.
        return Err(SourceError::Unavailable(format!(
            "replication slot {} is in use by process {}",
            src.slot,
            cell(row, 2)
        )));
    }
    Ok(())
}

impl Stream<'_> {
    async fn pump(
        &mut self,
        repl: &mut ReplicationClient,
        emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let every = self.src.heartbeat();
        let mut confirmed = 0u64;
        // The first heartbeat at once: a caught-up check needs a position past the end.
        let mut next_beat = Instant::now();
        // Confirmations and heartbeats are looked at on a tick, not per event: one timer for
        // the whole stream, reset only when it fires.
        let tick = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(tick);
        loop {
            let next = tokio::select! {
                r = repl.recv() => Some(r.map_err(|e| classify_wire("replication stream", &e))?),
                () = &mut tick => None,
            };
            let Some(ev) = next else {
                tick.as_mut()
                    .reset(tokio::time::Instant::now() + Duration::from_millis(200));
                let c = self.src.confirmed();
                if c > confirmed {
                    confirmed = c;
                    repl.update_applied_lsn(Lsn::from_u64(c));
                }
                if self.txn.is_none() && Instant::now() >= next_beat {
                    self.side
                        .simple_query(&format!(
                            "SELECT pg_logical_emit_message(false, {}, '')",
                            literal(HEARTBEAT)
                        ))
                        .await
                        .map_err(|e| classify("write a heartbeat", &e))?;
                    next_beat = Instant::now() + every;
                }
                continue;
            };
            let Some(ev) = ev else {
                return Err(SourceError::Unavailable(
                    "the replication stream ended".into(),
                ));
            };
            let flow = match ev {
                ReplicationEvent::Begin {
                    final_lsn,
                    xid,
                    commit_time_micros,
                } => {
                    let t = Txn {
                        id: xid.to_string(),
                        lsn: final_lsn.as_u64(),
                        ts_ms: pg_ms(commit_time_micros),
                        seq: 0,
                    };
                    let e = Event::Begin {
                        txn: t.id.clone(),
                        pos: lsn_position(t.lsn),
                        ts_ms: t.ts_ms,
                    };
                    self.txn = Some(t);
                    emit(Streamed::Event(e))
                }
                ReplicationEvent::Commit {
                    end_lsn,
                    commit_time_micros,
                    ..
                } => {
                    let id = self.txn.take().map(|t| t.id).unwrap_or_default();
                    next_beat = Instant::now() + every;
                    emit(Streamed::Event(Event::Commit {
                        txn: id,
                        pos: lsn_position(end_lsn.as_u64()),
                        ts_ms: pg_ms(commit_time_micros),
                    }))
                }
                ReplicationEvent::Message {
                    transactional: false,
                    lsn,
                    ..
                } if self.txn.is_none() => {
                    // Any message outside a transaction is a safe point: every transaction
                    // that committed before it has been sent.
                    emit(Streamed::Event(Event::Heartbeat {
                        pos: lsn_position(lsn.as_u64()),
                        ts_ms: now_ms(),
                    }))
                }
                ReplicationEvent::XLogData { data, .. } => {
                    let _ = emit(Streamed::Read(data.len() as u64));
                    let m = pgoutput::decode(&data)
                        .map_err(|e| SourceError::Definite(format!("{e} (at {})", self.at())))?;
                    self.message(m, emit).await?
                }
                ReplicationEvent::StoppedAt { .. } => return Ok(()),
                _ => ControlFlow::Continue(()),
            };
            if flow.is_break() {
                return Ok(());
            }
        }
    }

    fn at(&self) -> String {
        self.txn
            .as_ref()
            .map(|t| lsn_position(t.lsn).to_string())
            .unwrap_or_else(|| "?".into())
    }

    async fn message(
        &mut self,
        m: Message,
        emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SourceError> {
        match m {
            Message::Relation {
                oid,
                namespace,
                name,
                columns,
                ..
            } => {
                let id = TableId::new(namespace, name);
                self.relation(oid, id, &columns, emit).await
            }
            Message::Insert { oid, new } => {
                let rel = self.rel(oid)?;
                let after = self.values(oid, &new, None).await?;
                Ok(self.row(Op::Insert, rel, None, Some(after), emit))
            }
            Message::Update { oid, old, new } => {
                let rel = self.rel(oid)?;
                let old_values = match &old {
                    Some((b'O', t)) => Some(self.values(oid, t, None).await?),
                    _ => None,
                };
                let after = self.values(oid, &new, old_values.as_deref()).await?;
                let before = match (old_values, &old) {
                    (Some(v), _) => v,
                    (None, Some((_, key))) => self.key_only(oid, key)?,
                    (None, None) => self.key_of(&rel, &after),
                };
                Ok(self.row(Op::Update, rel, Some(before), Some(after), emit))
            }
            Message::Delete { oid, old } => {
                let rel = self.rel(oid)?;
                let before = match old {
                    (b'O', t) => self.values(oid, &t, None).await?,
                    (_, key) => self.key_only(oid, &key)?,
                };
                Ok(self.row(Op::Delete, rel, Some(before), None, emit))
            }
            Message::Truncate { oids } => {
                for oid in oids {
                    let rel = self.rel(oid)?;
                    let t = &rel.id;
                    let sql = format!("TRUNCATE TABLE `{}`.`{}`", t.db, t.table);
                    if self.ddl(t.clone(), sql, emit).is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            }
            Message::Other(_) => Ok(ControlFlow::Continue(())),
        }
    }

    fn rel(&self, oid: u32) -> Result<Arc<TableSchema>, SourceError> {
        self.rels
            .get(&oid)
            .map(|r| r.schema.clone())
            .ok_or_else(|| {
                SourceError::Definite(format!(
                    "pgoutput: a row of relation {oid} before its Relation message (at {})",
                    self.at()
                ))
            })
    }

    fn row(
        &mut self,
        op: Op,
        table: Arc<TableSchema>,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
        emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let Some(t) = self.txn.as_mut() else {
            return ControlFlow::Continue(());
        };
        let r = RowChange {
            op,
            table,
            before,
            after,
            ts_ms: t.ts_ms,
            txn: t.id.clone(),
            seq: t.seq,
            pos: lsn_position(t.lsn),
        };
        t.seq += 1;
        emit(Streamed::Event(Event::Row(r)))
    }

    fn ddl(
        &mut self,
        table: TableId,
        sql: String,
        emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let (txn, ts_ms, seq, lsn) = match self.txn.as_mut() {
            Some(t) => {
                t.seq += 1;
                (t.id.clone(), t.ts_ms, t.seq - 1, t.lsn)
            }
            None => return ControlFlow::Continue(()),
        };
        emit(Streamed::Event(Event::Ddl(Ddl {
            db: table.db.clone(),
            table: Some(table),
            to: None,
            sql,
            ts_ms,
            txn,
            seq,
            pos: lsn_position(lsn),
        })))
    }

    /// The values of a tuple; an unchanged TOASTed value comes from `old` (a whole old row),
    /// else from the table now.
    async fn values(
        &mut self,
        oid: u32,
        tuple: &[Datum],
        old: Option<&[Value]>,
    ) -> Result<Vec<Value>, SourceError> {
        let Some(rel) = self.rels.get(&oid) else {
            return Err(SourceError::Definite(format!(
                "pgoutput: a row of relation {oid} before its Relation message"
            )));
        };
        let mut out = Vec::with_capacity(tuple.len());
        let mut fetch = Vec::new();
        for (i, (d, ty)) in tuple.iter().zip(&rel.types).enumerate() {
            let v = match d {
                Datum::Null => Value::Null,
                Datum::Text(t) => ty.decode(Some(t)).map_err(|e| {
                    SourceError::Definite(format!(
                        "{} column {} (at {}): {e}",
                        rel.schema.id,
                        rel.schema.columns.get(i).map_or("?", |c| c.name.as_str()),
                        self.at()
                    ))
                })?,
                Datum::Unchanged => match old.and_then(|o| o.get(i)) {
                    Some(v) if *v != Value::Unavailable => v.clone(),
                    _ => {
                        fetch.push(i);
                        Value::Unavailable
                    }
                },
            };
            out.push(v);
        }
        if !fetch.is_empty() {
            self.fetch_unchanged(oid, tuple, &mut out, &fetch).await?;
        }
        Ok(out)
    }

    /// Reads unchanged TOASTed columns of a row from the table, by its key (the key's text as
    /// the server sent it in `tuple`).
    async fn fetch_unchanged(
        &self,
        oid: u32,
        tuple: &[Datum],
        row: &mut [Value],
        cols: &[usize],
    ) -> Result<(), SourceError> {
        let Some(rel) = self.rels.get(&oid) else {
            return Ok(());
        };
        let s = &rel.schema;
        if s.primary_key.is_empty() {
            return Ok(());
        }
        let mut conds = Vec::new();
        for &k in &s.primary_key {
            let (Some(c), Some(Datum::Text(text))) = (s.columns.get(k), tuple.get(k)) else {
                return Ok(());
            };
            conds.push(format!(
                "{} = {}::{}",
                ident(&c.name),
                literal(text),
                c.sql_type
            ));
        }
        let list: Vec<String> = cols
            .iter()
            .filter_map(|&i| s.columns.get(i))
            .map(|c| ident(&c.name))
            .collect();
        let got = rows(
            &self.side,
            &format!(
                "SELECT {} FROM {}.{} WHERE {}",
                list.join(", "),
                ident(&s.id.db),
                ident(&s.id.table),
                conds.join(" AND ")
            ),
        )
        .await?;
        if let Some(r) = got.first() {
            for (j, &i) in cols.iter().enumerate() {
                if let (Some(ty), Some(slot)) = (rel.types.get(i), row.get_mut(i)) {
                    *slot = ty
                        .decode(r.get(j).and_then(|v| v.as_deref()))
                        .map_err(|e| {
                            SourceError::Definite(format!("{} (at {}): {e}", s.id, self.at()))
                        })?;
                }
            }
        }
        Ok(())
    }

    /// An old key tuple as a row: the key's values, every other column unavailable.
    fn key_only(&self, oid: u32, tuple: &[Datum]) -> Result<Vec<Value>, SourceError> {
        let Some(rel) = self.rels.get(&oid) else {
            return Err(SourceError::Definite(format!(
                "pgoutput: a row of relation {oid} before its Relation message"
            )));
        };
        tuple
            .iter()
            .zip(&rel.types)
            .enumerate()
            .map(|(i, (d, ty))| match d {
                Datum::Text(t) => ty
                    .decode(Some(t))
                    .map_err(|e| SourceError::Definite(format!("{}: {e}", rel.schema.id))),
                Datum::Null if rel.schema.primary_key.contains(&i) => Ok(Value::Null),
                _ => Ok(Value::Unavailable),
            })
            .collect()
    }

    /// The before image of an update that did not change the key (the server sends none):
    /// the key from the new row, every other column unavailable.
    fn key_of(&self, schema: &TableSchema, after: &[Value]) -> Vec<Value> {
        after
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if schema.primary_key.contains(&i) {
                    v.clone()
                } else {
                    Value::Unavailable
                }
            })
            .collect()
    }

    async fn ty(&mut self, table: &TableId, c: &RelColumn) -> Result<Ty, SourceError> {
        if let Some(t) = self.types.get(&(c.type_oid, c.typmod)) {
            return Ok(t.clone());
        }
        let r = self
            .side
            .query_opt(FACTS_SQL, &[&i64::from(c.type_oid), &c.typmod])
            .await
            .map_err(|e| classify("read a column type", &e))?
            .ok_or_else(|| {
                SourceError::Definite(format!(
                    "{table} column {}: type {} not found",
                    c.name, c.type_oid
                ))
            })?;
        let text = |i: usize| r.try_get::<_, String>(i).unwrap_or_default();
        let facts = TypeFacts {
            oid: r.try_get::<_, i64>(0).unwrap_or(0) as u32,
            typmod: r.try_get::<_, i64>(1).unwrap_or(-1) as i32,
            typtype: text(2).chars().next().unwrap_or(' '),
            category: text(3).chars().next().unwrap_or(' '),
            name: text(4),
        };
        let ty = Ty::of(&facts).map_err(|e| {
            SourceError::Definite(format!(
                "{table} column {}: {e}; exclude the table (objects.exclude) or give the \
                 column a supported type",
                c.name
            ))
        })?;
        self.types.insert((c.type_oid, c.typmod), ty.clone());
        Ok(ty)
    }

    async fn relation(
        &mut self,
        oid: u32,
        id: TableId,
        columns: &[RelColumn],
        emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SourceError> {
        let mut types = Vec::with_capacity(columns.len());
        for c in columns {
            types.push(self.ty(&id, c).await?);
        }
        // The key and NOT NULL as the catalog has them now (the message carries neither).
        let facts = rows(
            &self.side,
            &format!(
                "SELECT a.attname::text, a.attnotnull::text, \
                 EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = a.attrelid AND x.indisprimary AND a.attnum = ANY (x.indkey))::text \
                 FROM pg_attribute a WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped"
            ),
        )
        .await?;
        let fact = |name: &str, i: usize| {
            facts
                .iter()
                .find(|r| cell(r, 0) == name)
                .is_some_and(|r| cell(r, i) == "true")
        };
        let mut key_order = crate::catalog::primary_key(&self.side, &oid.to_string()).await?;
        key_order.retain(|k| columns.iter().any(|c| &c.name == k));
        let schema = Arc::new(TableSchema {
            id: id.clone(),
            columns: columns
                .iter()
                .zip(&types)
                .map(|(c, ty)| Column {
                    name: c.name.clone(),
                    ty: ty.column_type(),
                    sql_type: ty.name.clone(),
                    nullable: !fact(&c.name, 1),
                })
                .collect(),
            primary_key: key_order
                .iter()
                .filter_map(|k| columns.iter().position(|c| &c.name == k))
                .collect(),
        });
        let now: Vec<(String, String)> = columns
            .iter()
            .zip(&types)
            .map(|(c, t)| (c.name.clone(), t.name.clone()))
            .collect();
        let key = known_key(&id);
        let mut flow = ControlFlow::Continue(());
        let changed = match self.known.get(&key) {
            Some(was) if *was != now => {
                let in_key = |n: &str| schema.primary_key_names().contains(&n);
                let sql = alter(&id, was, &now, &types, in_key);
                Some(sql)
            }
            Some(_) => None,
            None => Some(None),
        };
        if let Some(sql) = changed {
            self.known.insert(key, now);
            if let Some(sql) = sql {
                tracing::info!(table = %id, "schema change: {sql}");
                flow = self.ddl(id.clone(), sql, emit);
            }
            if flow.is_continue() {
                let state = serde_json::to_string(&self.known).unwrap_or_default();
                flow = emit(Streamed::State(Arc::new(state)));
            }
        }
        self.rels.insert(oid, Rel { schema, types });
        Ok(flow)
    }
}

/// The `ALTER TABLE` (MySQL terms) that takes a table from the columns `was` to `now`: a
/// column that left and one that came at the same place with the same type is a rename
/// (CHANGE COLUMN); otherwise drops, then type changes (MODIFY), then adds (AFTER their
/// predecessor, so the order matches).
fn alter(
    t: &TableId,
    was: &[(String, String)],
    now: &[(String, String)],
    types: &[Ty],
    in_key: impl Fn(&str) -> bool,
) -> Option<String> {
    let q = |s: &str| format!("`{}`", s.replace('`', "``"));
    let ty_of = |name: &str| {
        now.iter()
            .position(|(n, _)| n == name)
            .and_then(|i| types.get(i))
            .map(|t| t.mysql_type(in_key(name)))
            .unwrap_or_else(|| "longtext".into())
    };
    let gone: Vec<&(String, String)> = was
        .iter()
        .filter(|c| !now.iter().any(|n| n.0 == c.0))
        .collect();
    let came: Vec<(usize, &(String, String))> = now
        .iter()
        .enumerate()
        .filter(|(_, c)| !was.iter().any(|w| w.0 == c.0))
        .collect();
    let mut ops = Vec::new();
    if let ([old], [(at, new)]) = (gone.as_slice(), came.as_slice()) {
        let old_at = was.iter().position(|w| w.0 == old.0);
        if old_at == Some(*at) && old.1 == new.1 {
            ops.push(format!(
                "CHANGE COLUMN {} {} {}",
                q(&old.0),
                q(&new.0),
                ty_of(&new.0)
            ));
        }
    }
    if ops.is_empty() {
        for g in &gone {
            ops.push(format!("DROP COLUMN {}", q(&g.0)));
        }
        for (name, ty) in now {
            if was.iter().any(|w| &w.0 == name && &w.1 != ty) {
                ops.push(format!("MODIFY COLUMN {} {}", q(name), ty_of(name)));
            }
        }
        for (at, (name, _)) in &came {
            let place = match at.checked_sub(1).and_then(|p| now.get(p)) {
                Some((prev, _)) => format!(" AFTER {}", q(prev)),
                None => " FIRST".into(),
            };
            ops.push(format!("ADD COLUMN {} {}{place}", q(name), ty_of(name)));
        }
    }
    if ops.is_empty() {
        return None;
    }
    Some(format!(
        "ALTER TABLE {}.{} {}",
        q(&t.db),
        q(&t.table),
        ops.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeFacts;

    fn int() -> Ty {
        Ty::of(&TypeFacts {
            oid: 23,
            typmod: -1,
            typtype: 'b',
            category: 'N',
            name: "integer".into(),
        })
        .expect("int")
    }

    fn cols(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), "integer".into()))
            .collect()
    }

    #[test]
    fn relation_changes_become_mysql_alters() {
        let t = TableId::new("public", "t");
        let types = vec![int(), int(), int()];
        assert_eq!(
            alter(
                &t,
                &cols(&["id", "a"]),
                &cols(&["id", "a", "b"]),
                &types,
                |_| false
            )
            .as_deref(),
            Some("ALTER TABLE `public`.`t` ADD COLUMN `b` int AFTER `a`")
        );
        assert_eq!(
            alter(
                &t,
                &cols(&["id", "a", "b"]),
                &cols(&["id", "b"]),
                &types,
                |_| false
            )
            .as_deref(),
            Some("ALTER TABLE `public`.`t` DROP COLUMN `a`")
        );
        assert_eq!(
            alter(&t, &cols(&["id", "a"]), &cols(&["id", "z"]), &types, |_| {
                false
            })
            .as_deref(),
            Some("ALTER TABLE `public`.`t` CHANGE COLUMN `a` `z` int")
        );
        assert_eq!(
            alter(&t, &cols(&["id"]), &cols(&["id"]), &types, |_| false),
            None
        );
    }
}
