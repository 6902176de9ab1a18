//! Apply: row changes -> the destination's last state per key, as multi-row statements.

use std::collections::{HashMap, HashSet};

use mysql_async::prelude::Queryable;
use mysql_async::Value as MyValue;
use sluice_core::sink::SinkError;
use sluice_core::{Op, RowChange, TableId, TableSchema, Value};

use crate::bulk::{self, Loaded, Payloads};
use crate::value::param;
use crate::{q, unavailable, SHARD_COLUMN};

/// What a change leaves at the destination for one key.
#[derive(Debug, Clone)]
pub(crate) enum Action<'a> {
    /// The row is this image. With `Some(mask)`, the row is at the destination already and
    /// differs from this image at most in the columns of the mask (bit i = column i): an
    /// update that kept its key, whose before image was whole.
    Put(&'a TableSchema, &'a [Value], Option<u64>),
    /// The row is gone (key values).
    Remove(&'a TableSchema, Vec<&'a Value>),
}

pub(crate) fn key_of<'a>(schema: &'a TableSchema, row: &'a [Value]) -> Vec<&'a Value> {
    schema
        .primary_key
        .iter()
        .filter_map(|&i| row.get(i))
        .collect()
}

pub(crate) fn key_text(t: &TableId, key: &[&Value]) -> String {
    format!("{}.{}|{:?}", t.db, t.table, key)
}

/// The actions of one row change: an update that moves the key removes the old key first.
pub(crate) fn actions(r: &RowChange) -> Vec<Action<'_>> {
    let s = r.table.as_ref();
    match (r.op, r.before.as_deref(), r.after.as_deref()) {
        (Op::Delete, Some(b), _) => vec![Action::Remove(s, key_of(s, b))],
        (Op::Update, Some(b), Some(a)) if key_of(s, b) != key_of(s, a) => {
            vec![Action::Remove(s, key_of(s, b)), Action::Put(s, a, None)]
        }
        (Op::Update, Some(b), Some(a)) => vec![Action::Put(s, a, changed(b, a))],
        (_, _, Some(a)) => vec![Action::Put(s, a, None)],
        _ => Vec::new(),
    }
}

/// The columns (bit i = column i) in which `after` differs from `before`; None when that is
/// not known: an image not whole, or more than 64 columns.
fn changed(before: &[Value], after: &[Value]) -> Option<u64> {
    if before.len() != after.len() || after.len() > 64 {
        return None;
    }
    let mut mask = 0u64;
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if matches!(b, Value::Unavailable) || matches!(a, Value::Unavailable) {
            return None;
        }
        if b != a {
            mask |= 1 << i;
        }
    }
    Some(mask)
}

pub(crate) fn action_table<'a>(a: &Action<'a>) -> &'a TableSchema {
    match a {
        Action::Put(s, ..) | Action::Remove(s, _) => s,
    }
}

pub(crate) fn action_key(a: &Action<'_>) -> String {
    match a {
        Action::Put(s, row, _) => key_text(&s.id, &key_of(s, row)),
        Action::Remove(s, key) => key_text(&s.id, key),
    }
}

