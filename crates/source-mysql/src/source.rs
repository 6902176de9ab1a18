//! This crate as a Sluice [`Source`]: the catalog from `information_schema`, full sync in
//! key-ordered chunks with a hand-over position from a consistent snapshot, and the change
//! stream from the binlog as a replica, with the schema history as the source's own state.
//!
//! Errors are classified by what they are: a connection that fails is
//! [`SourceError::Unavailable`]; a purged binlog is [`SourceError::Purged`]; everything the
//! server refuses or this crate cannot read is [`SourceError::Definite`], with the fix.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::source::{
    Catalog, CatalogColumn, Chunk, KeyedRows, SnapshotReader, Source, SourceError, Streamed,
    UnitPlan, UnitWork,
};
use sluice_core::tls::Tls;
use sluice_core::verify::{Cell, ChunkQuery, VerifyColumn};
use sluice_core::{Event, Position, SecretUrl, TableDef, TableId, TableSchema};
use sluice_mysql_client::Endpoint;

use crate::decode::SchemaHistory;
use crate::live::{self, LiveConfig, LiveError, StartAt};
use crate::position::BinlogPosition;
use crate::snapshot::past::{undo_ddl, Before};
use crate::snapshot::{self, KeyRange, KeyValue};

/// A MySQL-family source (MySQL, MariaDB, an OceanBase MySQL tenant's binlog service).
#[derive(Clone)]
pub struct MysqlSource {
    url: SecretUrl,
    endpoint: Endpoint,
    tls: Option<Tls>,
    server_id: u32,
    start: StartAt,
    heartbeat: Duration,
}

impl std::fmt::Debug for MysqlSource {
    // By hand: the client options hold the password in the clear.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSource")
            .field("url", &self.url)
            .field("server_id", &self.server_id)
            .field("start", &self.start)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// A client error as a source error: a failed connection can recover, a refusal cannot.
fn classify(what: &str, e: mysql_async::Error) -> SourceError {
    if is_transient(&e) {
        SourceError::Unavailable(format!("{what}: {e}"))
    } else {
        SourceError::Definite(format!("{what}: {e}"))
    }
}

/// Server error codes that trying again later can cure: too many connections (1040), the server
/// shutting down (1053), a lock wait timeout (1205), a deadlock (1213), a killed connection
/// (MariaDB 1927). Anything else the server says (access denied, an unknown table, a missing
/// privilege) stays true on retry.
const TRANSIENT_SERVER_CODES: [u16; 5] = [1040, 1053, 1205, 1213, 1927];

/// Whether a client error is the network or a passing state of the server.
fn is_transient(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        mysql_async::Error::Server(s) => TRANSIENT_SERVER_CODES.contains(&s.code),
        _ => false,
    }
}

fn definite(e: impl std::fmt::Display) -> SourceError {
    SourceError::Definite(e.to_string())
}

