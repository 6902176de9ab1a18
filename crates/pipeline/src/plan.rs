//! The plan of a run: its parts. A plain project is one part, itself; a sharded project is one
//! part per instance of its source, each a project of its own name (`PROJECT.INSTANCE`) that
//! reads that instance and writes, through the shared destination, into the logical tables.
//! The stages run the same way for every part.

use std::collections::HashMap;

use sluice_core::TableId;
use sluice_route::Pattern;

use crate::project::Project;
use crate::shards::ShardInstance;

/// The parts of `p`, in instance order.
pub(crate) fn parts(p: &Project) -> Vec<Project> {
    if p.shards.is_empty() {
        return vec![p.clone()];
    }
    p.shards.iter().map(|s| part(p, s)).collect()
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
