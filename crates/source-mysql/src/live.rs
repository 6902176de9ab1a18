//! Reading a live server as a replica: connect with our own `server_id`, ask for the binlog from
//! a start position, decode, and reconnect by ourselves from the last committed transaction
//! when the connection drops.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::time::Duration;

use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, TableMapEvent};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn};
use sluice_core::{Event, TableId};
use sluice_mysql_client::Endpoint;

use crate::decode::{DecodeError, Decoder, Mode, SchemaHistory, TableHints};

/// Where reading starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// The current end of the log (`SHOW MASTER STATUS`).
    Now,
    /// The oldest binlog file the server still has.
    Earliest,
    /// A binlog file and offset (the start of a transaction).
    FileOffset {
        /// Binlog file name.
        file: String,
        /// Byte offset.
        offset: u64,
    },
    /// A MariaDB GTID position (`domain-server-seq[,...]`): read what follows it.
    MariadbGtid(String),
    /// A MySQL GTID set (`uuid:1-100[:200-300][,uuid:...]`, the transactions already seen):
    /// read every transaction not in it.
    MysqlGtidSet(String),
    /// The first transaction that began at or after this moment (seconds since the epoch, UTC;
    /// binlog event times have one-second resolution).
    Time(i64),
}

impl StartAt {
    /// Parses `now`, `earliest`, `FILE:OFFSET`, `gtid:D-S-N[,...]` (MariaDB),
    /// `gtid:UUID:N-M[,...]` (a MySQL GTID set) or `time:RFC3339`.
    pub fn parse(s: &str) -> Result<StartAt, StartError> {
        Self::parse_text(s).map_err(StartError)
    }

    fn parse_text(s: &str) -> Result<StartAt, String> {
        Ok(match s {
            "now" => StartAt::Now,
            "earliest" => StartAt::Earliest,
            _ if s.starts_with("gtid:") && s["gtid:".len()..].contains(':') => {
                let set = s["gtid:".len()..].to_string();
                mysql_gtid_set(&set)?;
                StartAt::MysqlGtidSet(set)
            }
            _ if s.starts_with("gtid:") => StartAt::MariadbGtid(s["gtid:".len()..].to_string()),
            _ if s.starts_with("time:") => StartAt::Time(parse_rfc3339(&s["time:".len()..])?),
            _ => {
                let (file, offset) = s.rsplit_once(':').ok_or_else(|| {
                    format!("{s:?} must be now, earliest, FILE:OFFSET, gtid:D-S-N or time:RFC3339")
                })?;
                let offset = offset
                    .parse()
                    .map_err(|_| format!("{s:?}: offset is not a number"))?;
                StartAt::FileOffset {
                    file: file.to_string(),
                    offset,
                }
            }
        })
    }
}

/// A start position that is none of the forms [`StartAt::parse`] reads; the message names the
/// forms.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

/// Seconds since the epoch of an RFC 3339 time (`2024-05-01T08:00:00Z`, `...+08:00`, an
/// optional fraction is ignored: binlog times have one-second resolution).
pub(crate) fn parse_rfc3339(t: &str) -> Result<i64, String> {
    let bad = || format!("time:{t} is not an RFC 3339 time such as 2024-05-01T08:00:00Z");
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let (date, rest) = t.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return Err(bad());
    };
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = rest.rfind(['+', '-']).ok_or_else(bad)?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').ok_or_else(bad)?;
        (c, sign * (num(oh)? * 3600 + num(om)? * 60))
    };
    let clock = clock.split('.').next().unwrap_or(clock);
    let c: Vec<&str> = clock.split(':').collect();
    let [h, mi, se] = c.as_slice() else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return Err(bad());
    }
    let days = sluice_core::render::days_from_civil(y, mo as u32, da as u32);
    Ok(days * 86_400 + num(h)? * 3600 + num(mi)? * 60 + num(se)? - offset_secs)
}

/// How to reach the source and what to read.
#[derive(Clone)]
pub struct LiveConfig {
    /// Connection options (URL `mysql://user:pass@host:port`).
    pub endpoint: Endpoint,
    /// Our replica id; must differ from every other replica of the source.
    pub server_id: u32,
    /// Where to start.
    pub start: StartAt,
    /// Heartbeat period the server is asked for, so an idle source still reports progress.
    pub heartbeat: Duration,
    /// How long to keep trying to reconnect after the connection drops; then give up.
    pub reconnect_for: Duration,
    /// Tables whose primary keys the precheck verifies (a missing one is a warning).
    pub precheck_tables: Vec<TableId>,
}

