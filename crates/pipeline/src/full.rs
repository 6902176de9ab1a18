//! The full stage: copy the selected tables' existing rows, in key-ordered chunks, with several
//! readers in parallel, resumable at chunk granularity.
//!
//! Hand-over to incremental sync: before the first row is read, a binlog position P0 is stored
//! as the project's checkpoint, taken so that every transaction before P0 is already visible to
//! the copy (`live::snapshot_position`: the position of a consistent snapshot, or the end of the
//! log under a momentary read lock; the plain end of the log is not enough, as a transaction is
//! in the binlog before the engine shows it). Incremental sync then replays every
//! change from P0. A row copied at time T >= P0 shows its state at T; every change after P0 is
//! delivered after it, and each carries the whole row image, so a consumer applying messages
//! per key in order ends at the source's state: nothing is missed (every change after P0 is
//! replayed) and nothing is lost (a change before P0 is in the copied row). The price is that
//! changes between P0 and T are seen twice (once inside the copied row, once replayed); the
//! `snapshot`/`r`/`ROW` marking of copied rows tells them apart.
//!
//! A table without a key cannot be read in key ranges, and replaying a change twice into it is
//! not harmless (no key makes it idempotent). It is copied whole in one consistent read whose
//! binlog position S is known exactly (`live::open_snapshot`), recorded in its unit; incremental
//! sync then skips that table's changes before S (they are in the copy) and applies those
//! after, each once. A copy interrupted by a crash starts again: the destination table is
//! cleared first (`Sink::clear_table`) and a new S is taken.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_core::sink::{DeliveryItem, Sink};
use sluice_core::{Event, Op, Position, RowChange, TableId, TableSchema};
use sluice_meta::{FullUnit, MetaStore};
use sluice_route::Router;
use sluice_source_mysql::live;
use sluice_source_mysql::position::BinlogPosition;
use sluice_source_mysql::snapshot::{self, KeyRange, KeyValue};
use std::collections::HashMap;

use crate::control::{PauseCheck, Throttle};
use crate::deliver::{InFlight, Retry, Status};
use crate::metrics::Metrics;
use crate::project::Project;
use crate::run::RunError;

/// Metrics, throttle, pause and status of the run, lent to the full stage.
pub(crate) struct Controls<'a> {
    pub(crate) metrics: &'a Metrics,
    pub(crate) throttle: &'a mut Throttle,
    pub(crate) pause: &'a mut PauseCheck,
    pub(crate) status: &'a Status,
}

fn source_err(e: impl std::fmt::Display) -> RunError {
    RunError::Source(e.to_string())
}

/// Splits the selected tables into units: one per table, or several key ranges for a large
/// table with an integer key (so readers share it).
pub(crate) async fn plan(
    conn: &mut mysql_async::Conn,
    p: &Project,
    tables: &[TableId],
) -> Result<Vec<FullUnit>, RunError> {
    let mut units = Vec::new();
    for t in tables {
        let st = snapshot::table(conn, t, p.keys.get(t).map(Vec::as_slice))
            .await
            .map_err(source_err)?;
        let wanted = (st.estimated_rows / (p.full_chunk_rows as u64 * 4).max(1))
            .clamp(1, (p.full_readers * 2) as u64) as i128;
        let mut ranges = vec![KeyRange::default()];
        if wanted > 1 && !st.schema.primary_key.is_empty() {
            if let Some((lo, hi)) = snapshot::integer_key_bounds(conn, &st.schema)
                .await
                .map_err(source_err)?
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
            units.push(FullUnit {
                unit: units.len() as u32,
                db: t.db.clone(),
                table: t.table.clone(),
                range: serde_json::to_string(&r).map_err(source_err)?,
                last_key: None,
                rows: 0,
                total: share,
                done: false,
            });
        }
    }
    Ok(units)
}

/// What the unit of a table without a key records as its `last_key`: the position its copy
/// was read at.
#[derive(serde::Serialize, serde::Deserialize)]
struct CopiedAt {
    copied_at: BinlogPosition,
}

/// The tables copied whole (no key) and the position each copy was read at: incremental sync
/// skips their changes before it.
pub(crate) fn copied_at(units: &[FullUnit]) -> HashMap<TableId, Position> {
    units
        .iter()
        .filter(|u| u.done)
        .filter_map(|u| {
            let c: CopiedAt = serde_json::from_str(u.last_key.as_deref()?).ok()?;
            Some((TableId::new(&u.db, &u.table), c.copied_at.to_position()))
        })
        .collect()
}

