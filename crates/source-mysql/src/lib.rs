//! Sluice's Store for MySQL-family sources: it turns a MySQL, MariaDB or OceanBase (binlog
//! service) change log into [`sluice_core::Event`]s.
//!
//! - [`decode`]: raw binlog events -> change events (where a row is decoded);
//! - [`file`]: recorded binlog files, decoded offline;
//! - [`live`]: a replica connection to a running server;
//! - [`precheck`]: what must hold on the source before reading, each failure with its fix;
//! - [`snapshot`]: full sync reads (schema from information_schema, rows in key-ordered chunks).
//!
//! Invariants: events come out in log order; every row is decoded with the table map that
//! precedes it in the same transaction; an event or value that cannot be read exactly is an
//! error naming the file and offset, never skipped.
#![deny(missing_docs)]

pub mod decode;
pub mod file;
mod handover;
pub mod live;
pub mod position;
pub mod precheck;
pub mod snapshot;
pub mod source;

pub use source::MysqlSource;

/// The error an event consumer stops a reading with (its own, handed back in the reading's
/// error: `FileError::Stopped`, `LiveError::Stopped`).
pub type EmitError = Box<dyn std::error::Error + Send + Sync>;
