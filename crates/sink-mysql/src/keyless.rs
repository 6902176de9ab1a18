//! Tables without a usable key (no primary key, no NOT NULL unique key): changes are applied by
//! their whole images, one row at a time, as MySQL replication applies row events to such a
//! table: an insert is inserted, a delete removes one row equal to its before image
//! (`DELETE ... WHERE ... LIMIT 1`), an update rewrites one such row. Slow (the destination
//! scans for each row) and not idempotent, so these changes always go to writer 0, in source
//! order, never merged, and are skipped on replay only by writer 0's exact checkpoint sequence.
//!
//! Equality is exact: text is compared as its UTF-8 bytes (a case-insensitive collation or
//! trailing spaces would match another row), NULL with `<=>`, FLOAT as a FLOAT parameter. A row
//! that is not there to update or delete means the destination already differs from the
//! source: the project stops and says so rather than drift further.

use mysql_async::prelude::Queryable;
use mysql_async::Value as MyValue;
use sluice_core::sink::SinkError;
use sluice_core::{ColumnType, Op, RowChange, TableSchema, Value};

use crate::apply::{insert, Action};
use crate::value::param;
use crate::{q, unavailable};

/// The condition matching a row equal to `image`, and its parameters.
fn matching(
    schema: &TableSchema,
    image: &[Value],
    mariadb: bool,
) -> Result<(String, Vec<MyValue>), SinkError> {
    let mut conds = Vec::with_capacity(image.len());
    let mut params = Vec::with_capacity(image.len());
    for (c, v) in schema.columns.iter().zip(image) {
        let col = q(&c.name);
        conds.push(match (&c.ty, v) {
            (_, Value::Null) => format!("{col} IS NULL"),
            (ColumnType::Text { .. } | ColumnType::Enum { .. } | ColumnType::Set { .. }, _) => {
                format!("CAST(CONVERT({col} USING utf8mb4) AS BINARY) = CAST(? AS BINARY)")
            }
            (ColumnType::Json, _) if mariadb => {
                format!("CAST(CONVERT({col} USING utf8mb4) AS BINARY) = CAST(? AS BINARY)")
            }
            (ColumnType::Json, _) => format!("{col} = CAST(? AS JSON)"),
            _ => format!("{col} = ?"),
        });
        if *v != Value::Null {
            params.push(param(v).map_err(|e| SinkError::Rejected(format!("{}: {e}", schema.id)))?);
        }
    }
    Ok((conds.join(" AND "), params))
}

/// Applies the changes of tables without a key in order.
pub(crate) async fn apply(
    conn: &mut mysql_async::Transaction<'_>,
    rows: &[&RowChange],
    dest_of: &(dyn Fn(&sluice_core::TableId) -> sluice_core::TableId + Sync),
    mariadb: bool,
) -> Result<(), SinkError> {
    let mut i = 0;
    while i < rows.len() {
        let r = rows[i];
        let dest = dest_of(&r.table.id);
        let name = format!("{}.{}", q(&dest.db), q(&dest.table));
        match (r.op, r.before.as_deref(), r.after.as_deref()) {
            (Op::Insert, _, Some(_)) => {
                // A run of inserts into one table: one multi-row statement.
                let mut puts = Vec::new();
                let mut j = i;
                while j < rows.len() && j - i < 500 {
                    let (rj, Some(after)) = (rows[j], rows[j].after.as_deref()) else {
                        break;
                    };
                    if rj.op != Op::Insert || !std::ptr::eq(rj.table.as_ref(), r.table.as_ref()) {
                        break;
                    }
                    puts.push(Action::Put(&r.table, after, None));
                    j += 1;
                }
                let (sql, params) = insert(&name, &r.table, &puts, None, None)?;
                conn.exec_drop(sql, params)
                    .await
                    .map_err(unavailable("insert"))?;
                i = j;
                continue;
            }
            (Op::Delete, Some(before), _) => {
                let (cond, params) = matching(&r.table, before, mariadb)?;
                conn.exec_drop(format!("DELETE FROM {name} WHERE {cond} LIMIT 1"), params)
                    .await
                    .map_err(unavailable("delete"))?;
            }
            (Op::Update, Some(before), Some(after)) => {
                let set: Vec<String> = r
                    .table
                    .columns
                    .iter()
                    .map(|c| format!("{} = ?", q(&c.name)))
                    .collect();
                let mut params = Vec::with_capacity(after.len() * 2);
                for v in after {
                    params.push(
                        param(v)
                            .map_err(|e| SinkError::Rejected(format!("{}: {e}", r.table.id)))?,
                    );
                }
                let (cond, p) = matching(&r.table, before, mariadb)?;
                params.extend(p);
                conn.exec_drop(
                    format!("UPDATE {name} SET {} WHERE {cond} LIMIT 1", set.join(", ")),
                    params,
                )
                .await
                .map_err(unavailable("update"))?;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        if conn.affected_rows() == 0 && r.op == Op::Delete {
            return Err(missing(r, &dest));
        }
        if conn.affected_rows() == 0 && r.op == Op::Update && r.before != r.after {
            return Err(missing(r, &dest));
        }
        i += 1;
    }
    Ok(())
}

fn missing(r: &RowChange, dest: &sluice_core::TableId) -> SinkError {
    SinkError::Rejected(format!(
        "the row to {} in {dest} (a table without a key, applied by matching whole rows) is not \
         at the destination, at {}: the destination already differs from the source; copy the \
         table again (a full sync) or give it a primary key",
        r.op.as_str(),
        r.pos
    ))
}
