//! The project's source, opened from its settings.

use std::time::Duration;

use sluice_source_mysql::MysqlSource;

use crate::project::Project;
use crate::run::RunError;

/// The source a project (or one part of a sharded project) reads.
pub(crate) fn open(p: &Project) -> Result<MysqlSource, RunError> {
    MysqlSource::new(
        &p.source_url,
        p.server_id,
        p.start.clone(),
        Duration::from_secs(u64::from(p.heartbeat_secs)),
    )
    .map_err(RunError::from_source)
}
