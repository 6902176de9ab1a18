//! One run of a project: the source's prechecks, the destination, then the stages in order
//! (schema, full, incremental), recording how the run ended.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::source::{Source, SourceError, Streamed};
use sluice_core::{Event, Position};
use sluice_meta::{Checkpoint, MetaStore};

use crate::checks::{check_column_subsets, check_filters, keys_of_keyless_tables, selected_tables};
use crate::control::{PauseCheck, Throttle};
use crate::deliver::Status;
use crate::error::RunError;
use crate::full;
use crate::incremental::{write_loop, Controls, Msg, Resume, State};
use crate::metrics::{Health, Metrics};
use crate::project::Project;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop once the checkpoint reached the source's end as of the start of the run.
    pub until_caught_up: bool,
    /// Set to stop gracefully (flush, checkpoint, return).
    pub stop: Arc<AtomicBool>,
    /// Where each run (each part of a sharded project) registers its metrics, for a service
    /// that shows every project's figures.
    pub board: Option<crate::metrics::MetricsBoard>,
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

fn internal(e: impl std::fmt::Display) -> RunError {
    RunError::internal(e)
}

/// Sets its flag when dropped (stops the metrics server when the run ends, however it ends).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs the project until stopped, caught up (with `until_caught_up`) or failed: its parts
/// (one, or one per instance of a sharded source; see plan.rs), each through its stages.
pub fn run(p: &Project, opts: &RunOptions) -> Result<RunSummary, RunError> {
    // Before anything is read or written: a second run of one project is refused.
    let _lock = crate::lock::RunLock::acquire(&p.data_dir, &p.name)?;
    let parts = crate::plan::parts(p);
    match parts.as_slice() {
        [one] => run_part(one, opts),
        _ => run_parts(p, &parts, opts),
    }
}

/// Runs every part of a sharded project at once; the first failure stops the others.
fn run_parts(p: &Project, parts: &[Project], opts: &RunOptions) -> Result<RunSummary, RunError> {
    if !p.destination.needs().sharded_sources {
        return Err(RunError::Check(
            "a sharded source is synchronized into a database destination (type oceanbase, mariadb or mysql) or into DataHub (type datahub)".into(),
        ));
    }
    // What the parts share at the destination is made once, before they start, so that their
    // first runs never race to create it.
    p.destination.prepare_shared().map_err(RunError::Sink)?;
    // Create the shared metadata store (WAL, tables) before the parts open it at once.
    // and record the parts, whose checkpoints are then one vector row.
    let registered: Vec<(String, String)> = p
        .shards
        .iter()
        .zip(parts)
        .map(|(s, sub)| (s.name.clone(), sub.name.clone()))
        .collect();
    sluice_meta::MetaStore::open(&p.data_dir)?.register_parts(&p.name, &registered)?;
    // Each part has its own stop flag (a run raises its own flag when it ends, to stop its
    // reader); the project's flag, or a failing part, raises all of them.
    let flags: Vec<Arc<AtomicBool>> = parts
        .iter()
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let done = AtomicBool::new(false);
    let results: Vec<Result<RunSummary, RunError>> = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if opts.stop.load(Ordering::SeqCst) {
                    for f in &flags {
                        f.store(true, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let handles: Vec<_> = parts
            .iter()
            .zip(&flags)
            .map(|(sub, flag)| {
                let flags = &flags;
                scope.spawn(move || {
                    let own = RunOptions {
                        until_caught_up: opts.until_caught_up,
                        stop: flag.clone(),
                        board: opts.board.clone(),
                    };
                    let r = run_part(sub, &own);
                    if r.is_err() {
                        // One instance failed: stop the others gracefully.
                        for f in flags {
                            f.store(true, Ordering::SeqCst);
                        }
                    }
                    r
                })
            })
            .collect();
        let results = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(RunError::internal("a shard reader panicked")))
            })
            .collect();
        done.store(true, Ordering::SeqCst);
        results
    });
    let mut summary = RunSummary {
        completed: true,
        ..RunSummary::default()
    };
    for (r, s) in results.into_iter().zip(&p.shards) {
        let r = r.map_err(|e| e.in_instance(&s.name))?;
        summary.delivered += r.delivered;
        summary.copied += r.copied;
        summary.completed &= r.completed;
        summary.checkpoint = r.checkpoint;
    }
    Ok(summary)
}

