//! The destination seam: every destination (Kafka, RocketMQ, DataHub, MySQL-compatible) is a
//! [`Sink`]. The pipeline hands it batches in commit order and moves the checkpoint only after
//! [`Sink::deliver`] returned `Ok` for a batch.

use crate::event::Event;
use crate::schema::TableSpec;

/// One change handed to a destination, with its place in the stream.
#[derive(Debug, Clone)]
pub struct DeliveryItem {
    /// A `Row`, `Ddl` or `Heartbeat` event (names already routed).
    pub event: Event,
    /// Read by full sync rather than from the change log.
    pub snapshot: bool,
    /// Source sequence (strictly increasing in commit order); None for snapshot rows and
    /// heartbeats.
    pub sequence: Option<u64>,
    /// Transaction number (increases by one per transaction).
    pub txn_number: u64,
    /// Whether this is the last change of its transaction.
    pub last_in_txn: bool,
    /// For the halves of an update that moved its row's key (message queues deliver it as a
    /// delete and an insert): which half this is.
    pub key_change: Option<crate::event::KeyChange>,
}

/// Why a destination could not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The destination's settings are wrong (fix the project file).
    #[error("{0}")]
    Config(String),
    /// The destination refused a change for good (too large, not authorized, ...): the project
    /// stops; retrying cannot help.
    #[error("{0}")]
    Rejected(String),
    /// The destination is unreachable or failed transiently: retry the same batch.
    #[error("{0}")]
    Unavailable(String),
}

/// Told of an outage in progress (`Some(text)`) and of its end (`None`), for status.
pub type Notifier = Box<dyn Fn(Option<&str>) + Send>;

/// A destination.
pub trait Sink: Send {
    /// Installs the outage notifier: a destination that waits out an outage by itself (inside
    /// [`Sink::wait`]) tells it what it waits for, once a second, so status can say so.
    fn set_notifier(&mut self, notifier: Notifier) {
        let _ = notifier;
    }
    /// Schema sync: create or check what the tables need (topics, tables).
    fn prepare(&mut self, tables: &[TableSpec]) -> Result<(), SinkError>;
    /// The project starts afresh (no checkpoint of its own): forget any record the destination
    /// keeps of an earlier run under the same name, which would otherwise make it skip changes
    /// (a re-created project, or a source whose binlog numbering restarted).
    fn start_afresh(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Full sync is about to copy `table` (its destination name) again from the start, read
    /// whole because it has no key: remove what an interrupted earlier copy left of it, so no
    /// row arrives twice. A destination that cannot remove rows (a message queue) keeps them.
    fn clear_table(&mut self, table: &crate::schema::TableId) -> Result<(), SinkError> {
        let _ = table;
        Ok(())
    }
    /// Starts sending a batch and returns its ticket; several batches may be in flight, and
    /// the destination keeps their send order (per key at least). After a batch fails, the
    /// pipeline waits for every later ticket and sends them all again, oldest first; a
    /// destination that would otherwise skip a replay it saw once must not apply a batch
    /// sent after one that failed (docs/SINKS.md).
    fn send(&mut self, items: &[DeliveryItem]) -> Result<u64, SinkError>;
    /// Waits until every item of batch `ticket` (sent with these `items`) was acknowledged:
    /// the destination reports it (no polling loop). On `Err` nothing of the batch may be
    /// assumed delivered (it is sent again).
    fn wait(&mut self, ticket: u64, items: &[DeliveryItem]) -> Result<(), SinkError>;
    /// Bytes of everything acknowledged so far (keys and payloads), for metrics.
    fn acknowledged_bytes(&self) -> u64 {
        0
    }
    /// Sends a batch and waits for it.
    fn deliver(&mut self, items: &[DeliveryItem]) -> Result<(), SinkError> {
        let ticket = self.send(items)?;
        self.wait(ticket, items)
    }
}
