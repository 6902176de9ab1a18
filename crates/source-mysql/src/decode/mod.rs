//! Binlog events -> change events. This is where a row is decoded.
//!
//! The [`Decoder`] is fed raw events in log order (from a file or a replica connection) with
//! the offset each starts at, and keeps what the log itself carries across events: the current
//! file, table maps, and the open transaction (its id, first position and sequence). Every
//! event type a MySQL 5.7/8.x or MariaDB 10.x/11.x server writes in ROW mode is handled; an
//! unknown one is an error naming its type and position.

pub mod charset;
mod charset_overrides;
mod charset_tables;
pub mod history;
mod json_diff;
mod json_text;
mod legacy;
mod mariadb;
mod rotate;
pub mod table_map;
mod targets;
pub mod value;

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::binlog::events::{Event as RawEvent, EventData, RowsEventData, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::binlog::EventType;
use sluice_core::{Ddl, Event, Op, Position, RowChange, TableId, TableSchema, Value};

use crate::position::{BinlogPosition, KIND};

pub use history::{HistoryFileError, SchemaHistory};
pub use table_map::TableHints;

/// A decoding failure, with where it happened.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// An event could not be parsed.
    #[error("binlog {file} at offset {offset}: cannot decode {what}: {reason}")]
    Event {
        /// Binlog file.
        file: String,
        /// Offset of the event.
        offset: u64,
        /// What was being decoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// An event type this reader does not know.
    #[error(
        "binlog {file} at offset {offset}: unknown event type {event_type}; Sluice stops rather than skip \
         changes it cannot read (report the server version)"
    )]
    UnknownEvent {
        /// Binlog file.
        file: String,
        /// Offset of the event.
        offset: u64,
        /// Raw type code.
        event_type: u8,
    },
    /// The log holds something that cannot be captured as row changes.
    #[error("binlog {file} at offset {offset}: {problem}; {fix}")]
    Unsupported {
        /// Binlog file.
        file: String,
        /// Offset of the event.
        offset: u64,
        /// What was found.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// A schema question: a table map that disagrees with the schema history, or a DDL that
    /// changes a captured table and cannot be read.
    #[error("binlog {file} at offset {offset}: {reason}")]
    Schema {
        /// Binlog file.
        file: String,
        /// Offset of the event.
        offset: u64,
        /// What disagrees, with both schemas.
        reason: String,
    },
    /// A value in a row could not be represented exactly.
    #[error("binlog {file} at offset {offset}: table {table}, column {column}: {reason}")]
    Value {
        /// Binlog file.
        file: String,
        /// Offset of the rows event.
        offset: u64,
        /// Table (boxed: keeps the error, and every Result carrying it, small).
        table: Box<TableId>,
        /// Column name.
        column: String,
        /// Why.
        reason: String,
    },
}

/// How the decoder treats log content that cannot be captured as exact row changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reading to deliver changes: statement-based changes, incidents and partial row images
    /// stop the reader (rows would be lost or incomplete).
    Replica,
    /// Inspecting a recorded file: such content is reported (statements as DDL-like events,
    /// missing columns as unavailable, incidents as warnings) and decoding goes on.
    Inspect,
}

struct OpenTxn {
    id: String,
    /// The GTID, when the transaction has one.
    gtid: Option<String>,
    seq: u64,
}