/// Whether two rows' schemas are one: the same `Arc` (the usual case: sources and routing
/// share one per table), else the same table and columns.
fn same_table(a: &TableSchema, b: &TableSchema) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// `(k1, k2) IN ((?, ?), ...)` (or `k IN (?, ...)`) for these keys.
pub(crate) fn key_in(
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

/// Where actions land: the destination table of each source table, the shard the rows come
/// from, and, for a sharded project, the columns each destination table has now.
pub(crate) struct Landing<'a> {
    pub(crate) merge: &'a HashMap<TableId, TableId>,
    pub(crate) shard: Option<&'a str>,
    pub(crate) shard_in_key: bool,
    /// Sharded: a shard's column missing here was dropped by another shard's DDL; its values
    /// are not written. Tables not listed are written whole.
    pub(crate) columns: &'a HashMap<TableId, HashSet<String>>,
    /// Write a put as `INSERT ... ON DUPLICATE KEY UPDATE` instead of delete-then-insert (with
    /// foreign-key checks on, deleting a parent would cascade to its children or be refused).
    pub(crate) upsert: bool,
    /// Destination tables whose only unique key is a primary key of these columns (lower
    /// case, sorted), read for this batch. A put of changes into such a table, when the
    /// source's key is the same columns, is written as one `INSERT ... ON DUPLICATE KEY
    /// UPDATE` (an update in place) instead of a delete and an insert: no other key can
    /// collide, so it can only meet the row of its own key.
    pub(crate) key_only: &'a HashMap<TableId, Vec<String>>,
    /// Copied rows of unsharded tables go by `LOAD DATA LOCAL INFILE` (see bulk.rs) when the
    /// destination allows it.
    pub(crate) bulk: Option<&'a Payloads>,
}

impl Landing<'_> {
    /// Whether puts of `table` (a source schema) into `dest` may be written in place.
    pub(crate) fn in_place(&self, table: &TableSchema, dest: &TableId) -> bool {
        self.key_only
            .get(dest)
            .is_some_and(|cols| *cols == key_columns(table))
    }
}

/// The source key's column names, lower case, sorted.
pub(crate) fn key_columns(table: &TableSchema) -> Vec<String> {
    let mut cols: Vec<String> = table
        .primary_key
        .iter()
        .filter_map(|&i| table.columns.get(i))
        .map(|c| c.name.to_lowercase())
        .collect();
    cols.sort();
    cols
}

impl Landing<'_> {
    /// The destination table of source table `t`.
    pub(crate) fn dest(&self, t: &TableId) -> TableId {
        self.merge.get(t).cloned().unwrap_or_else(|| t.clone())
    }
}

/// `e` (a refusal of action `a`) naming the table, the key and the source position, with the
/// fix for the usual causes.
pub(crate) fn located(e: SinkError, a: &Action<'_>, pos: &sluice_core::Position) -> SinkError {
    let SinkError::Rejected(msg) = e else {
        return e;
    };
    let (table, key) = match a {
        Action::Put(s, row, _) => (s, key_of(s, row)),
        Action::Remove(s, key) => (s, key.clone()),
    };
    let names = table
        .primary_key
        .iter()
        .filter_map(|&i| table.columns.get(i))
        .map(|c| c.name.as_str());
    let key: Vec<String> = names
        .zip(&key)
        .map(|(n, v)| format!("{n}={}", sluice_core::render::value_to_json(v)))
        .collect();
    let fix = if ["ERROR 1452 ", "ERROR 1451 ", "ERROR 1216 ", "ERROR 1217 "]
        .iter()
        .any(|c| msg.contains(c))
    {
        "a foreign key at the destination refused it: leave destination.foreign_key_checks off \
         (the default) or include the referenced table in the project"
    } else if [
        "ERROR 1406 ",
        "ERROR 1366 ",
        "ERROR 1264 ",
        "ERROR 1265 ",
        "ERROR 1292 ",
        "ERROR 1690 ",
    ]
    .iter()
    .any(|c| msg.contains(c))
    {
        "the destination column cannot hold the source's value: give it the source's type"
    } else if msg.contains("ERROR 1048 ") {
        "the destination column is NOT NULL where the source's allows NULL: make it nullable"
    } else {
        "change the destination table or the data so that the row fits, then run again"
    };
    SinkError::Rejected(format!(
        "{msg}; the change to {} with key ({}) at {pos}; {fix}",
        table.id,
        key.join(", ")
    ))
}

