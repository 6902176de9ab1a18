//! Sluice's database destination for MySQL-compatible servers: OceanBase seekdb (the harness's
//! OceanBase), MariaDB and MySQL.
//!
//! - Schema sync creates the database and table from the source definition (translated where
//!   the destination differs: seekdb knows only the `utf8mb4_general_ci`, `utf8mb4_bin` and
//!   `binary` collations), or accepts an existing table whose columns match, naming the first
//!   that does not.
//! - Apply is idempotent: an insert or update writes the whole after image (delete by key, then
//!   insert), a delete removes by key, an update that changes the key deletes the old key. A
//!   batch is split over `writers` connections by a hash of (table, key), so each key keeps
//!   its order; within a writer's share, only the last change of each key is applied (the
//!   images are whole rows), grouped into multi-row statements.
//! - Exactly once: each writer's share of a batch commits in one transaction together with
//!   that writer's row in `sluice.sluice_checkpoint` (the highest source sequence it applied).
//!   Replayed changes at or below it are skipped, so a change is applied once even when the
//!   source replays it after a crash.
//! - A duplicate-key conflict on a secondary unique key (possible when writers reorder changes
//!   of different keys) makes the batch run again on one connection, change by change, in
//!   source order.
#![deny(missing_docs)]

pub mod ddl;

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, TxOpts, Value as MyValue};
use sluice_core::render::civil_from_days;
use sluice_core::sink::{DeliveryItem, Sink, SinkError};
use sluice_core::{Event, Op, RowChange, TableDef, TableId, TableSchema, TableSpec, Value};

/// Settings of the database destination.
#[derive(Debug, Clone)]
pub struct MysqlConfig {
    /// `mysql://user:pass@host:port`.
    pub url: String,
    /// The project name (key of the checkpoint rows).
    pub project: String,
    /// Parallel writer connections.
    pub writers: usize,
    /// Database of Sluice's checkpoint table at the destination.
    pub meta_db: String,
    /// DDL outside the applied list is skipped (logged) instead of stopping the project.
    pub ignore_other_ddl: bool,
    /// Physical source table -> destination table, for logical tables (sharded sources);
    /// tables not listed keep their (routed) name.
    pub merge: HashMap<TableId, TableId>,
    /// For a sharded source: the instance this writer serves. Destination tables then carry
    /// [`SHARD_COLUMN`] (`instance/db.table` of each row), and a primary key already held by
    /// another shard is an error naming both.
    pub shard: Option<String>,
    /// With `shard`: the shard column joins the destination's primary key, so equal keys of
    /// different shards are kept side by side instead of reported.
    pub shard_in_key: bool,
}

/// The column recording each row's shard in a logical table's destination.
pub const SHARD_COLUMN: &str = "_sluice_shard";

fn q(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

fn unavailable(what: &str) -> impl Fn(mysql_async::Error) -> SinkError + '_ {
    move |e| match &e {
        mysql_async::Error::Server(s) if is_permanent(s.code) => {
            SinkError::Rejected(format!("destination: {what}: {e}"))
        }
        _ => SinkError::Unavailable(format!("destination: {what}: {e}")),
    }
}

/// Server errors that retrying cannot fix (bad data, missing objects, privileges).
fn is_permanent(code: u16) -> bool {
    matches!(
        code,
        1044 | 1045
            | 1046
            | 1048
            | 1054
            | 1064
            | 1136
            | 1142
            | 1146
            | 1264
            | 1265
            | 1292
            | 1366
            | 1406
            | 1411
            | 1416
            | 3140
    )
}

