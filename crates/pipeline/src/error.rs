//! This crate's errors: a project file that cannot be used, and why a run ended badly.

use sluice_core::source::SourceError;

/// Why a run ended badly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The source failed (unreachable, purged position, decode error ...).
    #[error("source: {0}")]
    Source(String),
    /// The destination refused a change or is misconfigured.
    #[error("destination: {0}")]
    Sink(String),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] sluice_meta::MetaError),
    /// Another run of the project holds its lock.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
}

impl RunError {
    /// A source failure.
    pub fn from_source(e: SourceError) -> Self {
        RunError::Source(e.to_string())
    }
}

/// A project file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {field}{message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ProjectError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted field path followed by ": ", or empty.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}
