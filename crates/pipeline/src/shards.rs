//! Logical tables: one table whose rows live in many physical tables over several MySQL-family
//! instances (`db_{00..15}.orders_{0000..0127}`), synchronized into one destination table.
//!
//! Each physical instance runs as a part of the project (`PROJECT.INSTANCE` in the metadata
//! store) with its own binlog reader and full sync; the project's checkpoint is the vector of
//! the parts' positions, stored as one row that each part updates in place. All parts write
//! through the database destination into the same destination tables, which record each row's
//! shard so a primary key found in two shards is reported instead of silently merged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::TableId;
use sluice_route::Pattern;

use crate::project::Project;
use crate::run::{RunError, RunOptions, RunSummary};

/// One physical instance of a sharded source.
#[derive(Debug, Clone)]
pub struct ShardInstance {
    /// Name (unique in the project).
    pub name: String,
    /// The instance as a source.
    pub source: std::sync::Arc<dyn crate::connect::SourceSpec>,
    /// Our replica id on this instance.
    pub server_id: u32,
    /// Its physical tables and the logical table each belongs to.
    pub tables: Vec<(TableId, TableId)>,
}

/// Expands one name pattern: `orders_{0000..0127}` (zero padding from the first bound's
/// digits), or ShardingSphere's inline forms `t_order_${0..3}` and `ds_${['a', 'b']}`;
/// several ranges multiply.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(b) = pattern.find('{') else {
        return Ok(vec![pattern.to_string()]);
    };
    // `${` is ShardingSphere's spelling of the same thing.
    let (start, inner) = if b > 0 && pattern.as_bytes()[b - 1] == b'$' {
        (b - 1, b + 1)
    } else {
        (b, b + 1)
    };
    let close = pattern[inner..]
        .find('}')
        .map(|c| inner + c)
        .ok_or_else(|| format!("{pattern:?}: a range is not closed with }}"))?;
    let range = pattern[inner..close].trim();
    let rest = expand(&pattern[close + 1..])?;
    if let Some(list) = range.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        // A list of names or numbers: `['a', 'b']`, `[0, 1]`.
        let mut out = Vec::new();
        for item in list.split(',') {
            let item = item.trim().trim_matches(|c| c == '\'' || c == '"');
            if item.is_empty() {
                return Err(format!("{pattern:?}: an empty item in a list"));
            }
            for r in &rest {
                out.push(format!("{}{item}{r}", &pattern[..start]));
            }
        }
        return Ok(out);
    }
    let (lo, hi) = range.split_once("..").ok_or_else(|| {
        format!("{pattern:?}: a range is written {{FROM..TO}} (or ${{['a', 'b']}}, a list)")
    })?;
    let width = lo.len();
    let (a, b): (u64, u64) = (
        lo.parse()
            .map_err(|_| format!("{pattern:?}: {lo:?} is not a number"))?,
        hi.parse()
            .map_err(|_| format!("{pattern:?}: {hi:?} is not a number"))?,
    );
    if a > b || b - a > 100_000 {
        return Err(format!(
            "{pattern:?}: the range {a}..{b} is empty or too large"
        ));
    }
    let mut out = Vec::new();
    for n in a..=b {
        // Padding only when the bound was written with leading zeros (`{0000..0127}`).
        let num = if lo.starts_with('0') && width > 1 {
            format!("{n:0width$}")
        } else {
            n.to_string()
        };
        for r in &rest {
            out.push(format!("{}{num}{r}", &pattern[..start]));
        }
    }
    Ok(out)
}

/// Expands `db_pattern.table_pattern` into physical tables.
pub fn expand_tables(pattern: &str) -> Result<Vec<TableId>, String> {
    // The dot between database and table is the first one outside braces.
    let mut depth = 0;
    let mut split = None;
    for (i, c) in pattern.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '.' if depth == 0 => {
                split = Some(i);
                break;
            }
            _ => {}
        }
    }
    let at = split.ok_or_else(|| format!("{pattern:?} must be db_pattern.table_pattern"))?;
    let (dbs, tables) = (expand(&pattern[..at])?, expand(&pattern[at + 1..])?);
    Ok(dbs
        .iter()
        .flat_map(|d| {
            tables
                .iter()
                .map(move |t| TableId::new(d.clone(), t.clone()))
        })
        .collect())
}

