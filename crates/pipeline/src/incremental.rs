//! The incremental stage's loop: changes from the reader's bounded channel are routed,
//! numbered and batched; batches go to the destination with several in flight; each
//! acknowledged batch moves the checkpoint to the last commit it covers.
//!
//! Invariants:
//! - A batch's checkpoint mark is the last commit read before the batch was cut: the
//!   checkpoint moves only past transactions whose every routed change was acknowledged
//!   (deliver.rs returns marks for the contiguous acknowledged prefix only).
//! - The last change of a transaction still open is held back to the next batch: only its
//!   commit says it is the last (formats mark it: Maxwell's `commit`).
//! - Memory stays bounded: the channel is bounded, and at most `in_flight` batches wait for
//!   acknowledgement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::sink::{DeliveryItem, Sink};
use sluice_core::source::SourceError;
use sluice_core::{Event, KeyChange, Position, TableId};
use sluice_meta::{Checkpoint, MetaStore};

use crate::control::{PauseCheck, Throttle};
use crate::deliver::{InFlight, Retry, Status};
use crate::error::RunError;
use crate::metrics::Metrics;
use crate::project::Project;

/// What the reader thread hands the loop.
pub(crate) enum Msg {
    Event(Event),
    /// The source's state after the event before it.
    State(Arc<String>),
    Failed(SourceError),
    Ended,
}

/// What an acknowledged batch lets the checkpoint record.
struct Mark {
    position: Position,
    sequence: u64,
    txn_number: u64,
    ts_ms: u64,
    /// Rows per table delivered since the previous mark.
    rows: Vec<(String, u64)>,
    /// The source's state as of `position` (for MySQL, the schema history).
    state: Arc<String>,
}

/// The incremental stage's state between batches.
pub(crate) struct State {
    pub(crate) meta: MetaStore,
    /// Tables full sync copied whole (no key) and the position of each copy: their changes
    /// before it are in the copy and are skipped (see full.rs).
    copied_at: HashMap<TableId, Position>,
    /// The source's latest state, as it reported it.
    state: Arc<String>,
    sequence: u64,
    txn_number: u64,
    /// The counters, position and source state as of the last commit seen (what a checkpoint
    /// may record).
    at_commit: Option<(Position, u64, u64, u64, Arc<String>)>,
    /// The position the last cut batch's mark records (a mark is cut once per position).
    marked: Option<Position>,
    in_txn: bool,
    batch: Vec<DeliveryItem>,
    /// Index in `batch` of the last item of the open transaction.
    last_of_txn: Option<usize>,
    rows: HashMap<TableId, u64>,
    pub(crate) delivered: u64,
    pub(crate) checkpoint: Option<Position>,
    metrics: Metrics,
    throttle: Throttle,
    pause: PauseCheck,
    status: Status,
    stop: Arc<AtomicBool>,
    source: Arc<dyn sluice_core::source::Source>,
    in_flight: InFlight<Option<Mark>>,
    /// The sink's acknowledged bytes as of the last acknowledged batch.
    bytes_seen: u64,
}

/// Where the loop starts: the counters of the checkpoint it resumes from.
pub(crate) struct Resume {
    /// The source's state stored with the checkpoint.
    pub(crate) state: Arc<String>,
    pub(crate) sequence: u64,
    pub(crate) txn_number: u64,
    pub(crate) checkpoint: Option<Position>,
}

/// What the loop is lent by the run.
pub(crate) struct Controls {
    pub(crate) metrics: Metrics,
    pub(crate) throttle: Throttle,
    pub(crate) pause: PauseCheck,
    pub(crate) status: Status,
    /// The run's stop flag (a throttle's wait ends when it is raised).
    pub(crate) stop: Arc<AtomicBool>,
    /// The source, told of each stored checkpoint (it may free its log up to there).
    pub(crate) source: Arc<dyn sluice_core::source::Source>,
}