impl std::fmt::Debug for LiveConfig {
    // By hand: the client options hold the password in the clear.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("addr", &self.endpoint.address())
            .field("server_id", &self.server_id)
            .field("start", &self.start)
            .field("heartbeat", &self.heartbeat)
            .field("reconnect_for", &self.reconnect_for)
            .field("precheck_tables", &self.precheck_tables)
            .finish()
    }
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The server could not be reached or refused a request.
    #[error("source {addr}: {what} failed; {}", fix_for(source))]
    Server {
        /// host:port.
        addr: String,
        /// What was being done.
        what: String,
        /// The client error.
        source: mysql_async::Error,
    },
    /// The start position is no longer on the server.
    #[error(
        "binlog file {requested} was purged; the earliest available is {earliest}; run a full sync or start from {earliest}"
    )]
    Purged {
        /// The file asked for.
        requested: String,
        /// The oldest file the server has.
        earliest: String,
    },
    /// The start file is newer than any the server has.
    #[error("binlog file {requested} does not exist on the source; the newest is {newest}; check --start")]
    NoSuchFile {
        /// The file asked for.
        requested: String,
        /// The newest file the server has.
        newest: String,
    },
    /// The source is not fit for capture.
    #[error("precheck of source {addr} failed:\n{}", findings.iter().map(|f| format!("  - {f}")).collect::<Vec<_>>().join("\n"))]
    Precheck {
        /// host:port.
        addr: String,
        /// What failed, each with its fix.
        findings: Vec<crate::precheck::Finding>,
    },
    /// An event could not be decoded (definite: retrying would fail the same way).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The source or the position asked for cannot be read (definite).
    #[error("{0}")]
    Refused(String),
    /// The consumer of the events stopped the reading with its own error.
    #[error("{0}")]
    Stopped(crate::EmitError),
}

/// What to do about a client error, by its kind.
fn fix_for(e: &mysql_async::Error) -> &'static str {
    match e {
        mysql_async::Error::Io(_) => {
            "check that the server is running and that host and port are right"
        }
        mysql_async::Error::Server(s) if s.code == 1045 => "check the user name and password",
        mysql_async::Error::Server(s) if matches!(s.code, 1044 | 1142 | 1227) => {
            "grant the user REPLICATION SLAVE, REPLICATION CLIENT and SELECT"
        }
        mysql_async::Error::Server(s) if s.code == 1236 => {
            "the binlog position cannot be served; check --start"
        }
        _ => "see the cause below",
    }
}

/// Whether a start file missing from the server's list was purged (older than the oldest)
/// or never existed (newer than the newest).
fn missing_file(requested: &str, logs: &[String]) -> LiveError {
    let index = |f: &str| {
        f.rsplit_once('.')
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let newest = logs.last().cloned().unwrap_or_default();
    if !logs.is_empty() && index(requested) > index(&newest) {
        return LiveError::NoSuchFile {
            requested: requested.to_string(),
            newest,
        };
    }
    LiveError::Purged {
        requested: requested.to_string(),
        earliest: logs.first().cloned().unwrap_or_default(),
    }
}

/// Whether the source is MariaDB (GTID and capability handling differ).
async fn is_mariadb(conn: &mut Conn) -> Result<bool, mysql_async::Error> {
    let v: Option<String> = conn.query_first("SELECT VERSION()").await?;
    Ok(v.unwrap_or_default().contains("MariaDB"))
}

/// Binlog files on the server, oldest first.
pub async fn binary_logs(conn: &mut Conn) -> Result<Vec<String>, mysql_async::Error> {
    conn.query_map("SHOW BINARY LOGS", |row: mysql_async::Row| {
        row.get::<String, _>(0).unwrap_or_default()
    })
    .await
}

/// The SIDs of a MySQL GTID set (`uuid:1-5:7,uuid2:1-9`), as COM_BINLOG_DUMP_GTID sends them.
pub(crate) fn mysql_gtid_set(
    set: &str,
) -> Result<Vec<mysql_common::packets::Sid<'static>>, String> {
    set.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<mysql_common::packets::Sid<'static>>()
                .map_err(|e| {
                    format!("gtid:{set}: {p:?} is not a MySQL GTID set entry (uuid:N-M): {e}")
                })
        })
        .collect()
}

