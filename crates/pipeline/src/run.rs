//! The incremental stage's loop: reader thread -> bounded channel -> route -> batches -> sink ->
//! checkpoint.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use sluice_core::sink::{DeliveryItem, Sink, SinkError};
use sluice_core::{BinlogPosition, Event, KeyChange, Position};
use sluice_meta::{Checkpoint, MetaStore};
use sluice_source_mysql::decode::SchemaHistory;
use sluice_source_mysql::live::{self, LiveConfig, StartAt};

use crate::checks::{
    check_column_subsets, check_filters, keys_of_keyless_tables, selected_tables, table_specs,
};
use crate::control::{PauseCheck, Throttle};
use crate::full;
use crate::metrics::{Health, Metrics};
use crate::project::Project;

/// Why a run ended badly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The source failed (unreachable, purged position, decode error ...).
    #[error("source: {0}")]
    Source(String),
    /// The destination refused a change or is misconfigured.
    #[error("destination: {0}")]
    Sink(String),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] sluice_meta::MetaError),
    /// Another run of the project holds its lock.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop once the checkpoint reached the source's end as of the start of the run.
    pub until_caught_up: bool,
    /// Set to stop gracefully (flush, checkpoint, return).
    pub stop: Arc<AtomicBool>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Changes delivered.
    pub delivered: u64,
    /// Rows copied by full sync (over all runs of the project, as the store records them).
    pub copied: u64,
    /// Final checkpoint position.
    pub checkpoint: Option<Position>,
    /// The project has nothing more to do: caught up as asked, or a project without
    /// incremental sync whose full sync finished (state Completed rather than Stopped).
    pub completed: bool,
}

enum Msg {
    Event(Event),
    Failed(String),
    Ended,
}

fn source_err(e: impl std::fmt::Display) -> RunError {
    RunError::Source(e.to_string())
}

struct State {
    meta: MetaStore,
    /// Tables full sync copied whole (no key) and the position of each copy: their changes
    /// before it are in the copy and are skipped (see full.rs).
    copied_at: std::collections::HashMap<sluice_core::TableId, BinlogPosition>,
    history: SchemaHistory,
    sequence: u64,
    txn_number: u64,
    /// The counters and position as of the last commit seen (what a checkpoint may record).
    at_commit: Option<(BinlogPosition, u64, u64, u64)>,
    in_txn: bool,
    batch: Vec<DeliveryItem>,
    /// Index in `batch` of the last item of the open transaction.
    last_of_txn: Option<usize>,
    rows: BTreeMap<String, u64>,
    delivered: u64,
    checkpoint: Option<Position>,
    metrics: Metrics,
    throttle: Throttle,
    pause: PauseCheck,
    /// The sink's acknowledged bytes as of the last batch.
    bytes_seen: u64,
}

/// Sets its flag when dropped (stops the metrics server when the run ends, however it ends).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs the project until stopped, caught up (with `until_caught_up`) or failed.
pub fn run(p: &Project, opts: &RunOptions) -> Result<RunSummary, RunError> {
    // Before anything is read or written: a second run of one project is refused.
    let _lock = crate::lock::RunLock::acquire(&p.data_dir, &p.name)?;
    if !p.shards.is_empty() {
        return crate::shards::run_sharded(p, opts);
    }
    let meta = MetaStore::open(&p.data_dir)?;
    let cp = meta.checkpoint(&p.name)?;
    let stage = if p.full && meta.full_stage(&p.name)? != Some(true) {
        "full"
    } else {
        "incremental"
    };
    meta.set_state(&p.name, stage, "Running", "")?;
    let result = run_inner(p, opts, meta, cp);
    // Record how it ended (a second handle: the first moved into the run).
    if let Ok(m) = MetaStore::open(&p.data_dir) {
        let (state, msg) = match &result {
            Ok(s) if s.completed => ("Completed", String::new()),
            Ok(_) => ("Stopped", String::new()),
            Err(e) => ("Failed", e.to_string()),
        };
        let stage = m
            .status(&p.name)
            .map(|s| s.stage)
            .unwrap_or_else(|_| stage.to_string());
        let _ = m.set_state(&p.name, &stage, state, &msg);
    }
    result
}

