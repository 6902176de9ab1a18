//! This crate's errors: a project file that cannot be used, and why a run ended badly.

use sluice_core::sink::SinkError;
use sluice_core::source::SourceError;

/// Why a run ended badly. Each error says whether trying again later can help
/// ([`RunError::is_transient`]); the message names the object, the position and the fix.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The source failed: unavailable, its log purged, or for good (a decode error, a
    /// missing privilege).
    #[error("source: {0}")]
    Source(SourceError),
    /// The project does not fit its source (a filter on a column the table lacks, a column
    /// subset without the key, ...): fix the project file.
    #[error("source: {0}")]
    Check(String),
    /// The destination failed: unavailable, refused a change, or is misconfigured.
    #[error("destination: {0}")]
    Sink(SinkError),
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
        RunError::Source(e)
    }

    /// A destination failure.
    pub fn from_sink(e: SinkError) -> Self {
        RunError::Sink(e)
    }

    /// A failure of the run itself that retrying cannot fix (a thread, a runtime).
    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        RunError::Source(SourceError::Definite(what.to_string()))
    }

    /// The same error, said of instance `name` of a sharded source.
    pub(crate) fn in_instance(self, name: &str) -> Self {
        let at = |m: String| format!("instance {name}: {m}");
        match self {
            RunError::Source(e) => RunError::Source(e.map_message(at)),
            RunError::Check(m) => RunError::Check(at(m)),
            RunError::Sink(SinkError::Config(m)) => RunError::Sink(SinkError::Config(at(m))),
            RunError::Sink(SinkError::Rejected(m)) => RunError::Sink(SinkError::Rejected(at(m))),
            RunError::Sink(SinkError::Unavailable(m)) => {
                RunError::Sink(SinkError::Unavailable(at(m)))
            }
            other => other,
        }
    }

    /// Whether trying again later can help (the source or destination is unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            RunError::Source(e) => e.is_transient(),
            RunError::Sink(e) => matches!(e, SinkError::Unavailable(_)),
            _ => false,
        }
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
