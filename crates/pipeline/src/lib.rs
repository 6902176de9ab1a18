//! A Sluice project's runtime: the project file, the stages, and the loop that carries changes
//! from the source through routing to the destination and moves the checkpoint.
//!
//! Invariants:
//! - The checkpoint moves only to the end of a transaction whose every routed change the
//!   destination acknowledged, and is stored with the schema history as one unit.
//! - Memory is bounded: the reader blocks on a bounded channel, and one batch is in flight.
#![deny(missing_docs)]

mod checks;
mod control;
mod deliver;
pub mod destination;
mod full;
mod incremental;
mod lock;
pub mod metrics;
pub mod project;
pub mod run;
pub mod shards;
mod source;

pub use lock::LockError;
pub use project::{Project, ProjectError};
pub use run::{run, RunError, RunOptions, RunSummary};
