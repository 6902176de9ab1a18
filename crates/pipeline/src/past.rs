//! Schema sync for a project that starts at a past position: the destination must match each
//! table as it was at the start, not as it is now (the replayed DDL brings it up to date). The
//! log from the start to its current end is read once, before the run, for the DDL of the
//! selected tables, and each table's current definition is taken back through them
//! (`snapshot::past`). A table created after the start is left to its replayed CREATE TABLE.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

use sluice_core::{Event, Position, TableId, TableSpec};
use sluice_source_mysql::live::{self, LiveConfig};
use sluice_source_mysql::snapshot::past::{undo_ddl, Before};

use crate::project::Project;
use crate::run::RunError;

/// Takes `specs` (of `tables`, as they are now) back to the project's start position, reading
/// the log from there to `end`.
pub(crate) async fn as_at_start(
    p: &Project,
    src_opts: &mysql_async::Opts,
    tables: &[TableId],
    end: &Position,
    specs: &mut [TableSpec],
) -> Result<(), RunError> {
    let mut ddl: HashMap<TableId, Vec<String>> = HashMap::new();
    let cfg = LiveConfig {
        opts: src_opts.clone(),
        server_id: p.server_id,
        start: p.start.clone(),
        heartbeat: Duration::from_secs(1),
        reconnect_for: Duration::from_secs(30),
        precheck_tables: Vec::new(),
    };
    let past_end = |pos: &Position| pos >= end;
    live::read_ddl(&cfg, |e| {
        let pos = match &e {
            Event::Begin { pos, .. } | Event::Commit { pos, .. } | Event::Heartbeat { pos, .. } => {
                pos
            }
            Event::Row(r) => &r.pos,
            Event::Ddl(d) => &d.pos,
        };
        if past_end(pos) {
            return ControlFlow::Break(());
        }
        if let Event::Ddl(d) = &e {
            if let Some(t) = d.table.as_ref().filter(|t| tables.contains(t)) {
                ddl.entry(t.clone()).or_default().push(d.sql.clone());
            }
        }
        ControlFlow::Continue(Ok(()))
    })
    .await
    .map_err(|e| {
        RunError::Source(format!(
            "reading the log from the start position for the schema in force there: {e}"
        ))
    })?;
    for (t, spec) in tables.iter().zip(specs.iter_mut()) {
        let (Some(statements), Some(def)) = (ddl.get(t), spec.def.as_mut()) else {
            continue;
        };
        let mut absent = false;
        for sql in statements.iter().rev() {
            match undo_ddl(def, sql) {
                Before::Known => {}
                Before::Absent => {
                    absent = true;
                    break;
                }
                Before::Unknown(why) => {
                    return Err(RunError::Sink(format!(
                        "{t}: its definition at the start position is not known ({why} since); \
                         create it at the destination as it was then and set stages.schema: \
                         false, or start later"
                    )))
                }
            }
        }
        if absent {
            // Created after the start: its CREATE TABLE is replayed in order.
            spec.def = None;
        } else {
            tracing::info!(
                "{t}: schema sync uses its definition at the start position ({} DDL statements since)",
                statements.len()
            );
        }
    }
    Ok(())
}