/// What a reader hands the writer.
enum Msg {
    Chunk {
        unit: u32,
        schema: Arc<TableSchema>,
        rows: Vec<Vec<sluice_core::Value>>,
        last_key: Option<String>,
        done: bool,
        /// The first chunk of a whole-table copy (no key): clear the destination table first.
        fresh: bool,
    },
    Failed(String),
}

struct Work {
    unit: u32,
    table: TableId,
    range: KeyRange,
    after: Option<Vec<KeyValue>>,
}

/// One reader: takes units from the queue and sends their chunks, in key order.
fn reader(
    p: &Project,
    queue: &Mutex<VecDeque<Work>>,
    tx: &std::sync::mpsc::SyncSender<Msg>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let opts = mysql_async::Opts::from_url(p.source_url.expose()).map_err(|e| e.to_string())?;
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", p.source_url))?;
        snapshot::prepare_session(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let mut schemas: BTreeMap<TableId, Arc<TableSchema>> = BTreeMap::new();
        loop {
            let Some(mut w) = queue.lock().map_err(|e| e.to_string())?.pop_front() else {
                break;
            };
            let schema = match schemas.get(&w.table) {
                Some(s) => s.clone(),
                None => {
                    let keys = p.keys.get(&w.table).map(Vec::as_slice);
                    let s = Arc::new(
                        snapshot::table(&mut conn, &w.table, keys)
                            .await
                            .map_err(|e| e.to_string())?
                            .schema,
                    );
                    schemas.insert(w.table.clone(), s.clone());
                    s
                }
            };
            if schema.primary_key.is_empty() {
                copy_whole(&mut conn, p, &schema, w.unit, tx, stop).await?;
                continue;
            }
            loop {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let chunk = snapshot::read_chunk(
                    &mut conn,
                    &schema,
                    &w.range,
                    w.after.as_deref(),
                    p.full_chunk_rows,
                )
                .await
                .map_err(|e| e.to_string())?;
                let done = chunk.rows.len() < p.full_chunk_rows;
                let last_key = match &chunk.last_key {
                    Some(k) => Some(serde_json::to_string(k).map_err(|e| e.to_string())?),
                    None => None,
                };
                w.after = chunk.last_key.clone().or(w.after);
                let msg = Msg::Chunk {
                    unit: w.unit,
                    schema: schema.clone(),
                    rows: chunk.rows,
                    last_key,
                    done,
                    fresh: false,
                };
                if tx.send(msg).is_err() {
                    return Ok(());
                }
                if done {
                    break;
                }
            }
        }
        let _ = conn.disconnect().await;
        Ok(())
    })
}

/// Copies a table without a key whole, in one consistent read at a known position (see the
/// module docs), `full_chunk_rows` rows per message.
async fn copy_whole(
    conn: &mut mysql_async::Conn,
    p: &Project,
    schema: &Arc<TableSchema>,
    unit: u32,
    tx: &std::sync::mpsc::SyncSender<Msg>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let (file, offset) = live::open_snapshot(conn)
        .await
        .map_err(|e| format!("{}: open a consistent snapshot: {e}", schema.id))?;
    let at = CopiedAt {
        copied_at: BinlogPosition {
            file,
            offset,
            gtid: None,
        },
    };
    let last_key = serde_json::to_string(&at).map_err(|e| e.to_string())?;
    let mut fresh = true;
    snapshot::read_all(conn, schema, p.full_chunk_rows, |rows, done| {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let msg = Msg::Chunk {
            unit,
            schema: schema.clone(),
            rows,
            last_key: Some(last_key.clone()),
            done,
            fresh,
        };
        fresh = false;
        tx.send(msg).is_ok()
    })
    .await
    .map_err(|e| e.to_string())?;
    use mysql_async::prelude::Queryable;
    conn.query_drop("COMMIT").await.map_err(|e| e.to_string())
}

/// What an acknowledged chunk lets the unit record.
struct Chunk {
    unit: u32,
    table: String,
    last_key: Option<String>,
    rows: u64,
    done: bool,
}

/// Rows done and estimated per table, for the progress display.
struct Progress {
    metrics: Metrics,
    bytes_seen: u64,
    tables: BTreeMap<String, (u64, u64, bool)>,
    units_left: BTreeMap<u32, String>,
    started: Instant,
    rows_at_start: u64,
    last_print: Instant,
    tty: bool,
    printed_lines: usize,
}

