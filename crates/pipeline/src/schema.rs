//! The schema stage: the destination gets what the selected tables need (topics checked or
//! created, tables created or compared), once, before the first checkpoint.

use sluice_core::sink::Sink;
use sluice_core::source::Source;
use sluice_core::{Position, TableId};

use crate::checks::table_specs;
use crate::error::RunError;
use crate::project::Project;

/// Prepares the destination for `tables`. With a start in the past and a destination that
/// creates tables, each table as it was at the start (the replayed DDL, read up to `end`,
/// brings it up to date).
pub(crate) fn sync(
    p: &Project,
    source: &dyn Source,
    sink: &mut dyn Sink,
    tables: &[TableId],
    end: &Position,
) -> Result<(), RunError> {
    let mut specs = {
        let mut cat = source.catalog().map_err(RunError::from_source)?;
        table_specs(cat.as_mut(), p, tables)?
    };
    if p.destination.needs().past_schema && !p.full && !source.starts_now() {
        let mut defs: Vec<_> = specs.iter_mut().map(|s| s.def.take()).collect();
        source
            .definitions_at_start(tables, end, &mut defs)
            .map_err(RunError::from_source)?;
        for (s, d) in specs.iter_mut().zip(defs) {
            s.def = d;
        }
    }
    sink.prepare(&specs).map_err(RunError::Sink)
}

/// Prepares the destination for `tables` as they are now (tables added to a running project:
/// its stream goes on from a recent checkpoint, so their current definitions apply).
pub(crate) fn sync_current(
    p: &Project,
    source: &dyn Source,
    sink: &mut dyn Sink,
    tables: &[TableId],
) -> Result<(), RunError> {
    let specs = {
        let mut cat = source.catalog().map_err(RunError::from_source)?;
        table_specs(cat.as_mut(), p, tables)?
    };
    sink.prepare(&specs).map_err(RunError::Sink)
}