/// Applies actions in order, grouping runs of one table and one kind into multi-row
/// statements (each key appears once: runs cannot reorder changes of one key).
///
/// `copied`: the actions are rows of a full-sync chunk, whose keys are normally not at the
/// destination yet: a put is tried as a plain INSERT first, and only when a key is already
/// there (a chunk copied again after a crash) does it fall back to delete-then-insert. The
/// delete of absent keys costs the destination more than the insert itself.
pub(crate) async fn apply(
    conn: &mut mysql_async::Transaction<'_>,
    actions: &[Action<'_>],
    to: &Landing<'_>,
    copied: bool,
) -> Result<(), SinkError> {
    let mut i = 0;
    while i < actions.len() {
        let table = action_table(&actions[i]);
        let put = matches!(actions[i], Action::Put(..));
        let mut j = i;
        while j < actions.len()
            && same_table(action_table(&actions[j]), table)
            && matches!(actions[j], Action::Put(..)) == put
            && j - i < 500
        {
            j += 1;
        }
        let run = &actions[i..j];
        let dest = to.merge.get(&table.id).unwrap_or(&table.id);
        let name = format!("{}.{}", q(&dest.db), q(&dest.table));
        let origin = to
            .shard
            .map(|s| format!("{s}/{}.{}", table.id.db, table.id.table));
        let has = to.columns.get(dest);
        if let (Some(payloads), true, None, false) = (to.bulk, put && copied, &origin, to.upsert) {
            // The whole run of this table's copied rows in one load (no parameter limit).
            let mut k = j;
            while k < actions.len()
                && same_table(action_table(&actions[k]), table)
                && matches!(actions[k], Action::Put(..))
            {
                k += 1;
            }
            match bulk::load(conn, payloads, &name, table, &actions[i..k], has)
                .await
                .map_err(|e| insert_failed(e, false))?
            {
                Loaded::Clean => {
                    payloads.announce(dest);
                    i = k;
                    continue;
                }
                // Written again below, 500 rows at a time, by the ordinary path.
                Loaded::Declined(why) => {
                    tracing::info!(table = %dest, "full sync: a chunk is written again by INSERT: {why}");
                }
            }
        }
        // A put of a shard's row first checks that no other shard holds its key.
        let check_shards = origin.is_some() && put && !to.shard_in_key;
        // Copied rows are tried as a plain INSERT first; no key list is needed for that.
        if put
            && copied
            && !check_shards
            && !to.upsert
            && insert_new(conn, &name, table, run, &origin, has).await?
        {
            i = j;
            continue;
        }
        let keys: Vec<Vec<&Value>> = run
            .iter()
            .map(|a| match a {
                Action::Put(s, row, _) => key_of(s, row),
                Action::Remove(_, k) => k.clone(),
            })
            .collect();
        let mut params = Vec::new();
        let cond = key_in(table, &keys, &mut params).map_err(SinkError::Rejected)?;
        if let (Some(origin), true) = (&origin, check_shards) {
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
        if put
            && copied
            && check_shards
            && !to.upsert
            && insert_new(conn, &name, table, run, &origin, has).await?
        {
            i = j;
            continue;
        }
        // In place: with foreign-key checks on (see `upsert`), or changes (not copied rows:
        // those are new keys) of an unsharded table whose only unique key is its key.
        let in_place = to.upsert || (!copied && origin.is_none() && to.in_place(table, dest));
        // Not a shard's rows: its `WHERE key IN` would also meet the other shards' rows.
        if put
            && in_place
            && origin.is_none()
            && has.is_none()
            && update_changed(conn, &name, table, run).await?
        {
            i = j;
            continue;
        }
        if put && in_place {
            let (mut sql, values) = insert(&name, table, run, origin.as_deref(), has)?;
            let cols = table
                .columns
                .iter()
                .filter(|c| has.is_none_or(|h| h.contains(&c.name.to_lowercase())))
                .map(|c| format!("{0} = VALUES({0})", q(&c.name)))
                .collect::<Vec<_>>();
            sql.push_str(" ON DUPLICATE KEY UPDATE ");
            sql.push_str(&cols.join(", "));
            conn.exec_drop(sql, values)
                .await
                .map_err(|e| insert_failed(e, origin.is_some()))?;
            i = j;
            continue;
        }
        conn.exec_drop(format!("DELETE FROM {name} WHERE {cond}"), params)
            .await
            .map_err(unavailable("delete"))?;
        if put {
            let (sql, values) = insert(&name, table, run, origin.as_deref(), has)?;
            conn.exec_drop(sql, values)
                .await
                .map_err(|e| insert_failed(e, origin.is_some()))?;
        }
        i = j;
    }
    Ok(())
}

/// Writes the puts of `run` as one `UPDATE ... SET c = CASE key WHEN ? THEN ? ... END WHERE
/// key IN (...)` of only the columns their updates changed, when every put is an update of a
/// row already there (a mask), the key is one integer column and some column is left out:
/// the destination then neither receives nor compares the others (the update backlog of
/// bench/db-apply: `k` of `id, k, c, pad`). True when done; false, with nothing changed, when
/// the run does not qualify, and also when fewer rows changed than the run has (a row missing
/// at the destination, or holding these values already): the caller then writes whole images.
async fn update_changed(
    conn: &mut mysql_async::Transaction<'_>,
    name: &str,
    table: &TableSchema,
    run: &[Action<'_>],
) -> Result<bool, SinkError> {
    let [pk] = table.primary_key[..] else {
        return Ok(false);
    };
    let mut mask = 0u64;
    let mut rows = Vec::with_capacity(run.len());
    for a in run {
        let Action::Put(_, row, Some(m)) = a else {
            return Ok(false);
        };
        if row.len() != table.columns.len()
            || !matches!(row.get(pk), Some(Value::Int(_) | Value::UInt(_)))
        {
            return Ok(false);
        }
        mask |= m;
        rows.push(*row);
    }
    // The columns other than the key (a mask is only made for up to 64 columns).
    let columns = u64::MAX >> (64 - table.columns.len().clamp(1, 64));
    let others = columns & !(1u64 << pk);
    if mask == 0 || mask & (1 << pk) != 0 || mask & others == others {
        return Ok(false);
    }
    let Some(key) = table.columns.get(pk).map(|c| q(&c.name)) else {
        return Ok(false);
    };
    let p = |v: &Value| param(v).map_err(|e| SinkError::Rejected(format!("{}: {e}", table.id)));
    let mut sets = Vec::new();
    let mut params = Vec::new();
    for (c, col) in table.columns.iter().enumerate() {
        if mask & (1 << c) == 0 {
            continue;
        }
        let mut case = format!("{} = CASE {key}", q(&col.name));
        for row in &rows {
            case.push_str(" WHEN ? THEN ?");
            params.push(p(&row[pk])?);
            params.push(p(&row[c])?);
        }
        case.push_str(" END");
        sets.push(case);
    }
    for row in &rows {
        params.push(p(&row[pk])?);
    }
    let sql = format!(
        "UPDATE {name} SET {} WHERE {key} IN ({})",
        sets.join(", "),
        vec!["?"; rows.len()].join(", ")
    );
    conn.exec_drop(sql, params)
        .await
        .map_err(unavailable("update"))?;
    if conn.affected_rows() == rows.len() as u64 {
        return Ok(true);
    }
    tracing::debug!(table = %table.id, "an update of changed columns met fewer rows than it has; writing whole images");
    Ok(false)
}

/// Inserts the puts of `run` as new rows: false (and nothing written: a failed statement is
/// rolled back alone, the transaction goes on) when a key is already there.
async fn insert_new(
    conn: &mut mysql_async::Transaction<'_>,
    name: &str,
    table: &TableSchema,
    run: &[Action<'_>],
    origin: &Option<String>,
    has: Option<&HashSet<String>>,
) -> Result<bool, SinkError> {
    let (sql, values) = insert(name, table, run, origin.as_deref(), has)?;
    match conn.exec_drop(sql, values).await {
        Ok(()) => Ok(true),
        Err(mysql_async::Error::Server(e)) if e.code == 1062 => Ok(false),
        Err(e) => Err(insert_failed(e, origin.is_some())),
    }
}

/// An insert the destination refused. For a shard's row, an unknown column means another
/// shard's DDL dropped it after this sink last read the table: worth writing again (the
/// columns are read anew), not a rejection.
fn insert_failed(e: mysql_async::Error, sharded: bool) -> SinkError {
    match &e {
        mysql_async::Error::Server(s) if sharded && s.code == 1054 => SinkError::Unavailable(
            format!("destination: the table changed under this batch (DDL of another shard); writing it again: {e}"),
        ),
        _ => unavailable("insert")(e),
    }
}

/// Which columns of `table` are written: those the destination has (`has`; all when None).
pub(crate) fn kept_columns(table: &TableSchema, has: Option<&HashSet<String>>) -> Vec<bool> {
    table
        .columns
        .iter()
        .map(|c| has.is_none_or(|h| h.contains(&c.name.to_lowercase())))
        .collect()
}

/// One multi-row INSERT of the puts of `run` (with the shard column when sharded), of the
/// columns the destination has (`has`; all when None): the statement and its parameters; a
/// value the destination cannot take is a rejection.
pub(crate) fn insert(
    name: &str,
    table: &TableSchema,
    run: &[Action<'_>],
    origin: Option<&str>,
    has: Option<&HashSet<String>>,
) -> Result<(String, Vec<MyValue>), SinkError> {
    let keep = kept_columns(table, has);
    let mut cols: Vec<String> = table
        .columns
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| q(&c.name))
        .collect();
    if origin.is_some() {
        cols.push(q(SHARD_COLUMN));
    }
    let one = format!("({})", vec!["?"; cols.len()].join(", "));
    let mut params = Vec::with_capacity(run.len() * cols.len());
    let mut rows = 0;
    for a in run {
        if let Action::Put(_, row, _) = a {
            rows += 1;
            for v in row.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| v) {
                params
                    .push(param(v).map_err(|e| SinkError::Rejected(format!("{}: {e}", table.id)))?);
            }
            if let Some(o) = origin {
                params.push(MyValue::Bytes(o.as_bytes().to_vec()));
            }
        }
    }
    let sql = format!(
        "INSERT INTO {name} ({}) VALUES {}",
        cols.join(", "),
        vec![one; rows].join(", ")
    );
    Ok((sql, params))
}

/// One writer's share of a batch in one transaction: `acts` (tables with a key), `raw` (rows
/// of tables without one) and, with `checkpoint` (meta database, project, writer, sequence,
/// position), the writer's checkpoint row.
pub(crate) async fn commit_share(
    conn: &mut mysql_async::Conn,
    acts: &[Action<'_>],
    raw: &[&RowChange],
    to: &Landing<'_>,
    copied: bool,
    mariadb: bool,
    checkpoint: Option<(&str, &str, usize, u64, &str)>,
) -> Result<(), SinkError> {
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .map_err(unavailable("begin"))?;
    let applied = async {
        apply(&mut tx, acts, to, copied).await?;
        if !raw.is_empty() {
            crate::keyless::apply(&mut tx, raw, &|t| to.dest(t), mariadb).await?;
        }
        if let Some((meta_db, project, w, seq, pos)) = checkpoint {
            write_checkpoint(&mut tx, meta_db, project, w..w + 1, seq, pos).await?;
        }
        Ok::<_, SinkError>(())
    }
    .await;
    if let Err(e) = applied {
        // Release this writer's locks now: a dropped transaction is rolled back only when its
        // connection is next used, and meanwhile the other writers would wait on its rows (a
        // lock wait timeout, 50 s by default, per batch).
        let _ = tx.rollback().await;
        return Err(e);
    }
    tx.commit().await.map_err(unavailable("commit"))
}

/// Records that `writers` applied everything up to source sequence `seq` (never lowering it).
pub(crate) async fn write_checkpoint<Q: Queryable>(
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

/// Only the last action of each key (actions come with their key text), in the order of
/// those last actions.
///
/// The kept put's mask covers every change of its key here: the row before the batch differs
/// from the last image in the columns any of them changed, and is known to exist only when
/// every one was an update that kept its key.
pub(crate) fn merged<'a>(actions: Vec<(String, Action<'a>)>) -> Vec<Action<'a>> {
    let mut last: HashMap<&str, (usize, Option<u64>)> = HashMap::with_capacity(actions.len());
    for (i, (key, a)) in actions.iter().enumerate() {
        let mask = match a {
            Action::Put(_, _, m) => *m,
            Action::Remove(..) => None,
        };
        last.entry(key.as_str())
            .and_modify(|(at, acc)| {
                *at = i;
                *acc = acc.zip(mask).map(|(x, y)| x | y);
            })
            .or_insert((i, mask));
    }
    let keep: HashMap<usize, Option<u64>> = last.into_values().collect();
    actions
        .into_iter()
        .enumerate()
        .filter_map(|(i, (_, a))| {
            let mask = keep.get(&i)?;
            Some(match a {
                Action::Put(s, row, _) => Action::Put(s, row, *mask),
                remove => remove,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{Column, ColumnType};

    fn table() -> TableSchema {
        let col = |name: &str| Column {
            name: name.into(),
            ty: ColumnType::Integer {
                bytes: 4,
                unsigned: false,
            },
            sql_type: "int".into(),
            nullable: true,
        };
        TableSchema {
            id: TableId::new("d", "t"),
            columns: vec![col("id"), col("a"), col("b")],
            primary_key: vec![0],
        }
    }

    fn masks(acts: Vec<Action<'_>>) -> Vec<Option<u64>> {
        let keyed = acts.into_iter().map(|a| (action_key(&a), a)).collect();
        merged(keyed)
            .into_iter()
            .map(|a| match a {
                Action::Put(_, _, m) => m,
                Action::Remove(..) => Some(u64::MAX),
            })
            .collect()
    }

    #[test]
    fn a_kept_put_knows_every_column_its_key_changed_here_or_none() {
        let t = table();
        let row = |id: i64, a: i64, b: i64| vec![Value::Int(id), Value::Int(a), Value::Int(b)];
        let (r1a, r1b, r1c) = (row(1, 0, 0), row(1, 1, 0), row(1, 1, 1));
        assert_eq!(changed(&r1a, &r1b), Some(0b010));
        assert_eq!(changed(&r1a, &[Value::Int(1)]), None, "an image not whole");
        let partial = vec![Value::Int(1), Value::Unavailable, Value::Int(0)];
        assert_eq!(changed(&partial, &r1b), None, "a column not logged");
        // Two updates of one key: the row before the batch differs in both columns.
        let two = vec![
            Action::Put(&t, &r1b, changed(&r1a, &r1b)),
            Action::Put(&t, &r1c, changed(&r1b, &r1c)),
        ];
        assert_eq!(masks(two), vec![Some(0b110)]);
        // Inserted or removed in the batch: the row may not be there before it.
        let inserted = vec![
            Action::Put(&t, &r1b, None),
            Action::Put(&t, &r1c, Some(0b100)),
        ];
        assert_eq!(masks(inserted), vec![None]);
        let removed = vec![
            Action::Remove(&t, key_of(&t, &r1a)),
            Action::Put(&t, &r1c, Some(0b100)),
        ];
        assert_eq!(masks(removed), vec![None]);
        // Other keys keep their own.
        let r2 = row(2, 5, 5);
        let apart = vec![
            Action::Put(&t, &r1c, Some(0b100)),
            Action::Put(&t, &r2, Some(0b010)),
        ];
        assert_eq!(masks(apart), vec![Some(0b100), Some(0b010)]);
    }
}
