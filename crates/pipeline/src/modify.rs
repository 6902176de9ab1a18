//! Changing the objects of a project that has run: tables added get their own schema step and
//! full sync, then join incremental sync with no gap; tables removed get no further changes.
//!
//! The project is not running while this happens (its run lock is held). An added table's
//! full-sync units are stored beside the project's (its full sync is then unfinished again),
//! and the checkpoint stays where it is: the next run copies the added tables, then incremental
//! sync goes on from that checkpoint. Changes of an added table between the checkpoint and its
//! copy are replayed over the copied rows — the same hand-over rule as at a project's start
//! (docs/PROJECTS.md): what the copy already holds is written again with the same values.
//! A table removed simply stops being selected; the units of its copy that had not finished are
//! dropped.

use sluice_core::TableId;
use sluice_meta::MetaStore;

use crate::checks::{keys_of_keyless_tables, selected_tables};
use crate::error::RunError;
use crate::project::Project;

/// What [`change_objects`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Tables the new rules select and the old did not.
    pub added: Vec<TableId>,
    /// Tables the old rules selected and the new do not.
    pub removed: Vec<TableId>,
    /// Full-sync units stored for the added tables (0 without a full stage).
    pub units: usize,
}

/// Moves project `old` to the object rules of `new` (same name, same source and
/// destination): prepares the destination for the added tables and plans their copy.
pub fn change_objects(old: &Project, new: &Project) -> Result<Change, RunError> {
    let _lock = crate::lock::RunLock::acquire(&new.data_dir, &new.name)?;
    if !new.shards.is_empty() {
        return Err(RunError::Check(
            "the objects of a sharded project cannot be changed while it exists: create a new project".into(),
        ));
    }
    let source = new.source.open().map_err(RunError::from_source)?;
    let (before, after, found_keys) = {
        let mut cat = source.catalog().map_err(RunError::from_source)?;
        let cat = cat.as_mut();
        let before = selected_tables(cat, old)?;
        let after = selected_tables(cat, new)?;
        let added: Vec<TableId> = after
            .iter()
            .filter(|t| !before.contains(t))
            .cloned()
            .collect();
        let found = keys_of_keyless_tables(cat, new, &added)?;
        (before, after, found)
    };
    let added: Vec<TableId> = after
        .iter()
        .filter(|t| !before.contains(t))
        .cloned()
        .collect();
    let removed: Vec<TableId> = before
        .iter()
        .filter(|t| !after.contains(t))
        .cloned()
        .collect();
    let mut keyed = new.clone();
    keyed.keys.extend(found_keys.clone());
    keyed.router.keys.extend(found_keys);
    let mut meta = MetaStore::open(&new.data_dir)?;
    // A project that never ran does all of it at its start.
    let ran = meta.checkpoint(&new.name)?.is_some();
    let mut units = Vec::new();
    if ran && !added.is_empty() {
        let mut sink = new
            .destination
            .sink(new.source_info.clone())
            .map_err(RunError::Sink)?;
        if new.schema_stage {
            crate::schema::sync_current(&keyed, source.as_ref(), sink.as_mut(), &added)?;
        }
        if new.full {
            units = crate::full::plan(source.as_ref(), &keyed, &added)?;
        }
    }
    if ran && !removed.is_empty() {
        meta.drop_unfinished_units(&new.name, &removed)?;
    }
    let stored = meta.add_full_units(&new.name, &units)?;
    Ok(Change {
        added,
        removed,
        units: stored.len(),
    })
}
