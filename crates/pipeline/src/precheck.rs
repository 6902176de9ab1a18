//! The precheck of a project before it starts (`sluice precheck`, the service's precheck
//! action): everything a start would find wrong, found without copying anything — the
//! source's own checks (its log settings, our replica id, privileges, retention, keys), the
//! project's fit to the source (tables selected, filters, column subsets), and the destination
//! reached with its settings. Each failure names its fix; nothing is written anywhere except
//! what the destination check needs to prove it can write (the checkpoint table of a
//! database destination).

use sluice_core::source::{Finding, Findings};

use crate::checks::{check_column_subsets, check_filters, keys_of_keyless_tables, selected_tables};
use crate::project::Project;

/// The findings of a project's precheck: every part of a sharded project, then the
/// destination.
pub fn precheck(p: &Project) -> Findings {
    let mut out = Findings::default();
    let parts = crate::plan::parts(p);
    let many = parts.len() > 1;
    for part in &parts {
        let at = |f: Finding| match many {
            true => Finding {
                problem: format!("instance {}: {}", instance_of(p, part), f.problem),
                ..f
            },
            false => f,
        };
        let found = source_findings(part);
        for c in found.checked {
            if !out.checked.contains(&c) {
                out.checked.push(c);
            }
        }
        out.failures.extend(found.failures.into_iter().map(at));
        out.warnings.extend(found.warnings.into_iter().map(at));
    }
    // A project that ran before may still hold its replica connection for a moment after it
    // stopped: the same id is then most likely its own.
    let ran = sluice_meta::MetaStore::open(&p.data_dir).is_ok_and(|m| {
        m.checkpoint(&p.name).ok().flatten().is_some()
            || m.vector_checkpoint(&p.name).is_ok_and(|v| !v.is_empty())
    });
    if ran {
        let (own, rest): (Vec<Finding>, Vec<Finding>) = std::mem::take(&mut out.failures)
            .into_iter()
            .partition(|f| f.item == "server_id" && f.problem.contains("is connected"));
        out.failures = rest;
        out.warnings.extend(own.into_iter().map(|f| Finding {
            problem: format!(
                "{} (this project ran before: it may be its own connection, still closing)",
                f.problem
            ),
            ..f
        }));
    }
    out.checked.push("destination".into());
    if let Err(e) = p.destination.check() {
        out.failures.push(Finding {
            item: "destination".into(),
            problem: format!("the destination cannot be used: {e}"),
            fix: "check the destination's address, credentials and privileges (create topics or tables, write)".into(),
        });
    }
    out
}

/// The instance a part of a sharded project reads (`NAME.INSTANCE` -> `INSTANCE`).
fn instance_of<'a>(p: &Project, part: &'a Project) -> &'a str {
    part.name
        .strip_prefix(&format!("{}.", p.name))
        .unwrap_or(&part.name)
}

fn failure(item: &str, problem: String, fix: &str) -> Finding {
    Finding {
        item: item.into(),
        problem,
        fix: fix.into(),
    }
}

/// What one server of the source gives: its own checks and the project's fit.
fn source_findings(p: &Project) -> Findings {
    let mut out = Findings::default();
    out.checked.push("source connection".into());
    let source = match p.source.open() {
        Ok(s) => s,
        Err(e) => {
            out.failures.push(failure(
                "source connection",
                format!("the source cannot be opened: {e}"),
                "check the source's address, user and password, and that it runs",
            ));
            return out;
        }
    };
    let mut cat = match source.catalog() {
        Ok(c) => c,
        Err(e) => {
            out.failures.push(failure(
                "source connection",
                format!("the source cannot be reached: {e}"),
                "check the source's address, user and password, and that it runs",
            ));
            return out;
        }
    };
    let cat = cat.as_mut();
    out.checked.push("objects".into());
    let tables = match selected_tables(cat, p) {
        Ok(t) if t.is_empty() => {
            out.failures.push(failure(
                "objects",
                "the object rules select no table of the source".into(),
                "check objects.include and objects.exclude against the source's tables",
            ));
            t
        }
        Ok(t) => t,
        Err(e) => {
            out.failures.push(failure(
                "objects",
                e.to_string(),
                "check the source user's SELECT privilege",
            ));
            return out;
        }
    };
    for (item, r) in [
        ("column subsets", check_column_subsets(cat, p)),
        ("row filters", check_filters(cat, p, &tables)),
    ] {
        out.checked.push(item.into());
        if let Err(e) = r {
            out.failures.push(failure(
                item,
                e.to_string(),
                "fix the project's objects section",
            ));
        }
    }
    if let Err(e) = keys_of_keyless_tables(cat, p, &tables) {
        out.failures.push(failure(
            "primary keys",
            e.to_string(),
            "add a primary key, or name unique NOT NULL columns in objects.keys",
        ));
    }
    // The rows full sync would copy, for the retention check.
    let rows = if p.full {
        match source.plan(&tables, &p.keys, p.full_chunk_rows, p.full_readers) {
            Ok(units) => units.iter().map(|u| u.estimated_rows).sum(),
            Err(_) => 0,
        }
    } else {
        0
    };
    // A table keyed by objects.keys needs no primary key.
    let unkeyed: Vec<_> = tables
        .iter()
        .filter(|t| !p.keys.contains_key(t))
        .cloned()
        .collect();
    match cat.precheck(&unkeyed, rows) {
        Ok(found) => {
            out.checked.extend(found.checked);
            out.failures.extend(found.failures);
            out.warnings.extend(found.warnings);
        }
        Err(e) => out.failures.push(failure(
            "source checks",
            format!("the source's settings could not be read: {e}"),
            "grant the source user what reading its log needs (MySQL: REPLICATION CLIENT; MariaDB: BINLOG MONITOR; PostgreSQL: REPLICATION) and SELECT",
        )),
    }
    out
}

/// A table the project selects and the name it has at the destination (after rename).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The source table.
    pub table: sluice_core::TableId,
    /// Its name at the destination.
    pub to: sluice_core::TableId,
}

/// The tables a project selects on its source (every instance of a sharded one), each with
/// its destination name, checked as a start checks them: the row filters and column subsets
/// name columns the tables have. An unreachable source is a [`RunError`] from the source; a
/// rule that does not fit the tables is a `RunError::Check` whose text starts with the
/// project-file field (`objects.columns: ...`).
pub fn selection(p: &Project) -> Result<Vec<Selected>, crate::RunError> {
    let mut out: Vec<Selected> = Vec::new();
    for part in crate::plan::parts(p) {
        let source = part.source.open().map_err(crate::RunError::from_source)?;
        let mut cat = source.catalog().map_err(crate::RunError::from_source)?;
        let cat = cat.as_mut();
        let tables = selected_tables(cat, &part)?;
        check_column_subsets(cat, &part)?;
        check_filters(cat, &part, &tables)?;
        for t in tables {
            let to = part
                .router
                .rename
                .get(&t)
                .cloned()
                .unwrap_or_else(|| t.clone());
            if !out.iter().any(|s| s.table == t) {
                out.push(Selected { table: t, to });
            }
        }
    }
    out.sort_by(|a, b| (&a.table.db, &a.table.table).cmp(&(&b.table.db, &b.table.table)));
    Ok(out)
}
