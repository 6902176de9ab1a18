//! What the source must satisfy before a project starts, read from the source itself: the
//! tables the rules select, their definitions for schema sync, and that row filters, sharding
//! columns and column subsets name columns the tables have, and the keys of tables without a
//! primary key.

use std::collections::HashMap;

use sluice_core::source::{Catalog, SourceError};
use sluice_core::{TableId, TableSpec};

use crate::error::RunError;
use crate::project::Project;

fn source_err(e: SourceError) -> RunError {
    RunError::from_source(e)
}

/// Tables of the source the rules select (for schema sync).
pub(crate) fn selected_tables(
    cat: &mut dyn Catalog,
    p: &Project,
) -> Result<Vec<TableId>, RunError> {
    Ok(cat
        .tables()
        .map_err(source_err)?
        .into_iter()
        .filter(|t| p.router.selects(t))
        .collect())
}

/// What schema sync is handed: destination names, and for a destination that creates tables
/// the source definitions (column subsets applied).
pub(crate) fn table_specs(
    cat: &mut dyn Catalog,
    p: &Project,
    tables: &[TableId],
) -> Result<Vec<TableSpec>, RunError> {
    let mut specs = Vec::with_capacity(tables.len());
    for t in tables {
        let dest = p.router.rename.get(t).cloned().unwrap_or_else(|| t.clone());
        let def = if p.destination.needs().definitions {
            let mut def = cat.definition(t).map_err(source_err)?;
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
    Ok(specs)
}

/// Each selected table gets at most one row filter, and its columns exist.
pub(crate) fn check_filters(
    cat: &mut dyn Catalog,
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
            return Err(RunError::Check(format!(
                "objects.filters: {t} matches {} filter patterns; make them disjoint",
                matching.len()
            )));
        }
        let sharding = p.sharding.get(t);
        if sharding.is_none() && matching.is_empty() {
            continue;
        }
        // The table's columns, read once for both checks.
        let have: Vec<String> = cat
            .columns(t)
            .map_err(source_err)?
            .into_iter()
            .map(|c| c.name)
            .collect();
        if let Some(cols) = sharding {
            for c in cols {
                if !have.iter().any(|x| x.eq_ignore_ascii_case(c)) {
                    return Err(RunError::Check(format!(
                        "objects.sharding: {t} has no column {c}"
                    )));
                }
            }
        }
        let Some((_, f)) = matching.first() else {
            continue;
        };
        for c in f.columns() {
            if !have.iter().any(|x| x.eq_ignore_ascii_case(c)) {
                return Err(RunError::Check(format!(
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
pub(crate) fn check_column_subsets(cat: &mut dyn Catalog, p: &Project) -> Result<(), RunError> {
    for (t, keep) in &p.router.columns {
        let cols = cat.columns(t).map_err(source_err)?;
        let has = |n: &str| keep.iter().any(|k| k.eq_ignore_ascii_case(n));
        for k in keep {
            if !cols.iter().any(|c| c.name.eq_ignore_ascii_case(k)) {
                return Err(RunError::Check(format!(
                    "objects.columns: {t} has no column {k}"
                )));
            }
        }
        if let Some(c) = cols.iter().find(|c| c.in_primary_key && !has(&c.name)) {
            return Err(RunError::Check(format!(
                "objects.columns: {t}: the primary-key column {} must be delivered (messages are keyed by it); add it to the list",
                c.name
            )));
        }
    }
    Ok(())
}

/// Keys of the selected tables without a primary key that `objects.keys` does not name: a
/// NOT NULL unique key where there is one. A table with neither is delivered keyless; each is
/// warned about once (a database destination applies it by whole rows, see docs/DATABASE.md).
pub(crate) fn keys_of_keyless_tables(
    cat: &mut dyn Catalog,
    p: &Project,
    tables: &[TableId],
) -> Result<HashMap<TableId, Vec<String>>, RunError> {
    // One query for all tables (a sharded instance can hold thousands).
    let keyed = cat.primary_keyed().map_err(source_err)?;
    let mut found = HashMap::new();
    for t in tables {
        if p.keys.contains_key(t) || keyed.contains(t) {
            continue;
        }
        match cat.unique_key(t).map_err(source_err)? {
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