/// Decodes raw binlog events into [`Event`]s.
pub struct Decoder {
    mode: Mode,
    file: String,
    /// Table maps of the current transaction, by table id, with the schema built from each.
    tables: HashMap<u64, (TableMapEvent<'static>, Arc<TableSchema>)>,
    /// The last schema made for each table: a table map that gives the same schema again
    /// (every transaction has one) reuses it, so rows of one table share one `Arc` across
    /// transactions (no copy per transaction; destinations group rows by it).
    last_schema: HashMap<TableId, Arc<TableSchema>>,
    /// Known hints per table (e.g. MariaDB JSON columns), supplied by the caller.
    hints: HashMap<TableId, TableHints>,
    txn: Option<OpenTxn>,
    /// GTID announced for the next transaction.
    next_gtid: Option<String>,
    /// MariaDB GTID event flagged standalone: the next statement is its own transaction.
    standalone: bool,
    /// The file was written by a MySQL 5.1/5.2 pre-release with the wl#2325 event numbering
    /// (XID = 20, BEGIN/EXECUTE_LOAD_QUERY = 21/22, rows events 16-19), told by its format
    /// description's post-header lengths.
    pre_release_numbering: bool,
    /// Offset of the event just past the last one decoded.
    next_offset: u64,
    /// Versions of table schemas by position, fed by DDL, checked against every table map.
    history: SchemaHistory,
    /// Rows events (and their table maps) are skipped: only DDL and transactions are read.
    skip_rows: bool,
}

const MARIADB_ANNOTATE_ROWS: u8 = 160;
const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
const MARIADB_GTID: u8 = 162;
const MARIADB_GTID_LIST: u8 = 163;
const MARIADB_START_ENCRYPTION: u8 = 164;

impl Decoder {
    /// A decoder positioned at the start of `file`.
    pub fn new(file: impl Into<String>, mode: Mode) -> Self {
        Self {
            mode,
            file: file.into(),
            tables: HashMap::new(),
            last_schema: HashMap::new(),
            hints: HashMap::new(),
            txn: None,
            next_gtid: None,
            standalone: false,
            pre_release_numbering: false,
            next_offset: 4,
            history: SchemaHistory::new(),
            skip_rows: false,
        }
    }

    /// Starts over at the beginning of a transaction in `file` (after a reconnect): open
    /// transaction and table maps are dropped; the schema history and hints are kept.
    pub fn restart_at(&mut self, file: String) {
        self.file = file;
        self.tables.clear();
        self.txn = None;
        self.next_gtid = None;
        self.standalone = false;
        self.next_offset = 4;
    }

    /// Continues from a schema history (persisted, or kept across reconnects).
    pub fn with_history(mut self, history: SchemaHistory) -> Self {
        self.history = history;
        self
    }

    /// A decoder that skips rows events undecoded (reading the log only for its DDL).
    pub fn skipping_rows(mut self) -> Self {
        self.skip_rows = true;
        self
    }

    /// The schema history as of the last decoded event.
    pub fn history(&self) -> &SchemaHistory {
        &self.history
    }

    /// Hands the schema history back (to persist it, or to reuse it after a reconnect).
    pub fn take_history(&mut self) -> SchemaHistory {
        std::mem::take(&mut self.history)
    }

    fn binlog_pos(&self, offset: u64) -> BinlogPosition {
        BinlogPosition {
            file: self.file.clone(),
            offset,
            gtid: None,
        }
    }

    /// The binlog file being read.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Offset just past the last decoded event.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Whether a transaction is open (its commit not yet seen).
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// Adds what the caller knows about a table beyond its table map.
    pub fn set_hints(&mut self, table: TableId, hints: TableHints) {
        self.hints.insert(table, hints);
    }

    fn pos(&self, offset: u64) -> Position {
        Position::new(KIND, self.file.clone(), offset)
            .with_gtid(self.txn.as_ref().and_then(|t| t.gtid.clone()))
    }

