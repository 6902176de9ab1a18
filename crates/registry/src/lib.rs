//! Every source and destination type by name. The pipeline asks this registry to check a
//! project file's `source` and `destination` sections and gets back what it runs
//! (`dyn SourceSpec`, `dyn DestinationSpec`); it never names a type itself. Adding a source or
//! a destination is one crate and one entry here.
#![deny(missing_docs)]

mod destination;
mod source;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sluice_core::config::FieldError;
use sluice_core::TableId;
use sluice_pipeline::{
    Connectors, DestinationSpec, Project, ProjectError, SourceSettings, SourceSpec,
};

pub use destination::Destination;
pub use source::{MysqlSpec, PostgresSpec};

/// The registry of every type this build of Sluice has.
#[derive(Debug, Clone, Copy, Default)]
pub struct Registry;

impl Connectors for Registry {
    fn source_types(&self) -> &[&'static str] {
        source::TYPES
    }

    fn source(&self, s: &SourceSettings<'_>) -> Result<Arc<dyn SourceSpec>, FieldError> {
        source::check(s)
    }

    fn destination(
        &self,
        kind: &str,
        text: &str,
        file: &str,
        project: &str,
        sharding: HashMap<TableId, Vec<String>>,
    ) -> Result<Arc<dyn DestinationSpec>, ProjectError> {
        Ok(Arc::new(Destination::parse(
            kind, text, file, project, sharding,
        )?))
    }
}

/// Reads and checks a project file with every type this build has.
pub fn load(path: &Path) -> Result<Project, ProjectError> {
    Project::load(path, &Registry)
}

/// Parses project YAML (`file` names it in errors; `base` resolves a relative data_dir).
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Project, ProjectError> {
    Project::parse(text, file, base, &Registry)
}