fn run_inner(
    p: &Project,
    opts: &RunOptions,
    mut meta: MetaStore,
    mut cp: Option<Checkpoint>,
) -> Result<RunSummary, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(source_err)?;
    let src_opts = mysql_async::Opts::from_url(p.source_url.expose()).map_err(source_err)?;
    let (tables, end, server_id, found_keys) = rt.block_on(async {
        let mut conn = mysql_async::Conn::new(src_opts.clone())
            .await
            .map_err(|e| {
                RunError::Source(format!(
                    "cannot connect to {}: {e}; check source.url and that the server runs",
                    p.source_url
                ))
            })?;
        let tables = selected_tables(&mut conn, p).await?;
        check_column_subsets(&mut conn, p).await?;
        check_filters(&mut conn, p, &tables).await?;
        let found_keys = keys_of_keyless_tables(&mut conn, p, &tables).await?;
        let (file, offset) = live::current_position(&mut conn)
            .await
            .map_err(source_err)?;
        let server_id: Option<u32> = conn
            .query_first("SELECT @@server_id")
            .await
            .map_err(source_err)?;
        let _ = conn.disconnect().await;
        Ok::<_, RunError>((
            tables,
            BinlogPosition {
                file,
                offset,
                gtid: None,
            },
            server_id.unwrap_or(0),
            found_keys,
        ))
    })?;
    // Tables without a primary key are keyed by the unique key found, in full sync and in
    // every row delivered.
    let keyed;
    let p = if found_keys.is_empty() {
        p
    } else {
        let mut owned = p.clone();
        owned.keys.extend(found_keys.clone());
        owned.router.keys.extend(found_keys);
        keyed = owned;
        &keyed
    };
    let mut source_info = p.source_info.clone();
    source_info.server_id = server_id;
    let mut sink = p
        .destination
        .sink(source_info)
        .map_err(|e| RunError::Sink(e.to_string()))?;
    // An outage in progress shows in `sluice status` (a second connection to the store).
    if let Ok(m) = MetaStore::open(&p.data_dir) {
        let (m, name) = (std::sync::Mutex::new(m), p.name.clone());
        sink.set_notifier(Box::new(move |note| {
            if let Ok(m) = m.lock() {
                let note = note.map(|n| format!("retrying: {n}")).unwrap_or_default();
                let _ = m.set_state(&name, "incremental", "Running", &note);
            }
        }));
    }
    let metrics = Metrics::new(&p.name).map_err(|e| RunError::Source(format!("metrics: {e}")))?;
    let _metrics_server = match &p.metrics_listen {
        Some(addr) => {
            let stop = Arc::new(AtomicBool::new(false));
            let (dir, name, parent) = (p.data_dir.clone(), p.name.clone(), p.parent.clone());
            let bound = metrics
                .serve(addr, stop.clone(), move || {
                    project_health(&dir, &name, parent.as_deref())
                })
                .map_err(RunError::Source)?;
            tracing::info!(project = %p.name, "metrics at http://{bound}/metrics");
            Some(StopOnDrop(stop))
        }
        None => None,
    };
    let mut throttle = Throttle::new(p.throttle_rows, p.throttle_bytes);
    let mut pause = PauseCheck::new(p.parent.clone());
    if cp.is_none() {
        sink.start_afresh()
            .map_err(|e| RunError::Sink(e.to_string()))?;
    }
    // Schema sync runs once, before the first checkpoint: afterwards the destination's schema
    // follows the replayed DDL, and the source's current schema may be ahead of it.
    if p.schema_stage && cp.is_none() {
        let mut specs = rt.block_on(table_specs(p, &src_opts, &tables))?;
        if p.destination.needs().past_schema && !p.full && p.start != StartAt::Now {
            rt.block_on(crate::past::as_at_start(
                p, &src_opts, &tables, &end, &mut specs,
            ))?;
        }
        sink.prepare(&specs)
            .map_err(|e| RunError::Sink(e.to_string()))?;
    }
    if p.full && meta.full_stage(&p.name)? != Some(true) {
        if meta.full_stage(&p.name)?.is_none() {
            // The replay position is taken before any row is read (see full.rs for why this
            // hand-over loses nothing). An existing checkpoint is older still: also safe.
            let (units, p0) = rt.block_on(async {
                let mut conn = mysql_async::Conn::new(src_opts.clone())
                    .await
                    .map_err(source_err)?;
                let (file, offset) = live::snapshot_position(&mut conn).await.map_err(|e| {
                    RunError::Source(format!("take the full sync's hand-over position: {e}"))
                })?;
                let units = full::plan(&mut conn, p, &tables).await?;
                let _ = conn.disconnect().await;
                Ok::<_, RunError>((
                    units,
                    BinlogPosition {
                        file,
                        offset,
                        gtid: None,
                    },
                ))
            })?;
            let c = match cp.clone() {
                Some(c) => c,
                None => Checkpoint {
                    position: Position::Binlog(p0),
                    sequence: 0,
                    txn_number: 0,
                    history: serde_json::to_string(&SchemaHistory::new()).map_err(source_err)?,
                    ts_ms: 0,
                },
            };
            meta.begin_full(&p.name, &c, &units)?;
            tracing::info!(project = %p.name, units = units.len(), "full sync begins; incremental sync will replay from {}", c.position);
            cp = Some(c);
        }
        meta.set_state(&p.name, "full", "Running", "")?;
        let start = cp
            .as_ref()
            .map(|c| c.position.clone())
            .ok_or_else(|| RunError::Source("full sync has no start position".into()))?;
        let controls = full::Controls {
            metrics: &metrics,
            throttle: &mut throttle,
            pause: &mut pause,
        };
        if !full::run(p, &opts.stop, &mut meta, sink.as_mut(), &start, controls)? {
            return Ok(RunSummary {
                copied: copied_rows(&meta, &p.name),
                checkpoint: Some(start),
                ..RunSummary::default()
            });
        }
        meta.finish_full(&p.name)?;
        tracing::info!(project = %p.name, "full sync finished; incremental sync replays from {start}");
    }
    if !p.incremental {
        // Full sync alone: its end is the project's end.
        let copied = copied_rows(&meta, &p.name);
        tracing::info!(project = %p.name, copied, "full sync finished; incremental sync is off: the project is complete");
        return Ok(RunSummary {
            copied,
            checkpoint: cp.map(|c| c.position),
            completed: true,
            ..RunSummary::default()
        });
    }
    meta.set_state(&p.name, "incremental", "Running", "")?;

    let (start, history, sequence, txn_number) = match &cp {
        Some(c) => {
            let Position::Binlog(b) = &c.position;
            let history: SchemaHistory = serde_json::from_str(&c.history).map_err(|e| {
                RunError::Source(format!("the stored schema history is unreadable: {e}"))
            })?;
            (
                StartAt::FileOffset {
                    file: b.file.clone(),
                    offset: b.offset,
                },
                history,
                c.sequence,
                c.txn_number,
            )
        }
        None => (p.start.clone(), SchemaHistory::new(), 0, 0),
    };
    tracing::info!(project = %p.name, ?start, sequence, "incremental sync starts");
    let cfg = LiveConfig {
        opts: src_opts,
        server_id: p.server_id,
        start,
        heartbeat: Duration::from_secs(u64::from(p.heartbeat_secs)),
        reconnect_for: Duration::from_secs(300),
        precheck_tables: Vec::new(),
    };
    // Bounded: the reader waits when the writer is behind (backpressure).
    let (tx, rx) = sync_channel::<Msg>(p.batch_rows.max(1000) * 2);
    let stop = opts.stop.clone();
    let reader_stop = stop.clone();
    let mut reader_history = history.clone();
    let data_dir = p.data_dir.clone();
    let reader_metrics = metrics.clone();
    let reader = std::thread::Builder::new()
        .name("sluice-reader".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Msg::Failed(e.to_string()));
                    return;
                }
            };
            // Binlog bytes read, from the distance between successive positions (after a
            // rotation: the new file's offset; the old file's tail is its rotate event).
            let mut last: Option<(String, u64)> = None;
            let r = rt.block_on(live::read(&cfg, &mut reader_history, |e| {
                match &e {
                    Event::Row(_) => reader_metrics.add("reader", 1, 0),
                    Event::Commit { pos, .. } | Event::Heartbeat { pos, .. } => {
                        let Position::Binlog(b) = pos;
                        let bytes = match &last {
                            Some((file, offset)) if *file == b.file => {
                                b.offset.saturating_sub(*offset)
                            }
                            Some(_) => b.offset,
                            None => 0,
                        };
                        reader_metrics.add("reader", 0, bytes);
                        last = Some((b.file.clone(), b.offset));
                        reader_metrics.position("reader", pos)
                    }
                    _ => {}
                }
                if reader_stop.load(Ordering::SeqCst) || tx.send(Msg::Event(e)).is_err() {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(Ok(()))
            }));
            let _ = tx.send(match r {
                Ok(()) => Msg::Ended,
                Err(e @ live::LiveError::Purged { .. }) => Msg::Failed(format!(
                    "{e}. This project's checkpoint lies in the purged file: to start over, \
                     remove its checkpoint (delete {} or give the project a new name) and \
                     choose stages.start; keep binlogs longer (expire_logs_days / \
                     binlog_expire_logs_seconds) than a project may stay stopped",
                    data_dir.join("meta.db").display()
                )),
                Err(e) => Msg::Failed(e.to_string()),
            });
        })
        .map_err(source_err)?;

    let copied_at = crate::full::copied_at(&meta.full_units(&p.name)?);
    let mut st = State {
        meta,
        copied_at,
        history,
        sequence,
        txn_number,
        at_commit: None,
        in_txn: false,
        batch: Vec::new(),
        last_of_txn: None,
        rows: BTreeMap::new(),
        delivered: 0,
        checkpoint: cp.map(|c| c.position),
        metrics: metrics.clone(),
        throttle,
        pause,
        bytes_seen: sink.acknowledged_bytes(),
    };
    let result = write_loop(p, opts, &rx, sink.as_mut(), &mut st, &end);
    stop.store(true, Ordering::SeqCst);
    drop(rx);
    // The reader notices the stop at its next event; on an idle source that is the next
    // heartbeat. It holds nothing to flush, so it is not waited for beyond a moment.
    let deadline = Instant::now() + Duration::from_millis(200);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if reader.is_finished() {
        let _ = reader.join();
    }
    let caught_up = result?;
    Ok(RunSummary {
        delivered: st.delivered,
        copied: copied_rows(&st.meta, &p.name),
        checkpoint: st.checkpoint,
        completed: caught_up,
    })
}