/// The part of `p` that reads instance `s`.
fn part(p: &Project, s: &ShardInstance) -> Project {
    let mut sub = p.clone();
    sub.name = format!("{}.{}", p.name, s.name);
    sub.source = s.source.clone();
    sub.shards = Vec::new();
    sub.parent = Some(p.name.clone());
    // Only this instance's physical tables; names stay physical up to the destination, which
    // maps them to the (renamed) logical table and records the shard of every row.
    sub.router.include = s.tables.iter().map(|(t, _)| Pattern::exact(t)).collect();
    let merge: HashMap<TableId, TableId> = s
        .tables
        .iter()
        .map(|(phys, logical)| {
            let dest = p
                .router
                .rename
                .get(logical)
                .cloned()
                .unwrap_or_else(|| logical.clone());
            (phys.clone(), dest)
        })
        .collect();
    // Per-table options are written against logical names: give them to each physical table.
    for (phys, logical) in &s.tables {
        if let Some(c) = p.router.columns.get(logical) {
            sub.router.columns.insert(phys.clone(), c.clone());
        }
        if let Some(k) = p.keys.get(logical) {
            sub.keys.insert(phys.clone(), k.clone());
        }
    }
    // Row filters too: each physical table gets the condition of its logical table (first);
    // patterns written against physical names still apply after those.
    let mut filters: Vec<_> = s
        .tables
        .iter()
        .filter_map(|(phys, logical)| {
            let (_, f) = p
                .router
                .filters
                .iter()
                .find(|(pat, _)| pat.matches(logical))?;
            Some((Pattern::exact(phys), f.clone()))
        })
        .collect();
    filters.extend(p.router.filters.iter().cloned());
    sub.router.filters = filters;
    sub.router.rename = HashMap::new();
    sub.destination = p.destination.for_part(&sub.name, &s.name, merge);
    // One metrics page per process: the first part serves it.
    if p.shards.first().map(|f| f.name.as_str()) != Some(s.name.as_str()) {
        sub.metrics_listen = None;
    }
    sub
}

/// Runs every part of a sharded project at once; the first failure stops the others.
pub(crate) fn run_sharded(p: &Project, opts: &RunOptions) -> Result<RunSummary, RunError> {
    if !p.destination.needs().sharded_sources {
        return Err(RunError::Sink(
            "a sharded source is synchronized into a database destination (type oceanbase, mariadb or mysql)".into(),
        ));
    }
    let parts: Vec<Project> = p.shards.iter().map(|s| part(p, s)).collect();
    // What the parts share at the destination is made once, before they start, so that their
    // first runs never race to create it.
    p.destination
        .prepare_shared()
        .map_err(|e| RunError::Sink(e.to_string()))?;
    // Create the shared metadata store (WAL, tables) before the parts open it at once.
    // and record the parts, whose checkpoints are then one vector row.
    let registered: Vec<(String, String)> = p
        .shards
        .iter()
        .zip(&parts)
        .map(|(s, sub)| (s.name.clone(), sub.name.clone()))
        .collect();
    sluice_meta::MetaStore::open(&p.data_dir)?.register_parts(&p.name, &registered)?;
    // Each part has its own stop flag (a run raises its own flag when it ends, to stop its
    // reader); the project's flag, or a failing part, raises all of them.
    let flags: Vec<Arc<AtomicBool>> = parts
        .iter()
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let done = AtomicBool::new(false);
    let results: Vec<Result<RunSummary, RunError>> = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if opts.stop.load(Ordering::SeqCst) {
                    for f in &flags {
                        f.store(true, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let handles: Vec<_> = parts
            .iter()
            .zip(&flags)
            .map(|(sub, flag)| {
                let flags = &flags;
                scope.spawn(move || {
                    let own = RunOptions {
                        until_caught_up: opts.until_caught_up,
                        stop: flag.clone(),
                    };
                    let r = crate::run::run(sub, &own);
                    if r.is_err() {
                        // One instance failed: stop the others gracefully.
                        for f in flags {
                            f.store(true, Ordering::SeqCst);
                        }
                    }
                    r
                })
            })
            .collect();
        let results = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(RunError::Source("a shard reader panicked".into())))
            })
            .collect();
        done.store(true, Ordering::SeqCst);
        results
    });
    let mut summary = RunSummary {
        completed: true,
        ..RunSummary::default()
    };
    for (r, s) in results.into_iter().zip(&p.shards) {
        let r = r.map_err(|e| match e {
            RunError::Source(m) => RunError::Source(format!("instance {}: {m}", s.name)),
            RunError::Sink(m) => RunError::Sink(format!("instance {}: {m}", s.name)),
            other => other,
        })?;
        summary.delivered += r.delivered;
        summary.copied += r.copied;
        summary.completed &= r.completed;
        summary.checkpoint = r.checkpoint;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_with_padding_and_shardingsphere_syntax() {
        assert_eq!(
            expand("orders_{0000..0002}").expect("ok"),
            vec!["orders_0000", "orders_0001", "orders_0002"]
        );
        assert_eq!(
            expand("t_order_${0..1}").expect("ok"),
            vec!["t_order_0", "t_order_1"]
        );
        assert_eq!(
            expand("a{0..1}b{8..9}").expect("ok"),
            vec!["a0b8", "a0b9", "a1b8", "a1b9"]
        );
        let t = expand_tables("db_{00..15}.orders_{0000..0127}").expect("ok");
        assert_eq!(t.len(), 16 * 128);
        assert_eq!(t[0], TableId::new("db_00", "orders_0000"));
        assert_eq!(t[t.len() - 1], TableId::new("db_15", "orders_0127"));
        let ss = expand_tables("ds_${0..1}.t_order_${0..3}").expect("ok");
        assert_eq!(ss.len(), 8);
        assert_eq!(
            expand("ds_${['a', \"b\"]}_${[0,1]}").expect("ok"),
            vec!["ds_a_0", "ds_a_1", "ds_b_0", "ds_b_1"]
        );
        assert!(expand("x${[a,,b]}").is_err());
        assert!(expand("x{3..1}").is_err());
        assert!(expand("x{1..").is_err());
        assert!(expand_tables("nodot").is_err());
    }
}