/// The server's current end of log.
pub async fn current_position(conn: &mut Conn) -> Result<(String, u64), mysql_async::Error> {
    let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
    let row = row.ok_or_else(|| {
        mysql_async::Error::Other("SHOW MASTER STATUS is empty: binary logging is off".into())
    })?;
    Ok((
        row.get::<String, _>(0).unwrap_or_default(),
        row.get::<u64, _>(1).unwrap_or(4),
    ))
}

pub use crate::handover::{
    open_snapshot, position_under_read_lock, snapshot_position, SnapshotPositionError,
};

/// The JSON columns of a MariaDB table (its JSON type is LONGTEXT with a `json_valid` check).
pub(crate) async fn json_columns(
    conn: &mut Conn,
    table: &TableId,
) -> Result<HashSet<String>, mysql_async::Error> {
    let clauses: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (&table.db, &table.table),
        )
        .await?;
    Ok(clauses
        .iter()
        .filter_map(|c| {
            let c = c.trim();
            let inner = c.strip_prefix("json_valid(`")?.strip_suffix("`)")?;
            Some(inner.replace("``", "`"))
        })
        .collect())
}

/// Reads the binlog from `cfg.start`, handing each event to `emit` until it breaks, the
/// server ends the stream, or an error that retrying cannot fix.
///
/// A dropped connection is retried (with backoff, for up to `cfg.reconnect_for`) from the end
/// of the last committed transaction: events of a transaction that was open when the
/// connection dropped are emitted again, nothing is lost.
///
/// `history` is the schema history to continue from; it is handed back, grown by the DDL read,
/// however the reading ends (to be persisted with the position reached).
pub async fn read(
    cfg: &LiveConfig,
    history: &mut SchemaHistory,
    mut emit: impl FnMut(Event) -> ControlFlow<(), Result<(), crate::EmitError>>,
) -> Result<(), LiveError> {
    read_with_history(cfg, history, |e, _| emit(e)).await
}

/// Reads as [`read`] does, handing each event with the schema history as of just after it
/// (what a checkpoint at the next commit stores).
pub async fn read_with_history(
    cfg: &LiveConfig,
    history: &mut SchemaHistory,
    emit: impl FnMut(Event, &SchemaHistory) -> ControlFlow<(), Result<(), crate::EmitError>>,
) -> Result<(), LiveError> {
    let mut decoder =
        Decoder::new(String::new(), Mode::Replica).with_history(std::mem::take(history));
    let result = read_with(cfg, &mut decoder, emit).await;
    *history = decoder.take_history();
    result
}

/// Reads the binlog from `cfg.start` as [`read`] does, but only for its DDL and transaction
/// boundaries: rows events are skipped undecoded (no `Row` events), which makes a scan of a
/// long stretch of log for its schema changes cheap.
pub async fn read_ddl(
    cfg: &LiveConfig,
    mut emit: impl FnMut(Event) -> ControlFlow<(), Result<(), crate::EmitError>>,
) -> Result<(), LiveError> {
    let mut decoder = Decoder::new(String::new(), Mode::Replica).skipping_rows();
    read_with(cfg, &mut decoder, |e, _| emit(e)).await
}