    fn err(&self, offset: u64, what: &str, reason: impl ToString) -> DecodeError {
        DecodeError::Event {
            file: self.file.clone(),
            offset,
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    fn begin(&mut self, offset: u64, ts_ms: u64, out: &mut Vec<Event>) {
        let gtid = self.next_gtid.take();
        let id = gtid
            .clone()
            .unwrap_or_else(|| format!("{}:{offset}", self.file));
        self.txn = Some(OpenTxn {
            id: id.clone(),
            gtid,
            seq: 0,
        });
        out.push(Event::Begin {
            txn: id,
            pos: self.pos(offset),
            ts_ms,
        });
    }

    fn commit(&mut self, end: u64, ts_ms: u64, out: &mut Vec<Event>) {
        if let Some(t) = self.txn.take() {
            let pos = Position::new(KIND, self.file.clone(), end).with_gtid(t.gtid);
            out.push(Event::Commit {
                txn: t.id,
                pos,
                ts_ms,
            });
        }
        self.tables.clear();
        self.standalone = false;
    }

    /// Decodes one event that starts at `offset` of the current file, appending what it means
    /// to `out`.
    pub fn decode(
        &mut self,
        ev: &RawEvent,
        offset: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), DecodeError> {
        let header = ev.header();
        let ts_ms = u64::from(header.timestamp()) * 1000;
        let end = offset + u64::from(header.event_size());
        self.next_offset = end;
        let raw_type = header.event_type_raw();
        match raw_type {
            MARIADB_ANNOTATE_ROWS | MARIADB_BINLOG_CHECKPOINT | MARIADB_GTID_LIST => {
                // Decoded for validity; they carry the statement text, the oldest binlog still
                // needed for recovery, and the GTID state at the file start: no row data.
                mariadb::validate(raw_type, ev.data()).map_err(|e| self.err(offset, "MariaDB event", e))?;
                // At a file start, outside any transaction: a position the log has reached,
                // reported like a heartbeat so a reader is caught up without waiting for one.
                if raw_type != MARIADB_ANNOTATE_ROWS && self.txn.is_none() && self.mode == Mode::Replica {
                    out.push(Event::Heartbeat {
                        pos: self.pos(end),
                        ts_ms,
                    });
                }
                return Ok(());
            }
            MARIADB_GTID => {
                let g = mariadb::gtid(ev.data(), header.server_id()).map_err(|e| self.err(offset, "MariaDB GTID", e))?;
                self.next_gtid = Some(g.gtid);
                self.standalone = g.standalone;
                if self.standalone {
                    // A standalone transaction (DDL) has no BEGIN: it starts here.
                    self.begin(offset, ts_ms, out);
                }
                return Ok(());
            }
            MARIADB_START_ENCRYPTION => {
                return Err(DecodeError::Unsupported {
                    file: self.file.clone(),
                    offset,
                    problem: "the binlog is encrypted".into(),
                    fix: "Sluice reads binlogs through the replication protocol, which decrypts them; read the \
                          live server instead of the file"
                        .into(),
                })
            }
            165..=171 => {
                return Err(DecodeError::Unsupported {
                    file: self.file.clone(),
                    offset,
                    problem: format!("MariaDB compressed event (type {raw_type})"),
                    fix: "set log_bin_compress=OFF on the source; compressed MariaDB events are not decoded yet".into(),
                })
            }
            _ => {}
        }
        if self.pre_release_numbering {
            match raw_type {
                // XID under the pre-release numbering: 8 bytes of transaction id, no post-header.
                20 => {
                    self.commit(end, ts_ms, out);
                    return Ok(());
                }
                21 if self.mode == Mode::Inspect => return Ok(()),
                22 if self.mode == Mode::Inspect => {
                    let (db, sql) = legacy::pre_release_execute_load_query(ev.data())
                        .ok_or_else(|| self.err(offset, "EXECUTE_LOAD_QUERY", "event too short"))?;
                    return self.statement(db, sql, offset, end, ts_ms, out);
                }
                16..=19 | 21 | 22 => {
                    return Err(DecodeError::Unsupported {
                        file: self.file.clone(),
                        offset,
                        problem: format!(
                            "event type {raw_type} of a MySQL 5.1 pre-release (wl#2325 numbering: rows or LOAD DATA events)"
                        ),
                        fix: "read binlogs of a MySQL 5.1 GA or later server".into(),
                    })
                }
                _ => {}
            }
        }
        let data = match ev.read_data() {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(DecodeError::UnknownEvent {
                    file: self.file.clone(),
                    offset,
                    event_type: raw_type,
                })
            }
            Err(e) => return Err(self.err(offset, &format!("event type {raw_type}"), e)),
        };
        match data {
            EventData::FormatDescriptionEvent(fde) => {
                let lengths = fde.event_type_header_lengths();
                self.pre_release_numbering = lengths.len() == 22
                    && lengths.get(19) == Some(&0)
                    && lengths.get(20) == Some(&4)
                    && lengths.get(21) == Some(&26);
            }
            EventData::RotateEvent(r) => {
                let name = rotate::file_name(ev, r.name_raw());
                if name != self.file {
                    self.file = name;
                    self.tables.clear();
                }
                self.next_offset = r.position();
            }
            EventData::GtidEvent(g) => {
                let sid = g.sid();
                let uuid = format!(
                    "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                    sid[0], sid[1], sid[2], sid[3], sid[4], sid[5], sid[6], sid[7], sid[8], sid[9], sid[10], sid[11],
                    sid[12], sid[13], sid[14], sid[15]
                );
                self.next_gtid = Some(format!("{uuid}:{}", g.gno()));
            }
            EventData::AnonymousGtidEvent(_) => self.next_gtid = None,
            EventData::QueryEvent(q) => {
                let sql = q.query().into_owned();
                let keyword = sql
                    .trim_start()
                    .split(|c: char| c.is_whitespace() || c == ';')
                    .next()
                    .unwrap_or("");
                let keyword = keyword.to_ascii_uppercase();
                match keyword.as_str() {
                    "BEGIN" => {
                        if self.txn.is_none() {
                            self.begin(offset, ts_ms, out);
                        }
                    }
                    "XA" => {
                        // XA START opens, XA END/PREPARE keep open, XA COMMIT commits the rows
                        // logged since XA START, XA ROLLBACK drops them.
                        let upper = sql.to_ascii_uppercase();
                        if upper.contains("XA START") || upper.contains("XA BEGIN") {
                            if self.txn.is_none() {
                                self.begin(offset, ts_ms, out);
                            }
                        } else if upper.contains("XA COMMIT") {
                            self.commit(end, ts_ms, out);
                        } else if upper.contains("XA ROLLBACK") {
                            self.txn = None;
                            self.tables.clear();
                        }
                    }
                    "COMMIT" => self.commit(end, ts_ms, out),
                    "ROLLBACK" => {
                        // A rolled-back non-transactional statement: nothing was committed.
                        self.txn = None;
                        self.tables.clear();
                    }
                    "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD" if self.mode == Mode::Replica => {
                        return Err(DecodeError::Unsupported {
                            file: self.file.clone(),
                            offset,
                            problem: format!("a statement-based change ({keyword} logged as SQL, not rows)"),
                            fix: "set binlog_format=ROW on the source (and restart sessions that set it)".into(),
                        })
                    }
                    _ => self.statement(q.schema().into_owned(), sql, offset, end, ts_ms, out)?,
                }
            }
            EventData::XidEvent(_) => self.commit(end, ts_ms, out),
            // Reading for DDL only: rows are not decoded.
            EventData::TableMapEvent(_) | EventData::RowsEvent(_) if self.skip_rows => {}
            EventData::TableMapEvent(tme) => {
                let hints = self
                    .hints
                    .get(&TableId::new(tme.database_name(), tme.table_name()));
                let mut schema = table_map::schema_from_table_map(&tme, hints).map_err(|e| {
                    self.err(
                        offset,
                        &format!(
                            "table map of `{}`.`{}`",
                            tme.database_name(),
                            tme.table_name()
                        ),
                        e,
                    )
                })?;
                self.history
                    .reconcile(&mut schema, &self.binlog_pos(offset))
                    .map_err(|reason| DecodeError::Schema {
                        file: self.file.clone(),
                        offset,
                        reason,
                    })?;
                let schema = match self.last_schema.get(&schema.id) {
                    Some(last) if **last == schema => last.clone(),
                    _ => {
                        let fresh = Arc::new(schema);
                        self.last_schema.insert(fresh.id.clone(), fresh.clone());
                        fresh
                    }
                };
                self.tables
                    .insert(tme.table_id(), (tme.into_owned(), schema));
            }
            EventData::RowsEvent(rows) => self.rows(&rows, offset, ts_ms, out)?,
            EventData::TransactionPayloadEvent(_) => {
                // The caller expands the compressed payload and feeds its events in; the
                // payload event itself carries nothing more.
            }
            EventData::HeartbeatEvent => {
                out.push(Event::Heartbeat {
                    pos: self.pos(self.next_offset),
                    ts_ms,
                });
            }
            EventData::IncidentEvent(i) => {
                let problem = format!(
                    "incident event ({:?}): the source may have lost changes here",
                    i.incident_type()
                );
                if self.mode == Mode::Replica {
                    return Err(DecodeError::Unsupported {
                        file: self.file.clone(),
                        offset,
                        problem,
                        fix: "resynchronize the affected tables with a full sync".into(),
                    });
                }
                tracing::warn!(file = %self.file, offset, "{problem}");
            }
            // Statement context, markers and metadata with no row data of their own.
            EventData::StopEvent
            | EventData::IntvarEvent(_)
            | EventData::RandEvent(_)
            | EventData::UserVarEvent(_)
            | EventData::RowsQueryEvent(_)
            | EventData::PreviousGtidsEvent(_)
            | EventData::IgnorableEvent(_)
            | EventData::StartEventV3(_)
            | EventData::SlaveEvent
            | EventData::UnknownEvent => {}
            EventData::ExecuteLoadQueryEvent(q) if self.mode == Mode::Inspect => {
                let sql = q.query().into_owned();
                self.statement(q.schema().into_owned(), sql, offset, end, ts_ms, out)?;
            }
            EventData::BeginLoadQueryEvent(_)
            | EventData::AppendBlockEvent(_)
            | EventData::DeleteFileEvent(_)
            | EventData::CreateFileEvent(_)
                if self.mode == Mode::Inspect => {}
            EventData::BeginLoadQueryEvent(_)
            | EventData::ExecuteLoadQueryEvent(_)
            | EventData::LoadEvent(_)
            | EventData::CreateFileEvent(_)
            | EventData::AppendBlockEvent(_)
            | EventData::ExecLoadEvent(_)
            | EventData::DeleteFileEvent(_)
            | EventData::NewLoadEvent(_) => {
                return Err(DecodeError::Unsupported {
                    file: self.file.clone(),
                    offset,
                    problem: "a statement-based LOAD DATA event".into(),
                    fix: "set binlog_format=ROW on the source so LOAD DATA is logged as rows"
                        .into(),
                })
            }
            EventData::PreGaWriteRowsEvent(_)
            | EventData::PreGaUpdateRowsEvent(_)
            | EventData::PreGaDeleteRowsEvent(_) => {
                return Err(DecodeError::Unsupported {
                    file: self.file.clone(),
                    offset,
                    problem: "a MySQL 5.1 pre-GA rows event".into(),
                    fix: "upgrade the source; these events predate MySQL 5.1 GA".into(),
                })
            }
            other => {
                return Err(DecodeError::Unsupported {
                    file: self.file.clone(),
                    offset,
                    problem: format!("event {:?} is not handled", std::mem::discriminant(&other)),
                    fix: "report the server version".into(),
                })
            }
        }
        Ok(())
    }

    /// A statement in the log (DDL, or in inspect mode any non-row statement): emitted as a
    /// DDL event, its own transaction when it stands alone.
    fn statement(
        &mut self,
        db: String,
        sql: String,
        offset: u64,
        end: u64,
        ts_ms: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), DecodeError> {
        let changed = match self.history.apply_ddl(&self.binlog_pos(offset), &db, &sql) {
            Ok(changed) => changed,
            Err(reason) if self.mode == Mode::Replica => {
                return Err(DecodeError::Schema {
                    file: self.file.clone(),
                    offset,
                    reason,
                })
            }
            Err(reason) => {
                tracing::warn!(file = %self.file, offset, "{reason}");
                Vec::new()
            }
        };
        let standalone = self.txn.is_none() || self.standalone;
        if self.txn.is_none() {
            self.begin(offset, ts_ms, out);
        }
        let seq = self.next_seq();
        let txn = self.txn.as_ref().map(|t| t.id.clone()).unwrap_or_default();
        // The table the statement acts on, also when the history never saw it created.
        let table = changed
            .into_iter()
            .next()
            .or_else(|| targets::ddl_target(&db, &sql));
        let to = targets::rename_target(&db, &sql).map(Box::new);
        out.push(Event::Ddl(Ddl {
            db,
            table,
            to,
            sql,
            ts_ms,
            txn,
            seq,
            pos: self.pos(offset),
        }));
        if standalone {
            self.commit(end, ts_ms, out);
        }
        Ok(())
    }

    fn next_seq(&mut self) -> u64 {
        match self.txn.as_mut() {
            Some(t) => {
                let s = t.seq;
                t.seq += 1;
                s
            }
            None => 0,
        }
    }

    fn rows(
        &mut self,
        rows: &RowsEventData<'_>,
        offset: u64,
        ts_ms: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), DecodeError> {
        let table_id = rows.table_id();
        let (tme, schema) = self.tables.get(&table_id).cloned().ok_or_else(|| {
            self.err(
                offset,
                "rows event",
                format!("no table map for table id {table_id} precedes it"),
            )
        })?;
        if self.txn.is_none() {
            // Rows outside BEGIN..COMMIT (e.g. a non-transactional engine): their own transaction.
            self.begin(offset, ts_ms, out);
        }
        let op = match rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Op::Insert,
            RowsEventData::UpdateRowsEventV1(_)
            | RowsEventData::UpdateRowsEvent(_)
            | RowsEventData::PartialUpdateRowsEvent(_) => Op::Update,
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Op::Delete,
        };
        // Which columns each image holds (all of them under binlog_row_image=FULL).
        let n = schema.columns.len();
        let before_present: Vec<bool> = (0..n)
            .map(|i| {
                rows.columns_before_image()
                    .and_then(|b| b.get(i).map(|x| *x))
                    .unwrap_or(true)
            })
            .collect();
        let after_present: Vec<bool> = (0..n)
            .map(|i| {
                rows.columns_after_image()
                    .and_then(|b| b.get(i).map(|x| *x))
                    .unwrap_or(true)
            })
            .collect();
        for row in rows.rows(&tme) {
            let (before, after) =
                row.map_err(|e| self.err(offset, &format!("row of {}", schema.id), e))?;
            let before_values = match before {
                Some(r) => {
                    Some(self.row_values(&schema, r.unwrap(), &before_present, None, offset)?)
                }
                None => None,
            };
            let after_values = match after {
                Some(r) => Some(self.row_values(
                    &schema,
                    r.unwrap(),
                    &after_present,
                    before_values.as_deref(),
                    offset,
                )?),
                None => None,
            };
            let seq = self.next_seq();
            let txn = self.txn.as_ref().map(|t| t.id.clone()).unwrap_or_default();
            out.push(Event::Row(RowChange {
                op,
                table: schema.clone(),
                before: before_values,
                after: after_values,
                ts_ms,
                txn,
                seq,
                pos: self.pos(offset),
            }));
        }
        Ok(())
    }

