//! The source types: the MySQL family (MySQL, MariaDB, an OceanBase MySQL tenant; a sharded
//! source is one of these per instance) and PostgreSQL.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::config::FieldError;
use sluice_core::source::{Source, SourceError};
use sluice_format::DbType;
use sluice_pipeline::{SourceSettings, SourceSpec};
use sluice_source_mysql::live::StartAt;
use sluice_source_mysql::MysqlSource;
use sluice_source_postgres::{default_slot, PostgresSettings, PostgresSource};

/// The names `source.type` may have (besides `sharded`).
pub(crate) const TYPES: &[&str] = &["mysql", "mariadb", "oceanbase", "postgres"];

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
    if s.kind == "postgres" {
        return check_postgres(s);
    }
    if let Some(field) = s.extra.given().first() {
        return Err(FieldError::new(
            *field,
            format!(
                "a {} source has no such setting (it is PostgreSQL's)",
                s.kind
            ),
        ));
    }
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
        s.tls,
    )
    .map_err(|e| FieldError::new("source.url", e.to_string()))?;
    Ok(Arc::new(MysqlSpec {
        source,
        server_id: s.server_id,
        start,
        db_type,
    }))
}

/// A checked PostgreSQL source.
#[derive(Debug, Clone)]
pub struct PostgresSpec {
    /// The source as opened.
    pub source: PostgresSource,
}

fn check_postgres(s: &SourceSettings<'_>) -> Result<Arc<dyn SourceSpec>, FieldError> {
    if s.start != "now" {
        return Err(FieldError::new(
            "stages.start",
            format!(
                "{:?}: a postgres project starts now (when its replication slot is made); \
                 the slot keeps every change from then on",
                s.start
            ),
        ));
    }
    let slot = s
        .extra
        .slot
        .clone()
        .unwrap_or_else(|| default_slot(s.project));
    let publication = s.extra.publication.clone().unwrap_or_else(|| slot.clone());
    let source = PostgresSource::new(PostgresSettings {
        url: s.url.clone(),
        slot,
        publication,
        create_publication: s.extra.create_publication.unwrap_or(false),
        heartbeat: Duration::from_secs(u64::from(s.heartbeat_secs)),
        tls: s.tls.cloned(),
    })
    .map_err(|e| {
        let field = if e.to_string().starts_with("source.slot") {
            "source.slot"
        } else {
            "source.url"
        };
        FieldError::new(field, e.to_string())
    })?;
    Ok(Arc::new(PostgresSpec { source }))
}

impl SourceSpec for PostgresSpec {
    fn open(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(self.source.clone()))
    }

    fn db_type(&self) -> DbType {
        DbType::Postgres
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
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
