//! A Sluice project's runtime: the project file, the stages, and the loop that carries changes
//! from any source through routing to any destination and moves the checkpoint. It names no
//! source and no destination: it runs `dyn Source` and `dyn Sink`, made from the project file
//! by the [`connect::Connectors`] it is given (the `sluice-registry` crate).
//!
//! Invariants:
//! - The checkpoint moves only to the end of a transaction whose every routed change the
//!   destination acknowledged, and is stored with the source's own state as one unit.
//! - Memory is bounded: the reader blocks on a bounded channel, and at most
//!   `options.in_flight_batches` batches wait for acknowledgement.
#![deny(missing_docs)]

mod checks;
pub mod connect;
mod control;
mod deliver;
mod error;
mod full;
mod incremental;
mod lock;
pub mod metrics;
pub mod modify;
mod plan;
pub mod precheck;
pub mod project;
pub mod redeliver;
pub mod run;
mod schema;
pub mod shards;

pub use connect::{
    Connectors, DestinationSpec, Needs, SourceExtra, SourceSettings, SourceSpec, VERIFIABLE,
};
pub use error::RunError;
pub use lock::{is_running, LockError};
pub use precheck::{precheck, selection, Selected};
pub use project::{Project, ProjectError};
pub use run::{run, RunOptions, RunSummary};