/// `/health` of a run: from the state of the project (of every part, for a part of a sharded
/// project) in the metadata store.
fn project_health(dir: &std::path::Path, name: &str, parent: Option<&str>) -> Health {
    let read = || -> Result<Health, sluice_meta::MetaError> {
        let meta = MetaStore::open(dir)?;
        let mut names = match parent {
            Some(pp) => meta.parts(pp)?,
            None => Vec::new(),
        };
        if names.is_empty() {
            names.push(name.to_string());
        }
        let states = names
            .into_iter()
            .map(|n| meta.status(&n).map(|s| (n, s.state, s.message)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Health::of(
            states
                .iter()
                .map(|(n, s, m)| (n.as_str(), s.as_str(), m.as_str())),
        ))
    };
    read().unwrap_or_else(|e| Health {
        ok: false,
        text: format!("metadata store: {e}"),
    })
}

/// Rows full sync copied for `project` (0 without a full stage).
fn copied_rows(meta: &MetaStore, project: &str) -> u64 {
    meta.full_units(project)
        .map(|units| units.iter().map(|u| u.rows).sum())
        .unwrap_or(0)
}

/// How long a change may wait for its batch to fill: bounds the latency a steady trickle of
/// changes sees (a full batch goes at once).
const MAX_BATCH_WAIT: Duration = Duration::from_millis(20);

/// Carries changes until stopped (false) or, with `until_caught_up`, caught up (true).
fn write_loop(
    p: &Project,
    opts: &RunOptions,
    rx: &Receiver<Msg>,
    sink: &mut dyn Sink,
    st: &mut State,
    end: &BinlogPosition,
) -> Result<bool, RunError> {
    let mut last_flush = Instant::now();
    loop {
        if opts.stop.load(Ordering::SeqCst) {
            return flush(p, sink, st, &opts.stop).map(|()| false);
        }
        if st.pause.last_due() {
            flush(p, sink, st, &opts.stop)?;
            st.pause.hold(&st.meta, &p.name, "incremental", &opts.stop);
        }
        let msg = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Msg::Ended),
        };
        match msg {
            None => {}
            Some(Msg::Failed(e)) => {
                st.metrics.error("reader");
                flush(p, sink, st, &opts.stop)?;
                return Err(RunError::Source(e));
            }
            Some(Msg::Ended) => return flush(p, sink, st, &opts.stop).map(|()| false),
            Some(Msg::Event(e)) => {
                if let Err(e) = accept(p, st, e) {
                    flush(p, sink, st, &opts.stop)?;
                    return Err(e);
                }
            }
        }
        let due = st.batch.len() >= p.batch_rows
            || (!st.batch.is_empty() && last_flush.elapsed() > MAX_BATCH_WAIT)
            || (st.batch.is_empty()
                && st.at_commit.is_some()
                && last_flush.elapsed() > Duration::from_secs(1));
        if due {
            flush(p, sink, st, &opts.stop)?;
            last_flush = Instant::now();
        }
        if opts.until_caught_up {
            if let Some(Position::Binlog(b)) = &st.checkpoint {
                if b >= end && st.batch.is_empty() {
                    return Ok(true);
                }
            }
        }
    }
}