impl State {
    pub(crate) fn new(
        p: &Project,
        meta: MetaStore,
        copied_at: HashMap<TableId, Position>,
        resume: Resume,
        ctl: Controls,
        sink: &dyn Sink,
    ) -> Self {
        Self {
            meta,
            copied_at,
            state: resume.state,
            sequence: resume.sequence,
            txn_number: resume.txn_number,
            at_commit: None,
            marked: resume.checkpoint.clone(),
            in_txn: false,
            batch: Vec::new(),
            last_of_txn: None,
            rows: HashMap::new(),
            delivered: 0,
            checkpoint: resume.checkpoint,
            metrics: ctl.metrics,
            throttle: ctl.throttle,
            pause: ctl.pause,
            status: ctl.status,
            stop: ctl.stop,
            source: ctl.source,
            in_flight: InFlight::new(p.in_flight),
            bytes_seen: sink.acknowledged_bytes(),
        }
    }

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

/// How long a change may wait for its batch to fill: bounds the latency a steady trickle of
/// changes sees (a full batch goes at once).
const MAX_BATCH_WAIT: Duration = Duration::from_millis(20);

/// Carries changes until stopped (false) or, with `until_caught_up`, caught up to `end`
/// (true).
pub(crate) fn write_loop(
    p: &Project,
    until_caught_up: bool,
    stop: &AtomicBool,
    rx: &Receiver<Msg>,
    sink: &mut dyn Sink,
    st: &mut State,
    end: &Position,
) -> Result<bool, RunError> {
    let (status, metrics) = (st.status.clone(), st.metrics.clone());
    let mut retry = Retry::new(&status, "incremental", stop, &metrics);
    let mut last_cut = Instant::now();
    let mut polled = 0u64;
    loop {
        if stop.load(Ordering::SeqCst) {
            return finish(p, sink, st, &mut retry).map(|()| false);
        }
        if st.pause.last_due() {
            finish(p, sink, st, &mut retry)?;
            st.pause.hold(&st.meta, &p.name, "incremental", stop);
        }
        // What is queued is taken without reading the clock (this runs per change); only an
        // empty channel is waited on.
        let (msg, waited) = match rx.try_recv() {
            Ok(m) => (Some(m), false),
            Err(TryRecvError::Disconnected) => (Some(Msg::Ended), false),
            Err(TryRecvError::Empty) => match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => (Some(m), true),
                Err(RecvTimeoutError::Timeout) => (None, true),
                Err(RecvTimeoutError::Disconnected) => (Some(Msg::Ended), true),
            },
        };
        match msg {
            None => {
                // Nothing to read: waiting for acknowledgements costs nothing now, and moves
                // the checkpoint (and the latency it shows) up to date.
                drain(p, sink, st, &mut retry)?;
            }
            Some(Msg::Failed(e)) => {
                st.metrics.error("reader");
                finish(p, sink, st, &mut retry)?;
                return Err(RunError::Source(e));
            }
            Some(Msg::Ended) => return finish(p, sink, st, &mut retry).map(|()| false),
            Some(Msg::State(state)) => st.state = state,
            Some(Msg::Event(e)) => {
                if let Err(e) = accept(p, st, e) {
                    finish(p, sink, st, &mut retry)?;
                    return Err(e);
                }
            }
        }
        // The clock is read when the channel ran dry (a trickle: latency matters), else once
        // per 64 changes (a backlog: the batch fills long before its wait is up).
        polled += 1;
        let timed = waited || polled.is_multiple_of(64);
        let due = st.batch.len() >= p.batch_rows
            || (timed && !st.batch.is_empty() && last_cut.elapsed() > MAX_BATCH_WAIT)
            || (timed
                && st.batch.is_empty()
                && st.at_commit.is_some()
                && last_cut.elapsed() > Duration::from_secs(1));
        if due {
            cut(p, sink, st, &mut retry)?;
            last_cut = Instant::now();
        }
        if until_caught_up
            && st.checkpoint.as_ref().is_some_and(|c| c >= end)
            && st.batch.is_empty()
        {
            // Caught up; what is still in flight is acknowledged before the run ends.
            drain(p, sink, st, &mut retry)?;
            return Ok(true);
        }
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
            st.at_commit = Some((pos, st.sequence, st.txn_number, ts_ms, st.state.clone()));
        }
        Event::Heartbeat { pos, ts_ms } => {
            if !st.in_txn {
                // Only forward: a heartbeat never moves the checkpoint back.
                let newer = st.at_commit.as_ref().is_none_or(|(c, ..)| pos > *c);
                if newer {
                    st.at_commit = Some((
                        pos.clone(),
                        st.sequence,
                        st.txn_number,
                        ts_ms,
                        st.state.clone(),
                    ));
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
            let standalone = !st.in_txn;
            if let Some(ev) = p
                .router
                .route(Event::Ddl(d))
                .map_err(|e| RunError::Check(e.to_string()))?
            {
                st.push_change(ev, standalone);
            }
        }
        row @ Event::Row(_) => {
            if let Event::Row(r) = &row {
                if st.copied_at.get(&r.table.id).is_some_and(|at| r.pos < *at) {
                    return Ok(());
                }
            }
            let routed = p
                .router
                .route(row)
                .map_err(|e| RunError::Check(format!("{e}; fix objects.filters")))?;
            if let Some(ev) = routed {
                if let Event::Row(r) = &ev {
                    // Counted by table id; named once per table per mark (see cut).
                    match st.rows.get_mut(&r.table.id) {
                        Some(n) => *n += 1,
                        None => {
                            st.rows.insert(r.table.id.clone(), 1);
                        }
                    }
                    // A message queue gets an update that moves its key (or its partition)
                    // as a delete of the old key and an insert of the new one (docs/FORMATS.md).
                    let splits = p.destination.splits(r).map_err(RunError::Sink)?;
                    if let (true, Some((old, new))) = (splits, r.split()) {
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

/// Cuts the batch and sends it with the mark of the last commit it covers (waiting first for
/// the oldest batch when `in_flight` are out).
fn cut(
    p: &Project,
    sink: &mut dyn Sink,
    st: &mut State,
    retry: &mut Retry<'_>,
) -> Result<(), RunError> {
    let held = match (st.in_txn, st.last_of_txn) {
        (true, Some(i)) if i + 1 == st.batch.len() => st.batch.pop(),
        _ => None,
    };
    let mark = match &st.at_commit {
        Some((pos, sequence, txn_number, ts_ms, state)) if st.marked.as_ref() != Some(pos) => {
            st.marked = Some(pos.clone());
            Some(Mark {
                position: pos.clone(),
                sequence: *sequence,
                txn_number: *txn_number,
                ts_ms: *ts_ms,
                rows: std::mem::take(&mut st.rows)
                    .into_iter()
                    .map(|(t, n)| (format!("{}.{}", t.db, t.table), n))
                    .collect(),
                state: state.clone(),
            })
        }
        _ => None,
    };
    let items = std::mem::replace(&mut st.batch, Vec::with_capacity(p.batch_rows));
    st.last_of_txn = None;
    if let Some(item) = held {
        st.batch.push(item);
        st.last_of_txn = Some(0);
    }
    if items.is_empty() && mark.is_none() {
        return Ok(());
    }
    while st.in_flight.is_full() {
        if !complete(p, sink, st, retry)? {
            // Stopped while the destination was unavailable: nothing more is sent.
            return Ok(());
        }
    }
    st.in_flight.send(sink, items, mark, retry).map(drop)
}

/// Waits for the oldest batch in flight and records what it acknowledges (counters,
/// metrics, throttle, checkpoint). False when nothing was acknowledged (nothing in flight, or
/// stopped while the destination was unavailable).
fn complete(
    p: &Project,
    sink: &mut dyn Sink,
    st: &mut State,
    retry: &mut Retry<'_>,
) -> Result<bool, RunError> {
    let Some(acked) = st.in_flight.complete_front(sink, retry)? else {
        return Ok(false);
    };
    st.delivered += acked.items.len() as u64;
    let rows = acked
        .items
        .iter()
        .filter(|i| matches!(i.event, Event::Row(_)))
        .count() as u64;
    let bytes = sink.acknowledged_bytes().saturating_sub(st.bytes_seen);
    st.bytes_seen = sink.acknowledged_bytes();
    st.metrics.add("writer", rows, bytes);
    st.throttle.after(rows, bytes, &st.stop);
    if let Some(m) = acked.mark {
        st.meta.save_checkpoint(
            &p.name,
            &Checkpoint {
                position: m.position.clone(),
                sequence: m.sequence,
                txn_number: m.txn_number,
                history: m.state.to_string(),
                ts_ms: m.ts_ms,
            },
            &m.rows,
        )?;
        st.source.checkpointed(&m.position);
        tracing::debug!(checkpoint = %m.position, "checkpoint");
        st.metrics.checkpoint(m.ts_ms);
        st.metrics.position("writer", &m.position);
        st.metrics.seen("writer", m.ts_ms);
        st.checkpoint = Some(m.position);
    }
    Ok(true)
}

/// Waits for every batch in flight.
fn drain(
    p: &Project,
    sink: &mut dyn Sink,
    st: &mut State,
    retry: &mut Retry<'_>,
) -> Result<(), RunError> {
    while complete(p, sink, st, retry)? {}
    Ok(())
}

/// Sends what is batched and waits for everything in flight (before stopping, pausing or
/// failing).
fn finish(
    p: &Project,
    sink: &mut dyn Sink,
    st: &mut State,
    retry: &mut Retry<'_>,
) -> Result<(), RunError> {
    cut(p, sink, st, retry)?;
    drain(p, sink, st, retry)
}