/// A value as a statement parameter. TIMESTAMP is written in UTC (the session is +00:00).
pub fn param(v: &Value) -> Result<MyValue, String> {
    Ok(match v {
        Value::Null => MyValue::NULL,
        Value::Unavailable => {
            return Err("the source logged a partial row (binlog_row_image is not FULL); a database destination needs whole rows".into())
        }
        Value::Int(i) => MyValue::Int(*i),
        Value::UInt(u) => MyValue::UInt(*u),
        Value::Float(f) => MyValue::Float(*f),
        Value::Double(f) => MyValue::Double(*f),
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) => MyValue::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => MyValue::Bytes(b.clone()),
        // Zero dates go as text: a zero-length binary DATE is read as 1970-01-01 by seekdb.
        Value::Date { year: 0, month: 0, day: 0 } => MyValue::Bytes(b"0000-00-00".to_vec()),
        Value::DateTime {
            year: 0,
            month: 0,
            day: 0,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
            ..
        } => MyValue::Bytes(b"0000-00-00 00:00:00".to_vec()),
        Value::Date { year, month, day } => MyValue::Date(*year, *month, *day, 0, 0, 0, 0),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            ..
        } => MyValue::Date(*year, *month, *day, *hour, *minute, *second, *micros),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
            ..
        } => MyValue::Time(*negative, hours / 24, (hours % 24) as u8, *minutes, *seconds, *micros),
        Value::Timestamp {
            seconds, micros, ..
        } => {
            if *seconds == 0 && *micros == 0 {
                MyValue::Bytes(b"0000-00-00 00:00:00".to_vec())
            } else {
                let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
                let s = seconds.rem_euclid(86_400);
                MyValue::Date(
                    u16::try_from(y).map_err(|_| format!("TIMESTAMP year {y}"))?,
                    m as u8,
                    d as u8,
                    (s / 3600) as u8,
                    (s / 60 % 60) as u8,
                    (s % 60) as u8,
                    *micros,
                )
            }
        }
        Value::Year(y) => MyValue::UInt(u64::from(*y)),
        Value::Bit { value, .. } => MyValue::UInt(*value),
        Value::Enum { label, .. } => MyValue::Bytes(label.as_bytes().to_vec()),
        Value::Set { text, .. } => MyValue::Bytes(text.as_bytes().to_vec()),
        Value::Geometry { srid, wkb } => {
            // MySQL's internal geometry value: 4-byte little-endian SRID, then WKB.
            let mut b = srid.to_le_bytes().to_vec();
            b.extend_from_slice(wkb);
            MyValue::Bytes(b)
        }
    })
}

/// What a change leaves at the destination for one key.
#[derive(Debug, Clone)]
enum Action<'a> {
    /// The row is this image.
    Put(&'a TableSchema, &'a [Value]),
    /// The row is gone (key values).
    Remove(&'a TableSchema, Vec<&'a Value>),
}

fn key_of<'a>(schema: &'a TableSchema, row: &'a [Value]) -> Vec<&'a Value> {
    schema
        .primary_key
        .iter()
        .filter_map(|&i| row.get(i))
        .collect()
}

fn key_text(t: &TableId, key: &[&Value]) -> String {
    format!("{}.{}|{:?}", t.db, t.table, key)
}

/// The actions of one row change: an update that moves the key removes the old key first.
fn actions(r: &RowChange) -> Vec<Action<'_>> {
    let s = r.table.as_ref();
    match (r.op, r.before.as_deref(), r.after.as_deref()) {
        (Op::Delete, Some(b), _) => vec![Action::Remove(s, key_of(s, b))],
        (Op::Update, Some(b), Some(a)) if key_of(s, b) != key_of(s, a) => {
            vec![Action::Remove(s, key_of(s, b)), Action::Put(s, a)]
        }
        (_, _, Some(a)) => vec![Action::Put(s, a)],
        _ => Vec::new(),
    }
}

fn action_table<'a>(a: &Action<'a>) -> &'a TableSchema {
    match a {
        Action::Put(s, _) | Action::Remove(s, _) => s,
    }
}

fn action_key(a: &Action<'_>) -> String {
    match a {
        Action::Put(s, row) => key_text(&s.id, &key_of(s, row)),
        Action::Remove(s, key) => key_text(&s.id, key),
    }
}

/// `(k1, k2) IN ((?, ?), ...)` (or `k IN (?, ...)`) for these keys.
fn key_in(
    schema: &TableSchema,
    keys: &[Vec<&Value>],
    params: &mut Vec<MyValue>,
) -> Result<String, String> {
    let names: Vec<String> = schema
        .primary_key
        .iter()
        .filter_map(|&i| schema.columns.get(i))
        .map(|c| q(&c.name))
        .collect();
    let mut tuples = Vec::with_capacity(keys.len());
    for k in keys {
        for v in k {
            params.push(param(v)?);
        }
        tuples.push(if names.len() == 1 {
            "?".to_string()
        } else {
            format!("({})", vec!["?"; names.len()].join(", "))
        });
    }
    Ok(if names.len() == 1 {
        format!("{} IN ({})", names[0], tuples.join(", "))
    } else {
        format!("({}) IN ({})", names.join(", "), tuples.join(", "))
    })
}