async fn read_with(
    cfg: &LiveConfig,
    decoder: &mut Decoder,
    mut emit: impl FnMut(Event, &SchemaHistory) -> ControlFlow<(), Result<(), crate::EmitError>>,
) -> Result<(), LiveError> {
    let addr = cfg.endpoint.address();
    let server = |what: &str| {
        let addr = addr.clone();
        let what = what.to_string();
        move |source| LiveError::Server { addr, what, source }
    };
    let mut meta = cfg.endpoint.connect().await.map_err(server("connect"))?;
    let report = crate::precheck::check(&mut meta, &cfg.precheck_tables)
        .await
        .map_err(server("precheck"))?;
    for w in &report.warnings {
        tracing::warn!(source = %addr, "precheck: {w}");
    }
    if !report.passed() {
        return Err(LiveError::Precheck {
            addr,
            findings: report.failures,
        });
    }
    let mariadb = is_mariadb(&mut meta)
        .await
        .map_err(server("read the version"))?;
    let mut start = cfg.start.clone();
    if start == StartAt::Now {
        let (file, offset) = current_position(&mut meta)
            .await
            .map_err(server("SHOW MASTER STATUS"))?;
        start = StartAt::FileOffset { file, offset };
    }
    if start == StartAt::Earliest {
        let logs = binary_logs(&mut meta)
            .await
            .map_err(server("SHOW BINARY LOGS"))?;
        let first = logs
            .first()
            .cloned()
            .ok_or_else(|| LiveError::Refused("the server has no binlog files".into()))?;
        start = StartAt::FileOffset {
            file: first,
            offset: 4,
        };
    }
    let mut skip_before_ms: Option<u64> = None;
    if let StartAt::Time(t) = start {
        let logs = binary_logs(&mut meta)
            .await
            .map_err(server("SHOW BINARY LOGS"))?;
        let file = file_for_time(cfg, &logs, t)
            .await
            .map_err(server("read the binlog files' times"))?;
        skip_before_ms = Some(u64::try_from(t).unwrap_or(0).saturating_mul(1000));
        start = StartAt::FileOffset { file, offset: 4 };
    }
    if let StartAt::FileOffset { file, .. } = &start {
        let logs = binary_logs(&mut meta)
            .await
            .map_err(server("SHOW BINARY LOGS"))?;
        if !logs.contains(file) {
            return Err(missing_file(file, &logs));
        }
    }

    let mut state = ReadState {
        decoder,
        hints: HashMap::new(),
        skip_before_ms,
    };
    let mut backoff = Duration::from_millis(200);
    let mut down_since: Option<std::time::Instant> = None;
    loop {
        let attempt = stream_once(
            cfg, &addr, mariadb, &start, &mut meta, &mut state, &mut emit,
        )
        .await;
        match attempt {
            Ok(Outcome::Stopped) => return Ok(()),
            Ok(Outcome::Dropped { resume, error }) => {
                let since = *down_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > cfg.reconnect_for {
                    return Err(LiveError::Server {
                        addr,
                        what: "read the binlog (gave up reconnecting)".into(),
                        source: error,
                    });
                }
                tracing::warn!(source = %addr, error = %error, "binlog connection lost; reconnecting");
                if let Some(r) = resume {
                    start = r;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                match cfg.endpoint.connect().await {
                    Ok(c) => {
                        meta = c;
                        down_since = None;
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => {
                        tracing::warn!(source = %addr, error = %e, "reconnect failed; retrying")
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// What one read keeps across reconnects.
struct ReadState<'d> {
    /// One decoder for the whole read: reset at each reconnect, its schema history kept.
    decoder: &'d mut Decoder,
    /// What information_schema told about each table met so far.
    hints: HashMap<TableId, TableHints>,
    /// With a start time: emit nothing before the first transaction that began at or after it.
    skip_before_ms: Option<u64>,
}

enum Outcome {
    Stopped,
    Dropped {
        resume: Option<StartAt>,
        error: mysql_async::Error,
    },
}

async fn stream_once(
    cfg: &LiveConfig,
    addr: &str,
    mariadb: bool,
    start: &StartAt,
    meta: &mut Conn,
    state: &mut ReadState<'_>,
    emit: &mut impl FnMut(Event, &SchemaHistory) -> ControlFlow<(), Result<(), crate::EmitError>>,
) -> Result<Outcome, LiveError> {
    let ReadState {
        decoder,
        hints,
        skip_before_ms,
    } = state;
    let server = |what: &'static str| {
        move |source| LiveError::Server {
            addr: addr.to_string(),
            what: what.into(),
            source,
        }
    };
    let mut conn = match cfg.endpoint.connect().await {
        Ok(c) => c,
        Err(e) => {
            return Ok(Outcome::Dropped {
                resume: None,
                error: e,
            })
        }
    };
    let period_ns = cfg.heartbeat.as_nanos().min(u128::from(u64::MAX)) as u64;
    conn.query_drop(format!("SET @master_heartbeat_period = {period_ns}"))
        .await
        .map_err(server("set the heartbeat period"))?;
    let mut request = BinlogStreamRequest::new(cfg.server_id);
    if mariadb {
        // Capability 4 (GTID): the server sends its own GTID, annotate and checkpoint events.
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(server("set the replica capability"))?;
    }
    match start {
        StartAt::FileOffset { file, offset } => {
            request = request.with_filename(file.as_bytes()).with_pos(*offset);
            decoder.restart_at(file.clone());
        }
        StartAt::MariadbGtid(gtid) => {
            if !mariadb {
                return Err(LiveError::Refused(
                    "a MariaDB GTID start position needs a MariaDB source".into(),
                ));
            }
            conn.exec_drop("SET @slave_connect_state = ?", (gtid,))
                .await
                .map_err(server("set the GTID start"))?;
            conn.query_drop("SET @slave_gtid_strict_mode = 1")
                .await
                .map_err(server("set GTID strict mode"))?;
            decoder.restart_at(String::new());
        }
        StartAt::MysqlGtidSet(set) => {
            if mariadb {
                return Err(LiveError::Refused(format!(
                    "gtid:{set} is a MySQL GTID set, but the source is MariaDB, whose GTIDs look like \
                     domain-server-sequence (gtid:0-1-42)"
                )));
            }
            // No file: the server finds the first transaction not in the set.
            request = request
                .with_gtid()
                .with_gtid_set(mysql_gtid_set(set).map_err(LiveError::Refused)?);
            decoder.restart_at(String::new());
        }
        StartAt::Now | StartAt::Earliest | StartAt::Time(_) => {
            return Err(LiveError::Refused(
                "internal: start position not resolved".into(),
            ));
        }
    }
    let mut stream = match conn.get_binlog_stream(request).await {
        Ok(s) => s,
        Err(mysql_async::Error::Server(e)) if e.code == 1236 => {
            let logs = binary_logs(meta).await.unwrap_or_default();
            if let StartAt::FileOffset { file, .. } = start {
                if !logs.contains(file) {
                    return Err(missing_file(file, &logs));
                }
            }
            return Err(LiveError::Server {
                addr: addr.into(),
                what: "start the binlog dump".into(),
                source: mysql_async::Error::Server(e),
            });
        }
        Err(e) => {
            return Ok(Outcome::Dropped {
                resume: None,
                error: e,
            })
        }
    };

    let mut out = Vec::new();
    let mut last_commit: Option<StartAt> = None;
    while let Some(item) = stream.next().await {
        let ev = match item {
            Ok(ev) => ev,
            Err(mysql_async::Error::Server(e)) if e.code == 1236 => {
                return Err(LiveError::Server {
                    addr: addr.into(),
                    what: "read the binlog".into(),
                    source: mysql_async::Error::Server(e),
                })
            }
            Err(e) => {
                return Ok(Outcome::Dropped {
                    resume: last_commit,
                    error: e,
                })
            }
        };
        let header = ev.header();
        let size = u64::from(header.event_size());
        let log_pos = u64::from(header.log_pos());
        // log_pos is the offset just past the event; 0 for artificial events (the first rotate).
        let offset = if log_pos >= size {
            log_pos - size
        } else {
            decoder.next_offset()
        };
        if header.event_type_raw() == mysql_async::binlog::EventType::TABLE_MAP_EVENT as u8
            && mariadb
        {
            if let Ok(Some(EventData::TableMapEvent(tme))) = ev.read_data() {
                let id = table_id(&tme);
                // information_schema is read when the table is first met, i.e. as of now,
                // not as of this event's position (see docs/CAPTURE.md, known limits).
                let h = match hints.get(&id) {
                    Some(h) => h.clone(),
                    None => {
                        let json = json_columns(meta, &id)
                            .await
                            .map_err(server("read information_schema"))?;
                        let h = TableHints { json_columns: json };
                        hints.insert(id.clone(), h.clone());
                        h
                    }
                };
                decoder.set_hints(id, h);
            }
        }
        decoder.decode(&ev, offset, &mut out)?;
        for e in out.drain(..) {
            if let Event::Commit { pos: p, .. } = &e {
                last_commit = Some(match (p.gtid(), mariadb) {
                    (Some(g), true) => StartAt::MariadbGtid(g.to_string()),
                    _ => StartAt::FileOffset {
                        file: p.file().to_string(),
                        offset: p.offset(),
                    },
                });
            }
            if let Some(t) = *skip_before_ms {
                // Starting at a time: nothing is emitted before the first transaction that
                // began at or after it.
                match &e {
                    Event::Begin { ts_ms, .. } if *ts_ms >= t => *skip_before_ms = None,
                    _ => continue,
                }
            }
            match emit(e, decoder.history()) {
                ControlFlow::Continue(Ok(())) => {}
                ControlFlow::Continue(Err(e)) => return Err(LiveError::Stopped(e)),
                ControlFlow::Break(()) => return Ok(Outcome::Stopped),
            }
        }
    }
    // A blocking dump never ends by itself: the server shut down or closed the connection.
    Ok(Outcome::Dropped {
        resume: last_commit,
        error: mysql_async::Error::Other("the server closed the binlog connection".into()),
    })
}

/// The binlog file to start from for a start time: the newest file created at or before it
/// (a file's creation time is its format-description event's time); the oldest if none is.
async fn file_for_time(
    cfg: &LiveConfig,
    logs: &[String],
    t: i64,
) -> Result<String, mysql_async::Error> {
    for file in logs.iter().rev() {
        if first_event_time(cfg, file)
            .await?
            .is_some_and(|created| i64::from(created) <= t)
        {
            return Ok(file.clone());
        }
    }
    Ok(logs.first().cloned().unwrap_or_default())
}

/// The time of the format-description event at the start of `file`, read with a non-blocking
/// dump that ends by itself.
async fn first_event_time(cfg: &LiveConfig, file: &str) -> Result<Option<u32>, mysql_async::Error> {
    let conn = cfg.endpoint.connect().await?;
    let request = BinlogStreamRequest::new(cfg.server_id)
        .with_filename(file.as_bytes())
        .with_pos(4)
        .with_non_blocking();
    let mut stream = conn.get_binlog_stream(request).await?;
    let mut found = None;
    while let Some(ev) = stream.next().await {
        let ev = ev?;
        let h = ev.header();
        if h.event_type_raw() == mysql_async::binlog::EventType::FORMAT_DESCRIPTION_EVENT as u8
            && h.timestamp() != 0
        {
            found = Some(h.timestamp());
            break;
        }
    }
    let _ = stream.close().await;
    Ok(found)
}

fn table_id(tme: &TableMapEvent<'_>) -> TableId {
    TableId::new(tme.database_name(), tme.table_name())
}

#[cfg(test)]
mod tests {
    use super::{mysql_gtid_set, parse_rfc3339, StartAt};

    #[test]
    fn gtid_starts_tell_mysql_sets_from_mariadb_positions() {
        assert_eq!(
            StartAt::parse("gtid:0-1-42,1-2-7"),
            Ok(StartAt::MariadbGtid("0-1-42,1-2-7".into()))
        );
        let set =
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7, 4e11fa47-71ca-11e1-9e33-c80aa9429562:23";
        assert_eq!(
            StartAt::parse(&format!("gtid:{set}")),
            Ok(StartAt::MysqlGtidSet(set.into()))
        );
        let sids = mysql_gtid_set(set).expect("valid set");
        assert_eq!(sids.len(), 2);
        // The intervals go on the wire half-open, as COM_BINLOG_DUMP_GTID wants them.
        let first: Vec<(u64, u64)> = sids[0]
            .intervals()
            .iter()
            .map(|i| (i.start(), i.end()))
            .collect();
        assert_eq!(first, vec![(1, 6), (7, 8)]);
        let e = StartAt::parse("gtid:not-a-uuid:1-2").expect_err("bad uuid");
        assert!(
            e.to_string().contains("is not a MySQL GTID set entry"),
            "{e}"
        );
    }

    #[test]
    fn rfc3339_times_parse_to_epoch_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").ok(), Some(0));
        assert_eq!(
            parse_rfc3339("2024-05-01T08:00:00Z").ok(),
            Some(1_714_550_400)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T16:00:00.25+08:00").ok(),
            Some(1_714_550_400)
        );
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
