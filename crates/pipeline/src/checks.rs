//! What the source must satisfy before a project starts, read from the source itself: the
//! tables the rules select, their definitions for schema sync, and that row filters, sharding
//! columns and column subsets name columns the tables have.

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
        let def = if p.database.is_some() {
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