/// Applies actions in order, grouping runs of one table and one kind into multi-row
/// statements (each key appears once: runs cannot reorder changes of one key).
async fn apply(
    conn: &mut mysql_async::Transaction<'_>,
    actions: &[Action<'_>],
    merge: &HashMap<TableId, TableId>,
    shard: Option<&str>,
    shard_in_key: bool,
) -> Result<(), SinkError> {
    let mut i = 0;
    while i < actions.len() {
        let table = action_table(&actions[i]);
        let put = matches!(actions[i], Action::Put(..));
        let mut j = i;
        while j < actions.len()
            && std::ptr::eq(action_table(&actions[j]), table)
            && matches!(actions[j], Action::Put(..)) == put
            && j - i < 500
        {
            j += 1;
        }
        let run = &actions[i..j];
        let keys: Vec<Vec<&Value>> = run
            .iter()
            .map(|a| match a {
                Action::Put(s, row) => key_of(s, row),
                Action::Remove(_, k) => k.clone(),
            })
            .collect();
        let dest = merge.get(&table.id).unwrap_or(&table.id);
        let name = format!("{}.{}", q(&dest.db), q(&dest.table));
        let origin = shard.map(|s| format!("{s}/{}.{}", table.id.db, table.id.table));
        let mut params = Vec::new();
        let cond = key_in(table, &keys, &mut params).map_err(SinkError::Rejected)?;
        if let (Some(origin), true, false) = (&origin, put, shard_in_key) {
            // A key another shard already put here: two shards hold the same primary key.
            let mut p2 = params.clone();
            p2.push(MyValue::Bytes(origin.as_bytes().to_vec()));
            let other: Option<String> = conn
                .exec_first(
                    format!(
                        "SELECT {col} FROM {name} WHERE {cond} AND {col} <> ? LIMIT 1",
                        col = q(SHARD_COLUMN)
                    ),
                    p2,
                )
                .await
                .map_err(unavailable("check the shard of existing keys"))?;
            if let Some(other) = other {
                return Err(SinkError::Rejected(format!(
                    "a primary key of {dest} exists in two shards: {other} and {origin}; the rows of a \
                     logical table must have distinct keys across its shards (a row moved between \
                     shards looks the same)"
                )));
            }
        }
        // Only this shard's row: a delete replayed late must not remove another shard's row.
        let cond = match &origin {
            Some(o) => {
                params.push(MyValue::Bytes(o.as_bytes().to_vec()));
                format!("{cond} AND {} = ?", q(SHARD_COLUMN))
            }
            None => cond,
        };
        conn.exec_drop(format!("DELETE FROM {name} WHERE {cond}"), params)
            .await
            .map_err(unavailable("delete"))?;
        if put {
            let mut cols: Vec<String> = table.columns.iter().map(|c| q(&c.name)).collect();
            if origin.is_some() {
                cols.push(q(SHARD_COLUMN));
            }
            let one = format!("({})", vec!["?"; cols.len()].join(", "));
            let mut params = Vec::with_capacity(run.len() * cols.len());
            for a in run {
                if let Action::Put(_, row) = a {
                    for v in row.iter() {
                        params.push(
                            param(v)
                                .map_err(|e| SinkError::Rejected(format!("{}: {e}", table.id)))?,
                        );
                    }
                    if let Some(o) = &origin {
                        params.push(MyValue::Bytes(o.as_bytes().to_vec()));
                    }
                }
            }
            conn.exec_drop(
                format!(
                    "INSERT INTO {name} ({}) VALUES {}",
                    cols.join(", "),
                    vec![one; run.len()].join(", ")
                ),
                params,
            )
            .await
            .map_err(unavailable("insert"))?;
        }
        i = j;
    }
    Ok(())
}

/// Records that `writers` applied everything up to source sequence `seq` (never lowering it).
async fn write_checkpoint<Q: Queryable>(
    q: &mut Q,
    meta_db: &str,
    project: &str,
    writers: std::ops::Range<usize>,
    seq: u64,
    pos: &str,
) -> Result<(), SinkError> {
    for w in writers {
        q.exec_drop(
            format!(
                "INSERT INTO {meta_db}.sluice_checkpoint (project, writer, sequence, position) \
                 VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE sequence = GREATEST(sequence, VALUES(sequence)), \
                 position = VALUES(position)"
            ),
            (project, w as u32, seq, pos),
        )
        .await
        .map_err(unavailable("write the checkpoint"))?;
    }
    Ok(())
}

/// Only the last action of each key, in the order of those last actions.
fn merged<'a>(actions: Vec<Action<'a>>) -> Vec<Action<'a>> {
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, a) in actions.iter().enumerate() {
        last.insert(action_key(a), i);
    }
    let keep: HashSet<usize> = last.into_values().collect();
    actions
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, a)| a)
        .collect()
}