fn live_error(e: LiveError) -> SourceError {
    match e {
        e @ LiveError::Purged { .. } => SourceError::Purged(format!(
            "{e}. This project's checkpoint lies in the purged file; keep binlogs longer \
             (expire_logs_days / binlog_expire_logs_seconds) than a project may stay stopped"
        )),
        LiveError::Server { ref source, .. } if is_transient(source) => {
            SourceError::Unavailable(e.to_string())
        }
        e => SourceError::Definite(e.to_string()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, SourceError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Definite(format!("start a runtime: {e}")))
}

/// Whether `url` is a `mysql://user:pass@host:port` URL this source can connect with.
pub fn is_mysql_url(url: &SecretUrl) -> bool {
    mysql_async::Opts::from_url(url.expose()).is_ok()
}

impl MysqlSource {
    /// The source at `url` (`mysql://user:pass@host:port`), read as replica `server_id` from
    /// `start` when there is no checkpoint, asking for a heartbeat every `heartbeat`.
    pub fn new(
        url: &SecretUrl,
        server_id: u32,
        start: StartAt,
        heartbeat: Duration,
        tls: Option<&Tls>,
    ) -> Result<Self, SourceError> {
        let endpoint = Endpoint::new(url, tls).map_err(SourceError::Definite)?;
        Ok(Self {
            url: url.clone(),
            endpoint,
            tls: tls.cloned(),
            server_id,
            start,
            heartbeat,
        })
    }

    /// Where it connects (prints without the password).
    pub fn url(&self) -> &SecretUrl {
        &self.url
    }

    async fn connect(&self) -> Result<Conn, SourceError> {
        self.endpoint.connect().await.map_err(|e| {
            let advice = self.endpoint.tls_advice(&e, "source.tls");
            classify(
                &format!(
                    "cannot connect to {}{advice}; check source.url and that the server runs",
                    self.url
                ),
                e,
            )
        })
    }

    fn live(&self, start: StartAt, heartbeat: Duration, reconnect_for: Duration) -> LiveConfig {
        LiveConfig {
            endpoint: self.endpoint.clone(),
            server_id: self.server_id,
            start,
            heartbeat,
            reconnect_for,
            precheck_tables: Vec::new(),
        }
    }
}

/// The catalog on one connection.
struct MysqlCatalog {
    rt: tokio::runtime::Runtime,
    conn: Option<Conn>,
    /// Our replica id (the precheck looks for another replica using it).
    server_id: u32,
}

impl MysqlCatalog {
    fn conn(&mut self) -> Result<(&tokio::runtime::Runtime, &mut Conn), SourceError> {
        match self.conn.as_mut() {
            Some(c) => Ok((&self.rt, c)),
            None => Err(SourceError::Unavailable(
                "the catalog's connection is closed".into(),
            )),
        }
    }
}

impl Drop for MysqlCatalog {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = self.rt.block_on(c.disconnect());
        }
    }
}

impl Catalog for MysqlCatalog {
    fn tables(&mut self) -> Result<Vec<TableId>, SourceError> {
        let (rt, c) = self.conn()?;
        let rows: Vec<(String, String)> = rt
            .block_on(c.query(
                "SELECT table_schema, table_name FROM information_schema.tables \
                 WHERE table_type = 'BASE TABLE' AND table_schema NOT IN \
                 ('mysql','information_schema','performance_schema','sys')",
            ))
            .map_err(|e| classify("list the tables", e))?;
        Ok(rows.into_iter().map(|(d, t)| TableId::new(d, t)).collect())
    }

    fn columns(&mut self, t: &TableId) -> Result<Vec<CatalogColumn>, SourceError> {
        let (rt, c) = self.conn()?;
        let rows: Vec<(String, String)> = rt
            .block_on(c.exec(
                "SELECT CAST(column_name AS CHAR), CAST(column_key AS CHAR) \
                 FROM information_schema.columns \
                 WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                (t.db.as_str(), t.table.as_str()),
            ))
            .map_err(|e| classify(&format!("read the columns of {t}"), e))?;
        Ok(rows
            .into_iter()
            .map(|(name, key)| CatalogColumn {
                name,
                in_primary_key: key == "PRI",
            })
            .collect())
    }

    fn primary_keyed(&mut self) -> Result<std::collections::HashSet<TableId>, SourceError> {
        let (rt, c) = self.conn()?;
        let rows: Vec<(String, String)> = rt
            .block_on(c.query(
                "SELECT DISTINCT table_schema, table_name FROM information_schema.statistics \
                 WHERE index_name = 'PRIMARY'",
            ))
            .map_err(|e| classify("list the tables with a primary key", e))?;
        Ok(rows.into_iter().map(|(d, t)| TableId::new(d, t)).collect())
    }

    fn unique_key(&mut self, t: &TableId) -> Result<Option<Vec<String>>, SourceError> {
        let (rt, c) = self.conn()?;
        rt.block_on(snapshot::unique_key(c, t)).map_err(definite)
    }

