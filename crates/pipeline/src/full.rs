//! The full stage: copy the selected tables' existing rows, in key-ordered chunks, with several
//! readers in parallel, resumable at chunk granularity.
//!
//! Hand-over to incremental sync: before the first row is read, the source's hand-over
//! position P0 ([`Source::handover`]) is stored as the project's checkpoint: every transaction
//! before P0 is already visible to a copy that starts afterwards (for MySQL, the position of a
//! consistent snapshot, or the end of the log under a momentary read lock; the plain end of
//! the log is not enough, as a transaction is in the binlog before the engine shows it).
//! Incremental sync then replays every change from P0. A row copied at time T >= P0 shows its
//! state at T; every change after P0 is delivered after it, and each carries the whole row
//! image, so a consumer applying messages per key in order ends at the source's state: nothing
//! is missed (every change after P0 is replayed) and nothing is lost (a change before P0 is in
//! the copied row). The price is that changes between P0 and T are seen twice (once inside the
//! copied row, once replayed); the `snapshot`/`r`/`ROW` marking of copied rows tells them
//! apart.
//!
//! A table without a key cannot be read in key ranges, and replaying a change twice into it is
//! not harmless (no key makes it idempotent). The source copies it whole in one consistent read
//! whose position S it records in the unit ([`Source::copied_at`]); incremental sync then
//! skips that table's changes before S (they are in the copy) and applies those after, each
//! once. A copy interrupted by a crash starts again: the destination table is cleared first
//! (`Sink::clear_table`) and a new S is taken.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use sluice_core::sink::{DeliveryItem, Sink};
use sluice_core::source::{Chunk, Source, SourceError, UnitWork};
use sluice_core::{Event, Op, Position, RowChange, TableId};
use sluice_meta::{FullUnit, MetaStore};
use sluice_route::Router;

use crate::control::{PauseCheck, Throttle};
use crate::deliver::{InFlight, Retry, Status};
use crate::error::RunError;
use crate::metrics::Metrics;
use crate::project::Project;

/// Metrics, throttle, pause and status of the run, lent to the full stage.
pub(crate) struct Controls<'a> {
    pub(crate) metrics: &'a Metrics,
    pub(crate) throttle: &'a mut Throttle,
    pub(crate) pause: &'a mut PauseCheck,
    pub(crate) status: &'a Status,
}

fn internal(e: impl std::fmt::Display) -> RunError {
    RunError::internal(e)
}

/// Splits the selected tables into units (the source decides: one per table, or several key
/// ranges of a large table, so readers share it).
pub(crate) fn plan(
    source: &dyn Source,
    p: &Project,
    tables: &[TableId],
) -> Result<Vec<FullUnit>, RunError> {
    let planned = source
        .plan(tables, &p.keys, p.full_chunk_rows, p.full_readers)
        .map_err(RunError::from_source)?;
    Ok(planned
        .into_iter()
        .enumerate()
        .map(|(i, u)| FullUnit {
            unit: i as u32,
            db: u.table.db,
            table: u.table.table,
            range: u.range,
            last_key: None,
            rows: 0,
            total: u.estimated_rows,
            done: false,
        })
        .collect())
}

/// The tables copied whole (no key) and the position each copy was read at: incremental sync
/// skips their changes before it.
pub(crate) fn copied_at(source: &dyn Source, units: &[FullUnit]) -> HashMap<TableId, Position> {
    units
        .iter()
        .filter(|u| u.done)
        .filter_map(|u| {
            let at = source.copied_at(u.last_key.as_deref()?)?;
            Some((TableId::new(&u.db, &u.table), at))
        })
        .collect()
}

/// What a reader hands the writer.
enum Msg {
    Chunk { unit: u32, chunk: Chunk },
    Failed(SourceError),
}