impl Progress {
    fn new(units: &[FullUnit], metrics: Metrics) -> Self {
        let mut tables: BTreeMap<String, (u64, u64, bool)> = BTreeMap::new();
        let mut units_left = BTreeMap::new();
        for u in units {
            let name = format!("{}.{}", u.db, u.table);
            let e = tables.entry(name.clone()).or_insert((0, 0, true));
            e.0 += u.rows;
            e.1 += u.total;
            e.2 &= u.done;
            if !u.done {
                units_left.insert(u.unit, name);
            }
        }
        let rows_at_start = tables.values().map(|t| t.0).sum();
        for (t, (done, total, _)) in &tables {
            metrics.full(t, *done, *total);
        }
        Self {
            metrics,
            bytes_seen: 0,
            tables,
            units_left,
            started: Instant::now(),
            rows_at_start,
            last_print: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            printed_lines: 0,
        }
    }

    fn record(&mut self, unit: u32, table: &str, rows: u64, done: bool) {
        if let Some(e) = self.tables.get_mut(table) {
            e.0 += rows;
            self.metrics.full(table, e.0, e.1.max(e.0));
        }
        if done {
            self.units_left.remove(&unit);
            if !self.units_left.values().any(|t| t == table) {
                if let Some(e) = self.tables.get_mut(table) {
                    e.2 = true;
                }
            }
        }
    }

    fn print(&mut self, force: bool) {
        let every = if self.tty { 2 } else { 10 };
        if !force && self.last_print.elapsed() < Duration::from_secs(every) {
            return;
        }
        self.last_print = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let done_rows: u64 = self.tables.values().map(|t| t.0).sum();
        let rate = (done_rows - self.rows_at_start) as f64 / secs;
        let mut lines = Vec::new();
        for (t, (rows, total, done)) in &self.tables {
            let total = (*total).max(*rows);
            let (pct, eta) = if *done {
                (100.0, "done".to_string())
            } else {
                let left = total.saturating_sub(*rows) as f64;
                (
                    (*rows as f64 * 100.0 / total.max(1) as f64).min(99.9),
                    if rate > 0.0 {
                        format!("ETA {:.0} s", left / rate)
                    } else {
                        "ETA -".into()
                    },
                )
            };
            lines.push(format!(
                "full sync {t}: {rows} / ~{total} rows ({pct:.1}%), {eta}"
            ));
        }
        lines.push(format!("full sync: {done_rows} rows, {rate:.0} rows/s"));
        if self.tty {
            let mut err = std::io::stderr().lock();
            if self.printed_lines > 0 {
                let _ = write!(err, "\x1b[{}A", self.printed_lines);
            }
            for l in &lines {
                let _ = writeln!(err, "\x1b[2K{l}");
            }
            self.printed_lines = lines.len();
        } else {
            // Plain lines for logs (not redrawn).
            for l in &lines {
                eprintln!("{l}");
            }
        }
    }
}

