//! Full sync reads: a table's schema from `information_schema`, and its rows in primary-key
//! order, one chunk at a time, as the same exact [`Value`](sluice_core::Value)s the binlog decoder produces.
//!
//! Every chunk is one autocommit `SELECT ... WHERE key > last ORDER BY key LIMIT n` (keyset
//! pagination): no global read lock, no long transaction, and a reader can resume after the
//! last key a destination acknowledged. Rows are read with the binary protocol (FLOAT and
//! DOUBLE arrive as their exact binary values), in the session time zone `+00:00` (TIMESTAMP
//! values are UTC) and with `character_set_results = binary`, so text arrives in the column's
//! own character set and is converted by the same code as binlog rows.

pub mod past;
mod read;
mod schema;

pub use read::{
    convert, integer_key_bounds, key_value, read_all, read_chunk, read_where, Chunk, KeyRange,
    KeyValue,
};
pub use schema::{logical_schema, table, table_def, unique_key, SnapshotTable};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::TableId;

/// A full-sync read failure.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The server refused a query or the connection failed.
    #[error("{table}: {what}: {source}")]
    Server {
        /// The table.
        table: String,
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: mysql_async::Error,
    },
    /// The table cannot be read by full sync (no key, a type Sluice cannot key on, ...).
    #[error("{table}: {message}")]
    Table {
        /// The table.
        table: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A value could not be converted exactly.
    #[error("{table}, column {column}: {message}")]
    Value {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Why.
        message: String,
    },
}

/// Maps a server error while `what` was being done on table `id`.
fn server_error(id: &TableId, what: &'static str) -> impl Fn(mysql_async::Error) -> SnapshotError {
    let table = id.to_string();
    move |source| SnapshotError::Server {
        table: table.clone(),
        what,
        source,
    }
}

/// Quotes an identifier for MySQL.
pub fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// Prepares a connection for chunk reads (time zone, no charset conversion).
pub async fn prepare_session(conn: &mut Conn) -> Result<(), mysql_async::Error> {
    conn.query_drop("SET SESSION time_zone = '+00:00', character_set_results = binary")
        .await
}