/// One reader: takes units from the queue and sends their chunks, in key order.
fn reader(
    source: &dyn Source,
    p: &Project,
    queue: &Mutex<VecDeque<UnitWork>>,
    tx: &std::sync::mpsc::SyncSender<Msg>,
    stop: &AtomicBool,
) -> Result<(), SourceError> {
    let mut r = source.snapshot_reader(p.keys.clone(), p.full_chunk_rows)?;
    loop {
        let Some(w) = queue
            .lock()
            .map_err(|e| SourceError::Definite(e.to_string()))?
            .pop_front()
        else {
            return Ok(());
        };
        let mut open = true;
        r.read(&w, stop, &mut |chunk| {
            open = tx
                .send(Msg::Chunk {
                    unit: w.unit,
                    chunk,
                })
                .is_ok();
            open
        })?;
        if !open || stop.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
}

/// What an acknowledged chunk lets the unit record.
struct Copied {
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
    source: &Arc<dyn Source>,
    stop: &Arc<AtomicBool>,
    meta: &mut MetaStore,
    sink: &mut dyn Sink,
    start: &Position,
    ctl: Controls<'_>,
) -> Result<bool, RunError> {
    let units = meta.full_units(&p.name)?;
    let progress = Progress::new(&units, ctl.metrics.clone());
    let work: VecDeque<UnitWork> = units
        .iter()
        .filter(|u| !u.done)
        .map(|u| UnitWork {
            unit: u.unit,
            table: TableId::new(&u.db, &u.table),
            range: u.range.clone(),
            after: u.last_key.clone(),
        })
        .collect();
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
        let src = source.clone();
        let h = std::thread::Builder::new()
            .name(format!("sluice-full-{i}"))
            .spawn(move || {
                if let Err(e) = reader(src.as_ref(), &p2, &q, &tx, &rs) {
                    let _ = tx.send(Msg::Failed(e));
                }
            })
            .map_err(internal)?;
        handles.push(h);
    }
    drop(tx);

    let router = Router {
        ops: vec![Op::Insert, Op::Update, Op::Delete],
        ..p.router.clone()
    };
    let mut w = Writer {
        p,
        sink,
        meta,
        in_flight: InFlight::new(p.in_flight),
        progress,
        retry: Retry::new(ctl.status, "full", stop, ctl.metrics),
        throttle: ctl.throttle,
        stop,
    };
    let result = (|| -> Result<bool, RunError> {
        loop {
            if stop.load(Ordering::SeqCst) {
                w.drain()?;
                return Ok(false);
            }
            if ctl.pause.last_due() {
                w.drain()?;
                ctl.pause.hold(w.meta, &p.name, "full", stop);
            }
            let msg = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    w.progress.print(false);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                Msg::Failed(e) => {
                    w.drain()?;
                    return Err(RunError::Source(e.context("full sync")));
                }
                Msg::Chunk {
                    unit,
                    chunk:
                        Chunk {
                            schema,
                            rows,
                            last_key,
                            done,
                            fresh,
                        },
                } => {
                    let table = format!("{}.{}", schema.id.db, schema.id.table);
                    if fresh {
                        let dest = router
                            .rename
                            .get(&schema.id)
                            .cloned()
                            .unwrap_or_else(|| schema.id.clone());
                        w.sink.clear_table(&dest).map_err(RunError::Sink)?;
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
                                RunError::Check(format!("{e} (full sync); fix objects.filters"))
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
                    let copied = Copied {
                        unit,
                        table,
                        last_key,
                        rows: n,
                        done,
                    };
                    if !w.send(items, copied)? {
                        // Stopped while the destination was unavailable.
                        return Ok(false);
                    }
                }
            }
            w.progress.print(false);
        }
        w.drain()?;
        Ok(!stop.load(Ordering::SeqCst) && w.progress.units_left.is_empty())
    })();
    reader_stop.store(true, Ordering::SeqCst);
    drop(rx);
    for h in handles {
        let _ = h.join();
    }
    w.progress.print(true);
    result
}

/// The writer side of full sync: chunks in flight to the destination, and what their
/// acknowledgements record.
struct Writer<'a, 'r> {
    p: &'a Project,
    sink: &'a mut dyn Sink,
    meta: &'a mut MetaStore,
    in_flight: InFlight<Copied>,
    progress: Progress,
    retry: Retry<'r>,
    throttle: &'a mut Throttle,
    stop: &'a AtomicBool,
}

impl Writer<'_, '_> {
    /// Sends a chunk, waiting first for the oldest when `in_flight` are out. False when the
    /// run stopped while the destination was unavailable.
    fn send(&mut self, items: Vec<DeliveryItem>, copied: Copied) -> Result<bool, RunError> {
        while self.in_flight.is_full() {
            if !self.complete_front()? {
                return Ok(false);
            }
        }
        self.in_flight
            .send(self.sink, items, copied, &mut self.retry)
    }

    /// Waits for the oldest chunk in flight (see deliver.rs), then records it as copied and
    /// throttles. Progress is recorded in send order, so a unit's stored key never passes a
    /// chunk the destination has not acknowledged. False when nothing is in flight or the run
    /// stops while waiting.
    fn complete_front(&mut self) -> Result<bool, RunError> {
        let Some(acked) = self.in_flight.complete_front(self.sink, &mut self.retry)? else {
            return Ok(false);
        };
        let c = acked.mark;
        self.meta.save_unit_progress(
            &self.p.name,
            c.unit,
            c.last_key.as_deref(),
            c.rows,
            c.done,
            &c.table,
        )?;
        self.progress.record(c.unit, &c.table, c.rows, c.done);
        let rows = acked.items.len() as u64;
        let acked_bytes = self.sink.acknowledged_bytes();
        let bytes = acked_bytes.saturating_sub(self.progress.bytes_seen);
        self.progress.bytes_seen = acked_bytes;
        self.progress.metrics.add("writer", rows, bytes);
        self.throttle.after(rows, bytes, self.stop);
        Ok(true)
    }

    /// Waits for every chunk in flight.
    fn drain(&mut self) -> Result<(), RunError> {
        while self.complete_front()? {}
        Ok(())
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