    fn definition(&mut self, t: &TableId) -> Result<TableDef, SourceError> {
        let (rt, c) = self.conn()?;
        rt.block_on(snapshot::table_def(c, t)).map_err(definite)
    }

    fn end(&mut self) -> Result<Position, SourceError> {
        let (rt, c) = self.conn()?;
        let (file, offset) = rt
            .block_on(live::current_position(c))
            .map_err(|e| classify("read the end of the binlog", e))?;
        Ok(BinlogPosition::new(file, offset).to_position())
    }

    fn server_id(&mut self) -> Result<u32, SourceError> {
        let (rt, c) = self.conn()?;
        let id: Option<u32> = rt
            .block_on(c.query_first("SELECT @@server_id"))
            .map_err(|e| classify("read @@server_id", e))?;
        Ok(id.unwrap_or(0))
    }

    fn precheck(
        &mut self,
        tables: &[TableId],
        rows: u64,
    ) -> Result<sluice_core::source::Findings, SourceError> {
        let server_id = self.server_id;
        let (rt, c) = self.conn()?;
        let report = rt
            .block_on(crate::precheck::check(c, tables))
            .map_err(|e| classify("precheck", e))?;
        let more = rt
            .block_on(crate::precheck::before_start(c, server_id, rows))
            .map_err(|e| classify("precheck", e))?;
        let mut failures = report.failures;
        let (retention, replica): (Vec<_>, Vec<_>) =
            more.into_iter().partition(|f| f.item == "binlog retention");
        failures.extend(replica);
        Ok(sluice_core::source::Findings {
            checked: [
                "log_bin",
                "binlog_format",
                "binlog_row_image",
                "binlog_row_metadata",
                "privileges",
                "server_id",
                "binlog retention",
                "primary keys",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            failures,
            warnings: report.warnings.into_iter().chain(retention).collect(),
        })
    }
}

/// What the unit of a table without a key records as its `last_key`: the position its copy
/// was read at (see [`Source::copied_at`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct CopiedAt {
    copied_at: BinlogPosition,
}