    fn row_values(
        &self,
        schema: &TableSchema,
        cells: Vec<BinlogValue<'static>>,
        present: &[bool],
        before: Option<&[Value]>,
        offset: u64,
    ) -> Result<Vec<Value>, DecodeError> {
        if cells.len() != schema.columns.len() && self.mode == Mode::Replica {
            return Err(DecodeError::Unsupported {
                file: self.file.clone(),
                offset,
                problem: format!(
                    "a row image of table {} has {} of its {} columns (binlog_row_image is not FULL)",
                    schema.id,
                    cells.len(),
                    schema.columns.len()
                ),
                fix: "set binlog_row_image=FULL on the source".into(),
            });
        }
        if present.iter().filter(|p| **p).count() != cells.len() {
            return Err(self.err(
                offset,
                &format!("row of {}", schema.id),
                "the row image does not match its column bitmap",
            ));
        }
        let mut out = Vec::with_capacity(schema.columns.len());
        let mut cells = cells.into_iter();
        for (i, col) in schema.columns.iter().enumerate() {
            if !present[i] {
                out.push(Value::Unavailable);
                continue;
            }
            let Some(cell) = cells.next() else { break };
            let v = match cell {
                BinlogValue::JsonDiff(diffs)
                    if self.mode == Mode::Inspect
                        && before
                            .and_then(|b| b.get(i))
                            .is_none_or(|v| *v == Value::Unavailable) =>
                {
                    // Nothing to apply the diff to: show the operations as logged.
                    Ok(json_diff::as_operations(&diffs))
                }
                BinlogValue::JsonDiff(diffs) => {
                    let base = before
                        .and_then(|b| b.get(i))
                        .ok_or_else(|| DecodeError::Value {
                            file: self.file.clone(),
                            offset,
                            table: Box::new(schema.id.clone()),
                            column: col.name.clone(),
                            reason: "a partial JSON update without a before image".into(),
                        })?;
                    json_diff::apply(base, &diffs)
                }
                cell => value::convert(&col.ty, cell),
            };
            out.push(v.map_err(|reason| DecodeError::Value {
                file: self.file.clone(),
                offset,
                table: Box::new(schema.id.clone()),
                column: col.name.clone(),
                reason,
            })?);
        }
        Ok(out)
    }
}

/// Event type names for messages.
pub fn event_type_name(code: u8) -> String {
    match EventType::try_from(code) {
        Ok(t) => format!("{t:?}"),
        Err(_) => format!("type {code}"),
    }
}
