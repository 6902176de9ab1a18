//! Sluice's one event model. Every source produces it and every format reads it.
//!
//! Invariants:
//! - A [`Value`] holds a column value exactly as the source stored it: no rounding, no time
//!   zone shift, no character-set guess. A value that cannot be represented is an error at the
//!   source, never a silent change here.
//! - A [`Position`] totally orders the events of one source and is enough to resume reading.
//! - A [`RowChange`] carries the [`TableSchema`] in force at its own position.
#![deny(missing_docs)]

pub mod config;
pub mod ddl_text;
pub mod event;
pub mod hash;
pub mod position;
pub mod render;
pub mod schema;
pub mod secret;
pub mod sink;
pub mod source;
pub mod tls;
pub mod value;
pub mod verify;

pub use event::{Ddl, Event, KeyChange, Op, RowChange};
pub use position::Position;
pub use schema::{
    Column, ColumnDef, ColumnType, IndexDef, TableDef, TableId, TableSchema, TableSpec,
};
pub use secret::{Secret, SecretUrl};
pub use value::Value;