/// The destination.
pub struct MysqlSink {
    cfg: MysqlConfig,
    rt: tokio::runtime::Runtime,
    conns: Vec<Option<Conn>>,
    /// Per writer: the highest source sequence it applied (from the destination).
    applied: Vec<u64>,
    /// The destination is OceanBase (collations translated).
    oceanbase: bool,
    results: HashMap<u64, Result<(), SinkError>>,
    next_ticket: u64,
}

impl MysqlSink {
    /// Connects `writers` sessions and reads the destination's checkpoint rows.
    pub fn new(cfg: MysqlConfig) -> Result<Self, SinkError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SinkError::Unavailable(e.to_string()))?;
        let opts = Opts::from_url(&cfg.url)
            .map_err(|e| SinkError::Config(format!("destination.url: {e}")))?;
        let writers = cfg.writers.max(1);
        let (conns, oceanbase, applied) = rt.block_on(async {
            let mut conns = Vec::with_capacity(writers);
            for _ in 0..writers {
                let mut c = Conn::new(opts.clone()).await.map_err(|e| {
                    SinkError::Unavailable(format!(
                        "cannot connect to the destination {}:{}: {e}; check destination.url and that the server runs",
                        opts.ip_or_hostname(),
                        opts.tcp_port()
                    ))
                })?;
                // UTC for TIMESTAMP, zero dates allowed, no implicit defaults filled in.
                c.query_drop("SET SESSION time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO'")
                    .await
                    .map_err(unavailable("session settings"))?;
                conns.push(Some(c));
            }
            let first = conns.first_mut().and_then(Option::as_mut).ok_or_else(|| SinkError::Config("no writer".into()))?;
            let version: Option<String> = first.query_first("SELECT VERSION()").await.map_err(unavailable("version"))?;
            let oceanbase = version.unwrap_or_default().contains("OceanBase");
            first
                .query_drop(format!(
                    "CREATE DATABASE IF NOT EXISTS {}",
                    q(&cfg.meta_db)
                ))
                .await
                .map_err(unavailable("create the checkpoint database"))?;
            first
                .query_drop(format!(
                    "CREATE TABLE IF NOT EXISTS {}.sluice_checkpoint (project VARCHAR(128) NOT NULL, \
                     writer INT NOT NULL, sequence BIGINT UNSIGNED NOT NULL, position VARCHAR(512) NOT NULL, \
                     PRIMARY KEY (project, writer))",
                    q(&cfg.meta_db)
                ))
                .await
                .map_err(unavailable("create the checkpoint table"))?;
            let rows: Vec<(u32, u64)> = first
                .exec(
                    format!(
                        "SELECT writer, sequence FROM {}.sluice_checkpoint WHERE project = ?",
                        q(&cfg.meta_db)
                    ),
                    (&cfg.project,),
                )
                .await
                .map_err(unavailable("read the checkpoint"))?;
            let mut applied = vec![0u64; writers];
            let stored_writers = rows.len();
            for (w, seq) in &rows {
                if let Some(a) = applied.get_mut(*w as usize) {
                    *a = *seq;
                }
            }
            // Changed writer count: a key may now go to another writer; skip only what every
            // writer applied (the rest is applied again, idempotently).
            if stored_writers != 0 && stored_writers != writers {
                let floor = rows.iter().map(|(_, s)| *s).min().unwrap_or(0);
                applied = vec![floor; writers];
            }
            Ok::<_, SinkError>((conns, oceanbase, applied))
        })?;
        Ok(Self {
            cfg,
            rt,
            conns,
            applied,
            oceanbase,
            results: HashMap::new(),
            next_ticket: 0,
        })
    }

    fn dest_of(&self, t: &TableId) -> TableId {
        self.cfg.merge.get(t).cloned().unwrap_or_else(|| t.clone())
    }

    /// The highest source sequence applied by every writer (changes at or below it are at the
    /// destination).
    pub fn applied_floor(&self) -> u64 {
        self.applied.iter().copied().min().unwrap_or(0)
    }

    fn writer_of(&self, key: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.conns.len().max(1) as u64) as usize
    }

    /// The CREATE TABLE for `def` at `dest`, translated for the destination.
    pub fn create_table_sql(&self, dest: &TableId, def: &TableDef) -> String {
        create_table_sql(
            dest,
            def,
            self.oceanbase,
            self.cfg.shard.is_some(),
            self.cfg.shard_in_key,
        )
    }

    /// Rows up to each DDL in parallel, then the DDL alone, in batch order.
    fn deliver_now(&mut self, items: &[DeliveryItem]) -> Result<(), SinkError> {
        let mut start = 0;
        for (i, item) in items.iter().enumerate() {
            if let Event::Ddl(d) = &item.event {
                self.deliver_rows(&items[start..i])?;
                self.apply_ddl(d, item.sequence)?;
                start = i + 1;
            }
        }
        self.deliver_rows(&items[start..])
    }

    /// One DDL statement, once: skipped when every writer is past it; a replay of a statement
    /// that was applied before a crash (duplicate column or index, nothing to drop) counts as
    /// applied.
    fn apply_ddl(&mut self, d: &sluice_core::Ddl, sequence: Option<u64>) -> Result<(), SinkError> {
        let Some(dest) = d.table.as_ref().map(|t| self.dest_of(t)) else {
            return Ok(());
        };
        if sequence.is_some_and(|s| s <= self.applied_floor()) {
            return Ok(());
        }
        let sql = match ddl::translate(&d.sql, &dest, self.oceanbase) {
            Ok(sql) => sql,
            Err(e) if self.cfg.ignore_other_ddl => {
                tracing::warn!("skipped at {}: {e}", d.pos);
                return Ok(());
            }
            Err(e) => return Err(SinkError::Rejected(format!("{e} (at {})", d.pos))),
        };
        let meta_db = q(&self.cfg.meta_db);
        let project = self.cfg.project.clone();
        let writers = self.conns.len();
        let pos = d.pos.to_string();
        let conn = self
            .conns
            .first_mut()
            .and_then(Option::as_mut)
            .ok_or_else(|| SinkError::Unavailable("writer lost".into()))?;
        self.rt.block_on(async {
            match conn.query_drop(&sql).await {
                Ok(()) => {}
                Err(mysql_async::Error::Server(e)) if matches!(e.code, 1060 | 1061 | 1091) => {
                    tracing::warn!("{sql}: {} (applied before a restart)", e.message);
                }
                Err(e) => {
                    return Err(SinkError::Rejected(format!(
                        "the destination refused `{sql}` (from `{}` at {}): {e}",
                        d.sql, d.pos
                    )))
                }
            }
            if let Some(seq) = sequence {
                write_checkpoint(conn, &meta_db, &project, 0..writers, seq, &pos).await?;
            }
            Ok(())
        })?;
        if let Some(seq) = sequence {
            for a in self.applied.iter_mut() {
                *a = (*a).max(seq);
            }
        }
        Ok(())
    }

    fn deliver_rows(&mut self, items: &[DeliveryItem]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        let writers = self.conns.len().max(1);
        // Each writer's share: its actions (only changes it has not applied) and the highest
        // sequence and position they reach.
        let mut shares: Vec<(Vec<Action<'_>>, Option<u64>, String)> = (0..writers)
            .map(|_| (Vec::new(), None, String::new()))
            .collect();
        for item in items {
            let Event::Row(r) = &item.event else { continue };
            for a in actions(r) {
                let w = self.writer_of(&action_key(&a));
                if let Some(seq) = item.sequence {
                    if seq <= self.applied[w] {
                        continue;
                    }
                }
                let share = &mut shares[w];
                share.0.push(a);
                if let Some(seq) = item.sequence {
                    share.1 = Some(share.1.map_or(seq, |s: u64| s.max(seq)));
                    share.2 = r.pos.to_string();
                }
            }
        }
        let meta_db = q(&self.cfg.meta_db);
        let project = self.cfg.project.clone();
        let merge = &self.cfg.merge;
        let shard = self.cfg.shard.as_deref();
        let in_key = self.cfg.shard_in_key;
        let mut conns: Vec<Option<Conn>> = std::mem::take(&mut self.conns);
        let result = self.rt.block_on(async {
            let mut futures = Vec::new();
            for (w, ((acts, seq, pos), conn)) in
                shares.into_iter().zip(conns.iter_mut()).enumerate()
            {
                let (meta_db, project) = (meta_db.clone(), project.clone());
                futures.push(async move {
                    if acts.is_empty() && seq.is_none() {
                        return Ok(());
                    }
                    let conn = conn
                        .as_mut()
                        .ok_or_else(|| SinkError::Unavailable("writer lost".into()))?;
                    let mut tx = conn
                        .start_transaction(TxOpts::default())
                        .await
                        .map_err(unavailable("begin"))?;
                    apply(&mut tx, &merged(acts), merge, shard, in_key).await?;
                    if let Some(seq) = seq {
                        write_checkpoint(&mut tx, &meta_db, &project, w..w + 1, seq, &pos).await?;
                    }
                    tx.commit().await.map_err(unavailable("commit"))?;
                    Ok::<_, SinkError>(())
                });
            }
            futures_util::future::join_all(futures).await
        });
        // Advance what each writer applied (only for the shares that committed).
        let mut first_err = None;
        for (w, r) in result.into_iter().enumerate() {
            match r {
                Ok(()) => {
                    let top = items
                        .iter()
                        .filter_map(|i| match &i.event {
                            Event::Row(r) => Some((i.sequence, r)),
                            _ => None,
                        })
                        .filter(|(_, r)| {
                            actions(r)
                                .iter()
                                .any(|a| self.writer_of(&action_key(a)) == w)
                        })
                        .filter_map(|(s, _)| s)
                        .max();
                    if let Some(top) = top {
                        self.applied[w] = self.applied[w].max(top);
                    }
                }
                Err(e) => {
                    // A lost connection is replaced on the next batch.
                    if matches!(e, SinkError::Unavailable(_)) {
                        if let Some(c) = conns.get_mut(w) {
                            *c = None;
                        }
                    }
                    first_err.get_or_insert(e);
                }
            }
        }
        self.conns = conns;
        match first_err {
            None => Ok(()),
            // 1062: a unique key collided (writers reordered changes of different keys, or two
            // shards wrote one key at once): once more on one connection, in source order.
            Some(e) if e.to_string().contains("Duplicate entry") => {
                tracing::warn!("a unique-key conflict between writers; applying the batch in source order: {e}");
                self.reconnect()?;
                self.deliver_in_order(items)
            }
            Some(e) => Err(e),
        }
    }

    /// The whole batch on one connection, change by change, in source order (no merging).
    fn deliver_in_order(&mut self, items: &[DeliveryItem]) -> Result<(), SinkError> {
        let meta_db = q(&self.cfg.meta_db);
        let project = self.cfg.project.clone();
        let writers = self.conns.len();
        let top = items.iter().filter_map(|i| i.sequence).max();
        let pos = items
            .iter()
            .rev()
            .find_map(|i| match &i.event {
                Event::Row(r) => Some(r.pos.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        let applied = self.applied.clone();
        let merge = &self.cfg.merge;
        let shard = self.cfg.shard.as_deref();
        let in_key = self.cfg.shard_in_key;
        let mut conn = self
            .conns
            .first_mut()
            .and_then(Option::take)
            .ok_or_else(|| SinkError::Unavailable("writer lost".into()))?;
        let writer_of = |k: &str| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            k.hash(&mut h);
            (h.finish() % writers.max(1) as u64) as usize
        };
        let r = self.rt.block_on(async {
            let mut tx = conn
                .start_transaction(TxOpts::default())
                .await
                .map_err(unavailable("begin"))?;
            for item in items {
                let Event::Row(r) = &item.event else { continue };
                for a in actions(r) {
                    let w = writer_of(&action_key(&a));
                    if item.sequence.is_some_and(|s| s <= applied[w]) {
                        continue;
                    }
                    apply(&mut tx, std::slice::from_ref(&a), merge, shard, in_key).await?;
                }
            }
            if let Some(seq) = top {
                write_checkpoint(&mut tx, &meta_db, &project, 0..writers, seq, &pos).await?;
            }
            tx.commit().await.map_err(unavailable("commit"))
        });
        if let Some(c) = self.conns.first_mut() {
            *c = Some(conn);
        }
        r?;
        if let Some(seq) = top {
            for a in self.applied.iter_mut() {
                *a = (*a).max(seq);
            }
        }
        Ok(())
    }

    fn reconnect(&mut self) -> Result<(), SinkError> {
        if self.conns.iter().all(Option::is_some) {
            return Ok(());
        }
        let opts = Opts::from_url(&self.cfg.url).map_err(|e| SinkError::Config(e.to_string()))?;
        let conns = &mut self.conns;
        self.rt.block_on(async {
            for c in conns.iter_mut().filter(|c| c.is_none()) {
                let mut n = Conn::new(opts.clone())
                    .await
                    .map_err(unavailable("reconnect"))?;
                n.query_drop(
                    "SET SESSION time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
                )
                .await
                .map_err(unavailable("session settings"))?;
                *c = Some(n);
            }
            Ok(())
        })
    }
}

/// Normalized column type for comparing source and destination (`int(11)` -> `int`).
fn normalized_type(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    let base = t.split_whitespace().collect::<Vec<_>>().join(" ");
    // Display widths of integer types are cosmetic.
    for int in ["tinyint", "smallint", "mediumint", "bigint", "int"] {
        if let Some(rest) = base.strip_prefix(&format!("{int}(")) {
            if let Some(close) = rest.find(')') {
                return format!("{int}{}", &rest[close + 1..]);
            }
        }
    }
    base
}

/// The CREATE TABLE for `def` at `dest`. On OceanBase, text columns become utf8mb4 with
/// `utf8mb4_bin` (for `_bin` collations) or `utf8mb4_general_ci` (all others).
pub fn create_table_sql(
    dest: &TableId,
    def: &TableDef,
    oceanbase: bool,
    shard_column: bool,
    shard_in_key: bool,
) -> String {
    let mut parts = Vec::new();
    for c in &def.columns {
        let mut s = format!("{} ", q(&c.name));
        if c.json {
            s.push_str("json");
        } else {
            s.push_str(&c.column_type);
        }
        if let (Some(cs), Some(co), false) = (&c.charset, &c.collation, c.json) {
            if oceanbase {
                let co = if co.ends_with("_bin") {
                    "utf8mb4_bin"
                } else {
                    "utf8mb4_general_ci"
                };
                s.push_str(&format!(" CHARACTER SET utf8mb4 COLLATE {co}"));
            } else {
                s.push_str(&format!(" CHARACTER SET {cs} COLLATE {co}"));
            }
        }
        s.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
        if let Some(d) = &c.default {
            s.push_str(&format!(" DEFAULT {d}"));
        }
        if c.auto_increment {
            s.push_str(" AUTO_INCREMENT");
        }
        parts.push(s);
    }
    if shard_column {
        parts.push(format!(
            "{} VARCHAR(255) NOT NULL DEFAULT ''",
            q(SHARD_COLUMN)
        ));
    }
    if !def.primary_key.is_empty() {
        let mut k: Vec<String> = def.primary_key.iter().map(|c| q(c)).collect();
        if shard_column && shard_in_key {
            k.push(q(SHARD_COLUMN));
        }
        parts.push(format!("PRIMARY KEY ({})", k.join(", ")));
    }
    for i in &def.indexes {
        let cols: Vec<String> = i
            .columns
            .iter()
            .map(|(c, p)| match p {
                Some(n) => format!("{}({n})", q(c)),
                None => q(c),
            })
            .collect();
        parts.push(format!(
            "{}KEY {} ({})",
            if i.unique { "UNIQUE " } else { "" },
            q(&i.name),
            cols.join(", ")
        ));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (\n  {}\n)",
        q(&dest.db),
        q(&dest.table),
        parts.join(",\n  ")
    )
}

impl Sink for MysqlSink {
    fn prepare(&mut self, tables: &[TableSpec]) -> Result<(), SinkError> {
        let oceanbase = self.oceanbase;
        let sharded = self.cfg.shard.is_some();
        let in_key = self.cfg.shard_in_key;
        let dests: Vec<TableId> = tables.iter().map(|t| self.dest_of(&t.dest)).collect();
        let conn = self
            .conns
            .first_mut()
            .and_then(Option::as_mut)
            .ok_or_else(|| SinkError::Unavailable("writer lost".into()))?;
        self.rt.block_on(async {
            for (spec, dest) in tables.iter().zip(&dests) {
                let Some(def) = &spec.def else { continue };
                if def.primary_key.is_empty() {
                    return Err(SinkError::Config(format!(
                        "{}: the database destination needs a primary key to apply changes by key; add one at the source",
                        dest
                    )));
                }
                conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", q(&dest.db)))
                    .await
                    .map_err(unavailable("create the database"))?;
                let have: Vec<(String, String)> = conn
                    .exec(
                        "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR) FROM information_schema.columns \
                         WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                        (&dest.db, &dest.table),
                    )
                    .await
                    .map_err(unavailable("read the destination table"))?;
                if have.is_empty() {
                    // IF NOT EXISTS: the parts of a sharded project create it concurrently.
                    let sql = create_table_sql(dest, def, oceanbase, sharded, in_key);
                    conn.query_drop(&sql).await.map_err(|e| {
                        SinkError::Config(format!("creating {} failed: {e}\n{sql}", dest))
                    })?;
                    continue;
                }
                if sharded && !have.iter().any(|(n, _)| n == SHARD_COLUMN) {
                    let sql = format!(
                        "ALTER TABLE {}.{} ADD COLUMN {} VARCHAR(255) NOT NULL DEFAULT ''",
                        q(&dest.db),
                        q(&dest.table),
                        q(SHARD_COLUMN)
                    );
                    if let Err(e) = conn.query_drop(&sql).await {
                        // Another part of the project added it meanwhile.
                        if !matches!(&e, mysql_async::Error::Server(s) if s.code == 1060) {
                            return Err(SinkError::Config(format!("{sql}: {e}")));
                        }
                    }
                }
                for c in &def.columns {
                    let Some((_, ty)) = have.iter().find(|(n, _)| n.eq_ignore_ascii_case(&c.name)) else {
                        return Err(SinkError::Config(format!(
                            "the existing table {} has no column {}; add it or drop the table to let Sluice create it",
                            dest, c.name
                        )));
                    };
                    let want = if c.json { "json".to_string() } else { normalized_type(&c.column_type) };
                    let got = normalized_type(ty);
                    // MariaDB shows its JSON as longtext.
                    let json_alias = want == "json" && got == "longtext";
                    if want != got && !json_alias {
                        return Err(SinkError::Config(format!(
                            "the existing table {} has column {} as {ty}, the source has {}; make them the same type",
                            dest, c.name, c.column_type
                        )));
                    }
                }
            }
            Ok(())
        })
    }

    fn send(&mut self, items: &[DeliveryItem]) -> Result<u64, SinkError> {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.reconnect()?;
        let r = self.deliver_now(items);
        self.results.insert(ticket, r);
        Ok(ticket)
    }

    fn wait(&mut self, ticket: u64, _items: &[DeliveryItem]) -> Result<(), SinkError> {
        self.results
            .remove(&ticket)
            .unwrap_or_else(|| Err(SinkError::Unavailable(format!("unknown batch {ticket}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::ColumnDef;

    #[test]
    fn create_table_translates_collations_for_oceanbase() {
        let def = TableDef {
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    column_type: "int(11)".into(),
                    nullable: false,
                    default: None,
                    charset: None,
                    collation: None,
                    json: false,
                    auto_increment: true,
                },
                ColumnDef {
                    name: "name".into(),
                    column_type: "varchar(20)".into(),
                    nullable: true,
                    default: Some("'x'".into()),
                    charset: Some("latin1".into()),
                    collation: Some("latin1_swedish_ci".into()),
                    json: false,
                    auto_increment: false,
                },
                ColumnDef {
                    name: "code".into(),
                    column_type: "varchar(8)".into(),
                    nullable: false,
                    default: None,
                    charset: Some("utf8mb4".into()),
                    collation: Some("utf8mb4_bin".into()),
                    json: false,
                    auto_increment: false,
                },
            ],
            primary_key: vec!["id".into()],
            indexes: vec![sluice_core::IndexDef {
                name: "u".into(),
                unique: true,
                columns: vec![("code".into(), None), ("name".into(), Some(4))],
            }],
        };
        let ob = create_table_sql(&TableId::new("d", "t"), &def, true, false, false);
        assert!(ob.contains("`name` varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL DEFAULT 'x'"), "{ob}");
        assert!(
            ob.contains("`code` varchar(8) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"),
            "{ob}"
        );
        assert!(ob.contains("`id` int(11) NOT NULL AUTO_INCREMENT"), "{ob}");
        assert!(ob.contains("UNIQUE KEY `u` (`code`, `name`(4))"), "{ob}");
        let maria = create_table_sql(&TableId::new("d", "t"), &def, false, true, true);
        assert!(
            maria.contains("PRIMARY KEY (`id`, `_sluice_shard`)"),
            "{maria}"
        );
        assert!(
            maria.contains("`_sluice_shard` VARCHAR(255) NOT NULL DEFAULT ''"),
            "{maria}"
        );
        assert!(
            maria.contains("CHARACTER SET latin1 COLLATE latin1_swedish_ci"),
            "{maria}"
        );
        assert_eq!(normalized_type("INT(11) unsigned"), "int unsigned");
        assert_eq!(normalized_type("decimal(10,2)"), "decimal(10,2)");
    }
}