/// Runs one part through its stages and records how it ended.
///
/// A transient failure (a source or destination that cannot be reached, beyond what the stages
/// wait out themselves) of a part that has a checkpoint is retried: the part runs again from its
/// checkpoint after a growing backoff, its status saying "retrying: ...", until it works or the
/// run is stopped. A part without a checkpoint has never reached its servers: a failure there is
/// most likely a wrong address, and ends the run at once with the message.
fn run_part(p: &Project, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let mut backoff = FIRST_RESTART_BACKOFF;
    let result = loop {
        let meta = MetaStore::open(&p.data_dir)?;
        let cp = meta.checkpoint(&p.name)?;
        let stage = if p.full && meta.full_stage(&p.name)? != Some(true) {
            "full"
        } else {
            "incremental"
        };
        meta.set_state(&p.name, stage, "Running", "")?;
        let result = run_inner(p, opts, meta, cp);
        match result {
            Err(e) if e.is_transient() && !opts.stop.load(Ordering::SeqCst) => {
                let meta = MetaStore::open(&p.data_dir)?;
                if meta.checkpoint(&p.name)?.is_none() {
                    break Err(e);
                }
                let stage = meta.status(&p.name).map(|s| s.stage)?;
                meta.set_state(&p.name, &stage, "Running", &format!("retrying: {e}"))?;
                tracing::warn!(project = %p.name, "{e}; running again from the checkpoint in {backoff:?}");
                let until = Instant::now() + backoff;
                while Instant::now() < until && !opts.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
                if opts.stop.load(Ordering::SeqCst) {
                    break Ok(RunSummary::default());
                }
            }
            r => break r,
        }
    };
    // Record how it ended (a second handle: the first moved into the run).
    if let Ok(m) = MetaStore::open(&p.data_dir) {
        let (state, msg) = match &result {
            Ok(s) if s.completed => ("Completed", String::new()),
            Ok(_) => ("Stopped", String::new()),
            Err(e) => ("Failed", e.to_string()),
        };
        if let Ok(st) = m.status(&p.name) {
            let _ = m.set_state(&p.name, &st.stage, state, &msg);
        }
    }
    result
}

/// The wait before a part runs again after a transient failure; it doubles up to
/// [`MAX_RESTART_BACKOFF`].
const FIRST_RESTART_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