impl Source for MysqlSource {
    fn catalog(&self) -> Result<Box<dyn Catalog + '_>, SourceError> {
        let rt = runtime()?;
        let conn = rt.block_on(self.connect())?;
        Ok(Box::new(MysqlCatalog {
            rt,
            conn: Some(conn),
            server_id: self.server_id,
        }))
    }

    fn starts_now(&self) -> bool {
        self.start == StartAt::Now
    }

    fn definitions_at_start(
        &self,
        tables: &[TableId],
        end: &Position,
        defs: &mut [Option<TableDef>],
    ) -> Result<(), SourceError> {
        // The log from the start to `end` is read once for the DDL of the selected tables,
        // and each table's current definition is taken back through them.
        let mut ddl: HashMap<TableId, Vec<String>> = HashMap::new();
        let cfg = self.live(
            self.start.clone(),
            Duration::from_secs(1),
            Duration::from_secs(30),
        );
        runtime()?
            .block_on(live::read_ddl(&cfg, |e| {
                let pos = match &e {
                    Event::Begin { pos, .. }
                    | Event::Commit { pos, .. }
                    | Event::Heartbeat { pos, .. } => pos,
                    Event::Row(r) => &r.pos,
                    Event::Ddl(d) => &d.pos,
                };
                if pos >= end {
                    return ControlFlow::Break(());
                }
                if let Event::Ddl(d) = &e {
                    if let Some(t) = d.table.as_ref().filter(|t| tables.contains(t)) {
                        ddl.entry(t.clone()).or_default().push(d.sql.clone());
                    }
                }
                ControlFlow::Continue(Ok(()))
            }))
            .map_err(|e| {
                SourceError::Definite(format!(
                    "reading the log from the start position for the schema in force there: {e}"
                ))
            })?;
        for (t, def) in tables.iter().zip(defs.iter_mut()) {
            let (Some(statements), Some(d)) = (ddl.get(t), def.as_mut()) else {
                continue;
            };
            let mut absent = false;
            for sql in statements.iter().rev() {
                match undo_ddl(d, sql) {
                    Before::Known => {}
                    Before::Absent => {
                        absent = true;
                        break;
                    }
                    Before::Unknown(why) => {
                        return Err(SourceError::Definite(format!(
                            "{t}: its definition at the start position is not known ({why} since); \
                             create it at the destination as it was then and set stages.schema: \
                             false, or start later"
                        )))
                    }
                }
            }
            if absent {
                // Created after the start: its CREATE TABLE is replayed in order.
                *def = None;
            } else {
                tracing::info!(
                    "{t}: schema sync uses its definition at the start position ({} DDL statements since)",
                    statements.len()
                );
            }
        }
        Ok(())
    }

    fn handover(&self) -> Result<Position, SourceError> {
        let rt = runtime()?;
        rt.block_on(async {
            let mut conn = self.connect().await?;
            let (file, offset) = crate::live::snapshot_position(&mut conn)
                .await
                .map_err(|e| {
                    SourceError::Definite(format!("take the full sync's hand-over position: {e}"))
                })?;
            let _ = conn.disconnect().await;
            Ok(BinlogPosition::new(file, offset).to_position())
        })
    }

    fn plan(
        &self,
        tables: &[TableId],
        keys: &HashMap<TableId, Vec<String>>,
        chunk_rows: usize,
        readers: usize,
    ) -> Result<Vec<UnitPlan>, SourceError> {
        let rt = runtime()?;
        rt.block_on(async {
            let mut conn = self.connect().await?;
            let mut units = Vec::new();
            for t in tables {
                let st = snapshot::table(&mut conn, t, keys.get(t).map(Vec::as_slice))
                    .await
                    .map_err(definite)?;
                let wanted = (st.estimated_rows / (chunk_rows as u64 * 4).max(1))
                    .clamp(1, (readers * 2) as u64) as i128;
                let mut ranges = vec![KeyRange::default()];
                if wanted > 1 && !st.schema.primary_key.is_empty() {
                    if let Some((lo, hi)) = snapshot::integer_key_bounds(&mut conn, &st.schema)
                        .await
                        .map_err(definite)?
                    {
                        let step = ((hi - lo + 1) / wanted).max(1);
                        ranges = (0..wanted)
                            .map(|i| KeyRange {
                                lo: (i > 0).then_some(lo + i * step),
                                hi: (i + 1 < wanted).then_some(lo + (i + 1) * step),
                            })
                            .collect();
                    }
                }
                let share = st.estimated_rows / ranges.len() as u64;
                for r in ranges {
                    units.push(UnitPlan {
                        table: t.clone(),
                        range: serde_json::to_string(&r).map_err(definite)?,
                        estimated_rows: share,
                    });
                }
            }
            let _ = conn.disconnect().await;
            Ok(units)
        })
    }

    fn snapshot_reader(
        &self,
        keys: HashMap<TableId, Vec<String>>,
        chunk_rows: usize,
    ) -> Result<Box<dyn SnapshotReader>, SourceError> {
        let rt = runtime()?;
        let conn = rt.block_on(async {
            let mut conn = self.connect().await?;
            snapshot::prepare_session(&mut conn)
                .await
                .map_err(|e| classify("prepare the full-sync session", e))?;
            Ok::<_, SourceError>(conn)
        })?;
        Ok(Box::new(MysqlReader {
            rt,
            conn: Some(conn),
            keys,
            chunk_rows,
            schemas: HashMap::new(),
        }))
    }

    fn copied_at(&self, last_key: &str) -> Option<Position> {
        serde_json::from_str::<CopiedAt>(last_key)
            .ok()
            .map(|c| c.copied_at.to_position())
    }

    fn initial_state(&self) -> String {
        serde_json::to_string(&SchemaHistory::new()).unwrap_or_default()
    }

    fn verifier(&self) -> Result<Option<Box<dyn sluice_core::verify::VerifySide>>, SourceError> {
        let side =
            sluice_verify_mysql::MysqlSide::connect(&self.url, self.tls.as_ref()).map_err(|e| {
                match e {
                    sluice_core::verify::VerifyError::Unavailable(m) => SourceError::Unavailable(m),
                    sluice_core::verify::VerifyError::Definite(m) => SourceError::Definite(m),
                }
            })?;
        Ok(Some(Box::new(side)))
    }

    fn rows_by_key(
        &self,
        table: &TableId,
        key_override: Option<&[String]>,
        key: &[VerifyColumn],
        keys: &[Vec<Cell>],
        gone: &[Vec<Cell>],
    ) -> Result<Option<KeyedRows>, SourceError> {
        let rt = runtime()?;
        rt.block_on(async {
            let mut conn = self.connect().await?;
            snapshot::prepare_session(&mut conn)
                .await
                .map_err(|e| classify("prepare the session", e))?;
            let schema = Arc::new(
                snapshot::table(&mut conn, table, key_override)
                    .await
                    .map_err(definite)?
                    .schema,
            );
            let q = ChunkQuery {
                table,
                columns: key,
                key_len: key.len(),
                after: None,
                upto: None,
                filter: None,
                utf8_text: true,
            };
            let mut rows = Vec::new();
            for part in keys.chunks(500) {
                let cond = sluice_verify_mysql::keys_condition(&q, part);
                rows.extend(
                    snapshot::read_where(&mut conn, &schema, &cond)
                        .await
                        .map_err(definite)?,
                );
            }
            let gone = gone
                .iter()
                .map(|k| {
                    schema
                        .columns
                        .iter()
                        .map(|c| {
                            match key
                                .iter()
                                .position(|v| v.name.eq_ignore_ascii_case(&c.name))
                            {
                                Some(i) => snapshot::key_value(&k[i], &c.ty).map_err(|e| {
                                    SourceError::Definite(format!(
                                        "{table}: key column {}: {e}",
                                        c.name
                                    ))
                                }),
                                None => Ok(sluice_core::Value::Null),
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(KeyedRows { schema, rows, gone }))
        })
    }

    fn stream(
        &self,
        from: Option<(&Position, &str)>,
        emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let (start, mut history) = match from {
            Some((pos, state)) => {
                let b = BinlogPosition::from_position(pos).map_err(SourceError::Definite)?;
                let history: SchemaHistory = if state.is_empty() {
                    SchemaHistory::new()
                } else {
                    serde_json::from_str(state).map_err(|e| {
                        SourceError::Definite(format!(
                            "the stored schema history is unreadable: {e}"
                        ))
                    })?
                };
                (
                    StartAt::FileOffset {
                        file: b.file,
                        offset: b.offset,
                    },
                    history,
                )
            }
            None => (self.start.clone(), SchemaHistory::new()),
        };
        tracing::info!(?start, "binlog stream starts");
        let cfg = self.live(start, self.heartbeat, Duration::from_secs(300));
        // Binlog bytes read, from the distance between successive positions (after a
        // rotation: the new file's offset; the old file's tail is its rotate event).
        let mut last: Option<(String, u64)> = None;
        runtime()?
            .block_on(live::read_with_history(&cfg, &mut history, |e, h| {
                let ddl = matches!(e, Event::Ddl(_));
                if let Event::Commit { pos, .. } | Event::Heartbeat { pos, .. } = &e {
                    let bytes = match &last {
                        Some((file, offset)) if file == pos.file() => {
                            pos.offset().saturating_sub(*offset)
                        }
                        Some(_) => pos.offset(),
                        None => 0,
                    };
                    last = Some((pos.file().to_string(), pos.offset()));
                    if emit(Streamed::Read(bytes)).is_break() {
                        return ControlFlow::Break(());
                    }
                }
                if emit(Streamed::Event(e)).is_break() {
                    return ControlFlow::Break(());
                }
                if ddl {
                    match serde_json::to_string(h) {
                        Ok(s) => {
                            if emit(Streamed::State(Arc::new(s))).is_break() {
                                return ControlFlow::Break(());
                            }
                        }
                        Err(e) => {
                            return ControlFlow::Continue(Err(format!(
                                "the schema history cannot be stored: {e}"
                            )
                            .into()))
                        }
                    }
                }
                ControlFlow::Continue(Ok(()))
            }))
            .map_err(live_error)
    }
}

/// One full-sync reader: its own connection, the schemas it has read.
struct MysqlReader {
    rt: tokio::runtime::Runtime,
    conn: Option<Conn>,
    keys: HashMap<TableId, Vec<String>>,
    chunk_rows: usize,
    schemas: HashMap<TableId, Arc<TableSchema>>,
}

impl Drop for MysqlReader {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = self.rt.block_on(c.disconnect());
        }
    }
}

impl SnapshotReader for MysqlReader {
    fn read(
        &mut self,
        work: &UnitWork,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Chunk) -> bool,
    ) -> Result<(), SourceError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(SourceError::Unavailable(
                "the reader's connection is closed".into(),
            ));
        };
        let (rt, keys, chunk_rows) = (&self.rt, &self.keys, self.chunk_rows);
        let schema = match self.schemas.get(&work.table) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(
                    rt.block_on(snapshot::table(
                        conn,
                        &work.table,
                        keys.get(&work.table).map(Vec::as_slice),
                    ))
                    .map_err(definite)?
                    .schema,
                );
                self.schemas.insert(work.table.clone(), s.clone());
                s
            }
        };
        if schema.primary_key.is_empty() {
            return rt.block_on(copy_whole(conn, &schema, chunk_rows, stop, emit));
        }
        let range: KeyRange = serde_json::from_str(&work.range).map_err(definite)?;
        let mut after: Option<Vec<KeyValue>> = match &work.after {
            // A whole-table copy is never resumed: it starts again from empty.
            Some(k) if serde_json::from_str::<CopiedAt>(k).is_ok() => None,
            Some(k) => Some(serde_json::from_str(k).map_err(definite)?),
            None => None,
        };
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let chunk = rt
                .block_on(snapshot::read_chunk(
                    conn,
                    &schema,
                    &range,
                    after.as_deref(),
                    chunk_rows,
                ))
                .map_err(definite)?;
            let done = chunk.rows.len() < chunk_rows;
            let last_key = match &chunk.last_key {
                Some(k) => Some(serde_json::to_string(k).map_err(definite)?),
                None => None,
            };
            after = chunk.last_key.clone().or(after);
            let c = Chunk {
                schema: schema.clone(),
                rows: chunk.rows,
                last_key,
                done,
                fresh: false,
            };
            if !emit(c) || done {
                return Ok(());
            }
        }
    }
}

/// Copies a table without a key whole, in one consistent read at a known position (recorded
/// in every chunk's `last_key`), `chunk_rows` rows per chunk.
async fn copy_whole(
    conn: &mut Conn,
    schema: &Arc<TableSchema>,
    chunk_rows: usize,
    stop: &AtomicBool,
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<(), SourceError> {
    let (file, offset) = live::open_snapshot(conn).await.map_err(|e| {
        SourceError::Definite(format!("{}: open a consistent snapshot: {e}", schema.id))
    })?;
    let at = CopiedAt {
        copied_at: BinlogPosition::new(file, offset),
    };
    let last_key = serde_json::to_string(&at).map_err(definite)?;
    let mut fresh = true;
    snapshot::read_all(conn, schema, chunk_rows, |rows, done| {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let c = Chunk {
            schema: schema.clone(),
            rows,
            last_key: Some(last_key.clone()),
            done,
            fresh,
        };
        fresh = false;
        emit(c)
    })
    .await
    .map_err(definite)?;
    conn.query_drop("COMMIT")
        .await
        .map_err(|e| classify("end the consistent snapshot", e))
}
