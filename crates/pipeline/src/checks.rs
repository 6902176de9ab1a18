//! What the source must satisfy before a project starts, read from the source itself: the
//! tables the rules select, their definitions for schema sync, and that row filters, sharding
//! columns and column subsets name columns the tables have, and the keys of tables without a
//! primary key.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use sluice_core::{TableId, TableSpec};
use sluice_source_mysql::snapshot;

use crate::project::Project;
use crate::run::RunError;

fn source_err(e: impl std::fmt::Display) -> RunError {
    RunError::Source(e.to_string())
}

/// Tables of the source the rules select (for schema sync).
pub(crate) async fn selected_tables(
    conn: &mut mysql_async::Conn,
    p: &Project,
) -> Result<Vec<TableId>, RunError> {
    let rows: Vec<(String, String)> = conn
        .query(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN \
             ('mysql','information_schema','performance_schema','sys')",
        )
        .await
        .map_err(source_err)?;
    Ok(rows
        .into_iter()
        .map(|(d, t)| TableId::new(d, t))
        .filter(|t| p.router.selects(t))
        .collect())
}

/// What schema sync is handed: destination names, and for a database destination the source
/// definitions (column subsets applied).
pub(crate) async fn table_specs(
    p: &Project,
    src_opts: &mysql_async::Opts,
    tables: &[TableId],
) -> Result<Vec<TableSpec>, RunError> {
    let mut conn = None;
    let mut specs = Vec::with_capacity(tables.len());
    for t in tables {
        let dest = p.router.rename.get(t).cloned().unwrap_or_else(|| t.clone());
        let def = if p.destination.needs().definitions {
            if conn.is_none() {
                conn = Some(
                    mysql_async::Conn::new(src_opts.clone())
                        .await
                        .map_err(source_err)?,
                );
            }
            let c = conn
                .as_mut()
                .ok_or_else(|| RunError::Source("no connection".into()))?;
            let mut def = snapshot::table_def(c, t).await.map_err(source_err)?;
            if let Some(keep) = p.router.columns.get(t) {
                def.columns
                    .retain(|c| keep.iter().any(|k| k.eq_ignore_ascii_case(&c.name)));
                def.indexes.retain(|i| {
                    i.columns
                        .iter()
                        .all(|(c, _)| keep.iter().any(|k| k.eq_ignore_ascii_case(c)))
                });
            }
            Some(def)
        } else {
            None
        };
        specs.push(TableSpec { dest, def });
    }
    if let Some(c) = conn {
        let _ = c.disconnect().await;
    }
    Ok(specs)
}

/// Each selected table gets at most one row filter, and its columns exist.
pub(crate) async fn check_filters(
    conn: &mut mysql_async::Conn,
    p: &Project,
    tables: &[TableId],
) -> Result<(), RunError> {
    for t in tables {
        let matching: Vec<_> = p
            .router
            .filters
            .iter()
            .filter(|(pat, _)| pat.matches(t))
            .collect();
        if matching.len() > 1 {
            return Err(RunError::Source(format!(
                "objects.filters: {t} matches {} filter patterns; make them disjoint",
                matching.len()
            )));
        }
        let sharding = p.sharding.get(t);
        if sharding.is_none() && matching.is_empty() {
            continue;
        }
        // The table's columns, read once for both checks.
        let have: Vec<String> = conn
            .exec(
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = ? AND table_name = ?",
                (t.db.as_str(), t.table.as_str()),
            )
            .await
            .map_err(source_err)?;
        if let Some(cols) = sharding {
            for c in cols {
                if !have.iter().any(|x| x.eq_ignore_ascii_case(c)) {
                    return Err(RunError::Source(format!(
                        "objects.sharding: {t} has no column {c}"
                    )));
                }
            }
        }
        let Some((_, f)) = matching.first() else {
            continue;
        };
        for c in f.columns() {
            if !have.iter().any(|x| x.eq_ignore_ascii_case(&c)) {
                return Err(RunError::Source(format!(
                    "objects.filters: the condition for {t} ({}) reads column {c}, which the table does not have",
                    f.text()
                )));
            }
        }
    }
    Ok(())
}

/// A column subset must name existing columns and keep the primary key (messages are keyed
/// and partitioned by it).
pub(crate) async fn check_column_subsets(
    conn: &mut mysql_async::Conn,
    p: &Project,
) -> Result<(), RunError> {
    for (t, keep) in &p.router.columns {
        let cols: Vec<(String, String)> = conn
            .exec(
                "SELECT column_name, column_key FROM information_schema.columns \
                 WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                (t.db.as_str(), t.table.as_str()),
            )
            .await
            .map_err(source_err)?;
        let has = |n: &str| keep.iter().any(|k| k.eq_ignore_ascii_case(n));
        for k in keep {
            if !cols.iter().any(|(c, _)| c.eq_ignore_ascii_case(k)) {
                return Err(RunError::Source(format!(
                    "objects.columns: {t} has no column {k}"
                )));
            }
        }
        if let Some((c, _)) = cols.iter().find(|(c, key)| key == "PRI" && !has(c)) {
            return Err(RunError::Source(format!(
                "objects.columns: {t}: the primary-key column {c} must be delivered (messages are keyed by it); add it to the list"
            )));
        }
    }
    Ok(())
}

/// Keys of the selected tables without a primary key that `objects.keys` does not name: a
/// NOT NULL unique key where there is one. A table with neither is delivered keyless; each is
/// warned about once (a database destination applies it by whole rows, see docs/DATABASE.md).
pub(crate) async fn keys_of_keyless_tables(
    conn: &mut mysql_async::Conn,
    p: &Project,
    tables: &[TableId],
) -> Result<HashMap<TableId, Vec<String>>, RunError> {
    let with_pk: Vec<(String, String)> = conn
        .query(
            "SELECT DISTINCT table_schema, table_name FROM information_schema.statistics \
             WHERE index_name = 'PRIMARY'",
        )
        .await
        .map_err(source_err)?;
    let with_pk: std::collections::HashSet<TableId> = with_pk
        .into_iter()
        .map(|(d, t)| TableId::new(d, t))
        .collect();
    let mut found = HashMap::new();
    for t in tables {
        if with_pk.contains(t) || p.keys.contains_key(t) {
            continue;
        }
        match snapshot::unique_key(conn, t).await.map_err(source_err)? {
            Some(cols) => {
                tracing::info!(
                    "{t} has no primary key: keyed by its unique key ({})",
                    cols.join(", ")
                );
                found.insert(t.clone(), cols);
            }
            None => tracing::warn!(
                "{t} has no primary key and no NOT NULL unique key: a database destination \
                 applies its changes by matching whole rows, one at a time (slow), and full sync \
                 copies it in one consistent read (again from empty after a crash); add a \
                 primary key, or name unique columns in objects.keys"
            ),
        }
    }
    Ok(found)
}