fn run_inner(
    p: &Project,
    opts: &RunOptions,
    mut meta: MetaStore,
    mut cp: Option<Checkpoint>,
) -> Result<RunSummary, RunError> {
    let source: Arc<dyn Source> = Arc::from(p.source.open().map_err(RunError::from_source)?);
    // Prechecks, read from the source's catalog before anything is written.
    let (tables, end, server_id, found_keys) = {
        let mut cat = source.catalog().map_err(RunError::from_source)?;
        let cat = cat.as_mut();
        let tables = selected_tables(cat, p)?;
        check_column_subsets(cat, p)?;
        check_filters(cat, p, &tables)?;
        let found_keys = keys_of_keyless_tables(cat, p, &tables)?;
        let end = cat.end().map_err(RunError::from_source)?;
        let server_id = cat.server_id().map_err(RunError::from_source)?;
        (tables, end, server_id, found_keys)
    };
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
    // What the source needs on its side to stream the selection (a PostgreSQL slot and
    // publication), before the schema step and the hand-over read anything.
    source.prepare(&tables).map_err(RunError::from_source)?;
    let mut source_info = p.source_info.clone();
    source_info.server_id = server_id;
    let mut sink = p.destination.sink(source_info).map_err(RunError::Sink)?;
    // The status note of the stages' retries and of a destination's own outage reports
    // (a connection of its own to the store).
    let status = Status::open(&p.data_dir, &p.name)?;
    let notes = status.clone();
    sink.set_notifier(Box::new(move |note| {
        let note = note.map(|n| format!("retrying: {n}")).unwrap_or_default();
        notes.running("incremental", &note);
    }));
    let metrics = Metrics::new(&p.name).map_err(|e| RunError::internal(format!("metrics: {e}")))?;
    if let Some(board) = &opts.board {
        metrics.set_up(true);
        board.register(&metrics);
    }
    struct Down(Metrics);
    impl Drop for Down {
        fn drop(&mut self) {
            self.0.set_up(false);
        }
    }
    let _down = Down(metrics.clone());
    let _metrics_server = match &p.metrics_listen {
        Some(addr) => {
            let stop = Arc::new(AtomicBool::new(false));
            let (dir, name, parent) = (p.data_dir.clone(), p.name.clone(), p.parent.clone());
            let bound = metrics
                .serve(addr, stop.clone(), move || {
                    project_health(&dir, &name, parent.as_deref())
                })
                .map_err(|e| RunError::Check(format!("options.metrics_listen: {e}")))?;
            tracing::info!(project = %p.name, "metrics at http://{bound}/metrics");
            Some(StopOnDrop(stop))
        }
        None => None,
    };
    let mut throttle = Throttle::new(p.throttle_rows, p.throttle_bytes);
    let mut pause = PauseCheck::new(p.parent.clone());
    if cp.is_none() {
        sink.start_afresh().map_err(RunError::Sink)?;
    }
    // Schema sync runs once, before the first checkpoint: afterwards the destination's schema
    // follows the replayed DDL, and the source's current schema may be ahead of it.
    if p.schema_stage && cp.is_none() {
        crate::schema::sync(p, source.as_ref(), sink.as_mut(), &tables, &end)?;
    }
    if p.full && meta.full_stage(&p.name)? != Some(true) {
        if meta.full_stage(&p.name)?.is_none() {
            // The replay position is taken before any row is read (see full.rs for why this
            // hand-over loses nothing). An existing checkpoint is older still: also safe.
            let p0 = source.handover().map_err(RunError::from_source)?;
            let units = full::plan(source.as_ref(), p, &tables)?;
            let c = match cp.clone() {
                Some(c) => c,
                None => Checkpoint {
                    position: p0,
                    sequence: 0,
                    txn_number: 0,
                    history: source.initial_state(),
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
            .ok_or_else(|| RunError::internal("full sync has no start position"))?;
        let controls = full::Controls {
            metrics: &metrics,
            throttle: &mut throttle,
            pause: &mut pause,
            status: &status,
        };
        if !full::run(
            p,
            &source,
            &opts.stop,
            &mut meta,
            sink.as_mut(),
            &start,
            controls,
        )? {
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

    let resume = match &cp {
        Some(c) => Resume {
            state: Arc::new(c.history.clone()),
            sequence: c.sequence,
            txn_number: c.txn_number,
            checkpoint: Some(c.position.clone()),
        },
        None => Resume {
            state: Arc::new(source.initial_state()),
            sequence: 0,
            txn_number: 0,
            checkpoint: None,
        },
    };
    tracing::info!(project = %p.name, sequence = resume.sequence, "incremental sync starts");
    // Bounded: the reader waits when the writer is behind (backpressure).
    let (tx, rx) = sync_channel::<Msg>(p.batch_rows.max(1000) * 2);
    // The reader stops when the run ends (its own flag: raising the project's would keep
    // run_part from running again after a transient failure) or when the project is stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let reader_stop = stop.clone();
    let project_stop = opts.stop.clone();
    let data_dir = p.data_dir.clone();
    let reader_metrics = metrics.clone();
    let from = cp.as_ref().map(|c| (c.position.clone(), c.history.clone()));
    let reader_source = source.clone();
    let reader = std::thread::Builder::new()
        .name("sluice-reader".into())
        .spawn(move || {
            let from = from.as_ref().map(|(pos, state)| (pos, state.as_str()));
            let r = reader_source.stream(from, &mut |s| {
                let msg = match s {
                    Streamed::Read(bytes) => {
                        reader_metrics.add("reader", 0, bytes);
                        return ControlFlow::Continue(());
                    }
                    Streamed::State(state) => Msg::State(state),
                    Streamed::Event(e) => {
                        match &e {
                            Event::Row(_) => reader_metrics.add("reader", 1, 0),
                            Event::Commit { pos, ts_ms, .. } | Event::Heartbeat { pos, ts_ms } => {
                                reader_metrics.position("reader", pos);
                                reader_metrics.seen("reader", *ts_ms);
                            }
                            _ => {}
                        }
                        Msg::Event(e)
                    }
                };
                if reader_stop.load(Ordering::SeqCst)
                    || project_stop.load(Ordering::SeqCst)
                    || tx.send(msg).is_err()
                {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            let _ = tx.send(match r {
                Ok(()) => Msg::Ended,
                Err(e @ SourceError::Purged(_)) => Msg::Failed(SourceError::Purged(format!(
                    "{e}. To start over, remove this project's checkpoint (delete {} or give \
                     the project a new name) and choose stages.start",
                    data_dir.join("meta.db").display()
                ))),
                Err(e) => Msg::Failed(e),
            });
        })
        .map_err(internal)?;

    let copied_at = crate::full::copied_at(source.as_ref(), &meta.full_units(&p.name)?);
    let ctl = Controls {
        metrics: metrics.clone(),
        throttle,
        pause,
        status,
        stop: opts.stop.clone(),
        source: source.clone(),
    };
    let mut st = State::new(p, meta, copied_at, resume, ctl, sink.as_ref());
    let result = write_loop(
        p,
        opts.until_caught_up,
        &opts.stop,
        &rx,
        sink.as_mut(),
        &mut st,
        &end,
    );
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