impl State {
    /// Batches a routed row or DDL under the next source sequence.
    fn push_change(&mut self, event: Event, last_in_txn: bool) {
        self.push_half(event, last_in_txn, None);
    }

    /// Batches a change, or one half of a split key change, under the next source sequence.
    fn push_half(&mut self, event: Event, last_in_txn: bool, key_change: Option<KeyChange>) {
        self.sequence += 1;
        self.batch.push(DeliveryItem {
            event,
            snapshot: false,
            sequence: Some(self.sequence),
            txn_number: self.txn_number,
            last_in_txn,
            key_change,
        });
        self.last_of_txn = Some(self.batch.len() - 1);
    }
}

fn accept(p: &Project, st: &mut State, e: Event) -> Result<(), RunError> {
    match e {
        Event::Begin { .. } => {
            st.in_txn = true;
            st.txn_number += 1;
            st.last_of_txn = None;
        }
        Event::Commit { pos, ts_ms, .. } => {
            if let Some(i) = st.last_of_txn.take() {
                if let Some(item) = st.batch.get_mut(i) {
                    item.last_in_txn = true;
                }
            }
            st.in_txn = false;
            let Position::Binlog(b) = pos;
            st.at_commit = Some((b, st.sequence, st.txn_number, ts_ms));
        }
        Event::Heartbeat { pos, ts_ms } => {
            if !st.in_txn {
                let Position::Binlog(b) = &pos;
                // Only forward: a heartbeat never moves the checkpoint back.
                let newer = st.at_commit.as_ref().is_none_or(|(c, ..)| b > c);
                if newer {
                    st.at_commit = Some((b.clone(), st.sequence, st.txn_number, ts_ms));
                }
                if p.destination.needs().heartbeats {
                    st.batch.push(DeliveryItem {
                        event: Event::Heartbeat { pos, ts_ms },
                        snapshot: false,
                        sequence: None,
                        txn_number: st.txn_number,
                        last_in_txn: false,
                        key_change: None,
                    });
                }
            }
        }
        Event::Ddl(d) => {
            let Position::Binlog(b) = &d.pos;
            // Same DDL the reader applied: the stored history matches the checkpoint exactly.
            let _ = st.history.apply_ddl(b, &d.db, &d.sql);
            let standalone = !st.in_txn;
            if let Some(ev) = p.router.route(Event::Ddl(d)).map_err(RunError::Source)? {
                st.push_change(ev, standalone);
            }
        }
        row @ Event::Row(_) => {
            if let Event::Row(r) = &row {
                if let Some(at) = st.copied_at.get(&r.table.id) {
                    let Position::Binlog(b) = &r.pos;
                    if (b.file.as_str(), b.offset) < (at.file.as_str(), at.offset) {
                        return Ok(());
                    }
                }
            }
            let at = match &row {
                Event::Row(r) => format!("{} at {}", r.table.id, r.pos),
                _ => String::new(),
            };
            let routed = p
                .router
                .route(row)
                .map_err(|e| RunError::Source(format!("{e} ({at}); fix objects.filters")))?;
            if let Some(ev) = routed {
                if let Event::Row(r) = &ev {
                    *st.rows
                        .entry(format!("{}.{}", r.table.id.db, r.table.id.table))
                        .or_default() += 1;
                    // A message queue gets an update that moves its key (or its partition)
                    // as a delete of the old key and an insert of the new one (docs/FORMATS.md).
                    let moves = p
                        .destination
                        .splits(r)
                        .map_err(|e| RunError::Sink(e.to_string()))?;
                    if let (true, Some((old, new))) = (moves, r.split()) {
                        st.push_half(Event::Row(old), false, Some(KeyChange::Old));
                        st.push_half(Event::Row(new), false, Some(KeyChange::New));
                        return Ok(());
                    }
                }
                st.push_change(ev, false);
            }
        }
    }
    Ok(())
}

