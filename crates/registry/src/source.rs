//! The source types: the MySQL family (MySQL, MariaDB, an OceanBase MySQL tenant). A sharded
//! source is one of these per instance.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::config::FieldError;
use sluice_core::source::{Source, SourceError};
use sluice_format::DbType;
use sluice_pipeline::{SourceSettings, SourceSpec};
use sluice_source_mysql::live::StartAt;
use sluice_source_mysql::MysqlSource;

/// The names `source.type` may have (besides `sharded`).
pub(crate) const TYPES: &[&str] = &["mysql", "mariadb", "oceanbase"];

/// A checked MySQL-family source.
#[derive(Debug, Clone)]
pub struct MysqlSpec {
    /// The source as opened.
    pub source: MysqlSource,
    /// Our replica id.
    pub server_id: u32,
    /// Where it starts without a checkpoint.
    pub start: StartAt,
    db_type: DbType,
}

pub(crate) fn check(s: &SourceSettings<'_>) -> Result<Arc<dyn SourceSpec>, FieldError> {
    let db_type = match s.kind {
        "mariadb" => DbType::Mariadb,
        "oceanbase" => DbType::ObMysql,
        _ => DbType::Mysql,
    };
    let start =
        StartAt::parse(s.start).map_err(|e| FieldError::new("stages.start", e.to_string()))?;
    let source = MysqlSource::new(
        s.url,
        s.server_id,
        start.clone(),
        Duration::from_secs(u64::from(s.heartbeat_secs)),
    )
    .map_err(|e| FieldError::new("source.url", e.to_string()))?;
    Ok(Arc::new(MysqlSpec {
        source,
        server_id: s.server_id,
        start,
        db_type,
    }))
}

impl SourceSpec for MysqlSpec {
    fn open(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(self.source.clone()))
    }

    fn db_type(&self) -> DbType {
        self.db_type
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