/// Runs the full stage to its end (true) or until stopped (false).
pub(crate) fn run(
    p: &Project,
    stop: &Arc<AtomicBool>,
    meta: &mut MetaStore,
    sink: &mut dyn Sink,
    start: &Position,
    ctl: Controls<'_>,
) -> Result<bool, RunError> {
    let units = meta.full_units(&p.name)?;
    let mut progress = Progress::new(&units, ctl.metrics.clone());
    let mut work = VecDeque::new();
    for u in units.iter().filter(|u| !u.done) {
        let range: KeyRange = serde_json::from_str(&u.range).map_err(source_err)?;
        let after = match &u.last_key {
            // A whole-table copy is never resumed: it starts again from empty.
            Some(k) if serde_json::from_str::<CopiedAt>(k).is_ok() => None,
            Some(k) => Some(serde_json::from_str::<Vec<KeyValue>>(k).map_err(source_err)?),
            None => None,
        };
        work.push_back(Work {
            unit: u.unit,
            table: TableId::new(&u.db, &u.table),
            range,
            after,
        });
    }
    if work.is_empty() {
        return Ok(true);
    }
    tracing::info!(project = %p.name, units = work.len(), "full sync starts");
    let readers = p.full_readers.min(work.len()).max(1);
    let queue = Arc::new(Mutex::new(work));
    let reader_stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = sync_channel::<Msg>(readers * 2);
    let mut handles = Vec::new();
    for i in 0..readers {
        let (p2, q, tx, rs) = (p.clone(), queue.clone(), tx.clone(), reader_stop.clone());
        let h = std::thread::Builder::new()
            .name(format!("sluice-full-{i}"))
            .spawn(move || {
                if let Err(e) = reader(&p2, &q, &tx, &rs) {
                    let _ = tx.send(Msg::Failed(e));
                }
            })
            .map_err(source_err)?;
        handles.push(h);
    }
    drop(tx);

    let router = Router {
        ops: vec![Op::Insert, Op::Update, Op::Delete],
        ..p.router.clone()
    };
    let mut in_flight: InFlight<Chunk> = InFlight::new(p.in_flight);
    let mut retry = Retry::new(ctl.status, "full", stop, ctl.metrics);
    let result = (|| -> Result<bool, RunError> {
        loop {
            if stop.load(Ordering::SeqCst) {
                drain(p, sink, meta, &mut in_flight, &mut progress, &mut retry)?;
                return Ok(false);
            }
            if ctl.pause.last_due() {
                drain(p, sink, meta, &mut in_flight, &mut progress, &mut retry)?;
                ctl.pause.hold(meta, &p.name, "full", stop);
            }
            let msg = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    progress.print(false);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                Msg::Failed(e) => {
                    drain(p, sink, meta, &mut in_flight, &mut progress, &mut retry)?;
                    return Err(RunError::Source(format!("full sync: {e}")));
                }
                Msg::Chunk {
                    unit,
                    schema,
                    rows,
                    last_key,
                    done,
                    fresh,
                } => {
                    let table = format!("{}.{}", schema.id.db, schema.id.table);
                    if fresh {
                        let dest = router
                            .rename
                            .get(&schema.id)
                            .cloned()
                            .unwrap_or_else(|| schema.id.clone());
                        sink.clear_table(&dest)
                            .map_err(|e| RunError::Sink(e.to_string()))?;
                    }
                    let n = rows.len() as u64;
                    let ts_ms = now_ms();
                    let mut items = Vec::with_capacity(rows.len());
                    for row in rows {
                        let routed = router
                            .route(Event::Row(RowChange {
                                op: Op::Insert,
                                table: schema.clone(),
                                before: None,
                                after: Some(row),
                                ts_ms,
                                txn: String::new(),
                                seq: 0,
                                pos: start.clone(),
                            }))
                            .map_err(|e| {
                                RunError::Source(format!("{e} (full sync); fix objects.filters"))
                            })?;
                        if let Some(event) = routed {
                            items.push(DeliveryItem {
                                event,
                                snapshot: true,
                                sequence: None,
                                txn_number: 0,
                                last_in_txn: false,
                                key_change: None,
                            });
                        }
                    }
                    while in_flight.is_full() {
                        if let Some((rows, bytes)) = complete_front(
                            p,
                            sink,
                            meta,
                            &mut in_flight,
                            &mut progress,
                            &mut retry,
                        )? {
                            ctl.throttle.after(rows, bytes, stop);
                        } else {
                            // Stopped while the destination was unavailable.
                            return Ok(false);
                        }
                    }
                    let chunk = Chunk {
                        unit,
                        table,
                        last_key,
                        rows: n,
                        done,
                    };
                    if !in_flight.send(sink, items, chunk, &mut retry)? {
                        return Ok(false);
                    }
                }
            }
            progress.print(false);
        }
        drain(p, sink, meta, &mut in_flight, &mut progress, &mut retry)?;
        Ok(!stop.load(Ordering::SeqCst) && progress.units_left.is_empty())
    })();
    reader_stop.store(true, Ordering::SeqCst);
    drop(rx);
    for h in handles {
        let _ = h.join();
    }
    progress.print(true);
    result
}

/// Waits for the oldest chunk in flight (see deliver.rs), then records it as copied. Progress
/// is recorded in send order, so a unit's stored key never passes a chunk the destination has
/// not acknowledged. None when nothing is in flight or the run stops while waiting.
fn complete_front(
    p: &Project,
    sink: &mut dyn Sink,
    meta: &mut MetaStore,
    in_flight: &mut InFlight<Chunk>,
    progress: &mut Progress,
    retry: &mut Retry<'_>,
) -> Result<Option<(u64, u64)>, RunError> {
    let Some(acked) = in_flight.complete_front(sink, retry)? else {
        return Ok(None);
    };
    let c = acked.mark;
    meta.save_unit_progress(
        &p.name,
        c.unit,
        c.last_key.as_deref(),
        c.rows,
        c.done,
        &c.table,
    )?;
    progress.record(c.unit, &c.table, c.rows, c.done);
    let rows = acked.items.len() as u64;
    let bytes = sink
        .acknowledged_bytes()
        .saturating_sub(progress.bytes_seen);
    progress.bytes_seen = sink.acknowledged_bytes();
    progress.metrics.add("writer", rows, bytes);
    Ok(Some((rows, bytes)))
}

fn drain(
    p: &Project,
    sink: &mut dyn Sink,
    meta: &mut MetaStore,
    in_flight: &mut InFlight<Chunk>,
    progress: &mut Progress,
    retry: &mut Retry<'_>,
) -> Result<(), RunError> {
    while complete_front(p, sink, meta, in_flight, progress, retry)?.is_some() {}
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