/// Delivers the batch (retrying while the destination is unavailable), then checkpoints the
/// last commit it covers.
fn flush(
    p: &Project,
    sink: &mut dyn Sink,
    st: &mut State,
    stop: &AtomicBool,
) -> Result<(), RunError> {
    // The last change of a transaction still open stays for the next batch: only when its
    // commit is read is it known to be the last (formats mark it: Maxwell's `commit`).
    let held = match (st.in_txn, st.last_of_txn) {
        (true, Some(i)) if i + 1 == st.batch.len() => st.batch.pop(),
        _ => None,
    };
    if !st.batch.is_empty() {
        let mut backoff = Duration::from_millis(200);
        let mut retried = false;
        loop {
            match sink.deliver(&st.batch) {
                Ok(()) => {
                    if retried {
                        // The outage is over: status stops saying so.
                        let _ = st.meta.set_state(&p.name, "incremental", "Running", "");
                    }
                    break;
                }
                Err(SinkError::Unavailable(e)) => {
                    st.metrics.error("writer");
                    tracing::warn!("destination unavailable, retrying in {backoff:?}: {e}");
                    let _ = st.meta.set_state(
                        &p.name,
                        "incremental",
                        "Running",
                        &format!("retrying: {e}"),
                    );
                    if stop.load(Ordering::SeqCst) {
                        // Stopping: nothing of this batch is checkpointed; it is sent again
                        // on the next run.
                        return Ok(());
                    }
                    retried = true;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(RunError::Sink(e.to_string())),
            }
        }
        st.delivered += st.batch.len() as u64;
        let rows = st
            .batch
            .iter()
            .filter(|i| matches!(i.event, Event::Row(_)))
            .count() as u64;
        let bytes = sink.acknowledged_bytes().saturating_sub(st.bytes_seen);
        st.bytes_seen = sink.acknowledged_bytes();
        st.metrics.add("writer", rows, bytes);
        st.throttle.after(rows, bytes, stop);
        // Items of a transaction still open stay delivered but uncheckpointed.
        st.batch.clear();
        st.last_of_txn = None;
    }
    if let Some(item) = held {
        st.batch.push(item);
        st.last_of_txn = Some(0);
    }
    if let Some((pos, sequence, txn_number, ts_ms)) = st.at_commit.clone() {
        let position = Position::Binlog(pos);
        if st.checkpoint.as_ref() != Some(&position) {
            let history = serde_json::to_string(&st.history).map_err(source_err)?;
            let rows: Vec<(String, u64)> = std::mem::take(&mut st.rows).into_iter().collect();
            st.meta.save_checkpoint(
                &p.name,
                &Checkpoint {
                    position: position.clone(),
                    sequence,
                    txn_number,
                    history,
                    ts_ms,
                },
                &rows,
            )?;
            tracing::debug!(checkpoint = %position, "checkpoint");
            st.metrics.checkpoint(ts_ms);
            st.metrics.position("writer", &position);
            st.checkpoint = Some(position);
        }
    }
    Ok(())
}
