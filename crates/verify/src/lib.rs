//! Verification: is the destination equal to what the project promises of the source (after
//! rename, column subsets and row filters)? Each selected table is walked in key-range chunks
//! of `chunk_rows` source rows; both sides compute the chunk's digest on their own server at
//! the same time, and only where the digests differ (or cannot be compared) are the rows read
//! and compared by key. The sides are the source's and the destination's
//! [`VerifySide`](sluice_core::verify::VerifySide); this crate knows no server.
//!
//! Invariants:
//! - While the project runs, a difference is reported only if it survives another look (up
//!   to `LOOKS`, five): the source's rows of the keys that differ are read again, then the
//!   destination's once the project's checkpoint has passed the source position taken after
//!   that read (every change those rows show has then arrived). Without the looks a busy
//!   source shows false differences (tested).
//! - Corrections take the source as the truth: insert what is missing, delete what is extra,
//!   update what differs (only its differing columns), one transaction per chunk when applied.
//! - Memory is bounded by one chunk per worker (its rows are read only when digests differ).

pub mod compare;
mod jobs;
mod mq;
mod stage;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_core::verify::Cell;
use sluice_core::TableId;
use sluice_meta::{MetaStore, VerifyRecord};
use sluice_pipeline::Project;
use sluice_route::Pattern;

pub use compare::{Diff, Kind};
use jobs::Job;
pub use stage::{run_stage, spawn_stage};
use worker::{dest_side, side, ChunkResult, Work, Worker};

/// How many second looks a differing chunk gets while the project runs.
pub(crate) const LOOKS: usize = 5;

/// How a verification runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only the selected tables matching one of these (none: every selected table).
    pub tables: Vec<Pattern>,
    /// Source rows per chunk.
    pub chunk_rows: usize,
    /// Chunks compared at once, of any table (each worker has a connection to each side).
    pub threads: usize,
    /// Apply the corrections at the destination (one transaction per chunk).
    pub apply: bool,
    /// Keep the correction statements in the reports (for a file); without this or `apply`
    /// none is made, and memory holds no more than a chunk per worker.
    pub corrections: bool,
    /// How long to wait for a running project's checkpoint to pass a differing chunk's first
    /// read before the second look.
    pub settle: Duration,
    /// At most this many source rows per second, over all workers.
    pub throttle_rows: Option<u64>,
    /// Differences kept per table for the report (all are counted and corrected).
    pub examples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tables: Vec::new(),
            chunk_rows: 20_000,
            threads: 4,
            apply: false,
            corrections: false,
            settle: Duration::from_secs(30),
            throttle_rows: None,
            examples: 20,
        }
    }
}

/// Why a verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyRunError {
    /// The source failed or cannot be compared.
    #[error("source: {0}")]
    Source(String),
    /// The destination failed or cannot be compared.
    #[error("destination: {0}")]
    Destination(String),
    /// What this project asks is not built yet.
    #[error("{0}")]
    NotBuilt(String),
    /// Nothing to verify: the project, or `tables`, selects no table.
    #[error("{0}")]
    Nothing(String),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] sluice_meta::MetaError),
}

/// One difference as reported: the key as `column = value` and the differing columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// How.
    pub kind: Kind,
    /// The key's columns and values (shown).
    pub key: Vec<(String, String)>,
    /// The columns that differ (Different only).
    pub columns: Vec<String>,
    /// The instance the source row came from (sharded sources; not for an extra row).
    pub shard: Option<String>,
}

/// One table's verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The source table.
    pub table: TableId,
    /// Its name at the destination.
    pub to: TableId,
    /// Source rows compared (after the row filter).
    pub rows: u64,
    /// Rows equal on both sides.
    pub equal: u64,
    /// Rows missing at the destination.
    pub missing: u64,
    /// Destination rows the source does not have.
    pub extra: u64,
    /// Rows with different values.
    pub different: u64,
    /// The first differences.
    pub examples: Vec<Difference>,
    /// Correction statements, in order.
    pub corrections: Vec<String>,
    /// Whether they were applied.
    pub applied: bool,
    /// Messages delivered again to a message-queue destination (with `apply`).
    pub redelivered: u64,
    /// The project's checkpoint was behind the source while it did not run: changes not
    /// delivered yet may account for differences.
    pub behind: bool,
    /// When it started (ms since the epoch).
    pub at_ms: i64,
    /// How long it took.
    pub took: Duration,
    /// Why the table could not be verified (then its counts are partial).
    pub error: Option<String>,
    /// Each chunk's corrections as the chunks finish, put in key order at the end.
    pending: Vec<(usize, Vec<String>)>,
}

impl TableReport {
    /// No difference.
    pub fn is_equal(&self) -> bool {
        self.error.is_none() && self.missing == 0 && self.extra == 0 && self.different == 0
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Verifies every selected table of `p` (as `opts` says), calling `progress` with a table's
/// report so far after each of its chunks, and stores each table's result in the project's
/// metadata store. One planner finds the chunk boundaries of each table in turn; `threads`
/// workers compare chunks, of any table, as they come.
pub fn verify(
    p: &Project,
    opts: &Options,
    progress: &(dyn Fn(&TableReport) + Sync),
) -> Result<Vec<TableReport>, VerifyRunError> {
    let dst = |e: &dyn std::fmt::Display| VerifyRunError::Destination(e.to_string());
    // The destination must be one that can be queried, or whose state can be rebuilt; find
    // out before reading anything.
    if p.destination.verifier().map_err(|e| dst(&e))?.is_none() {
        if let Some(state) = p.destination.state_verifier().map_err(|e| dst(&e))? {
            return mq::verify(p, opts, state, progress);
        }
        return Err(VerifyRunError::NotBuilt(format!(
            "verification of this destination is not built yet: {}",
            sluice_pipeline::VERIFIABLE
        )));
    }
    let jobs = jobs::jobs(p, opts)?;
    if jobs.is_empty() {
        return Err(VerifyRunError::Nothing(if opts.tables.is_empty() {
            "the project selects no table of its source: check objects.include".into()
        } else {
            "no table the project selects matches --tables: give db.table patterns of selected tables".into()
        }));
    }
    let reports: Vec<Mutex<TableReport>> = jobs
        .iter()
        .map(|j| Mutex::new(TableReport::new(j)))
        .collect();
    let started: Vec<Instant> = jobs.iter().map(|_| Instant::now()).collect();
    let sources = jobs::open_sources(p)?;
    let failure: Mutex<Option<VerifyRunError>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let fail = |e: VerifyRunError| {
        stop.store(true, Ordering::SeqCst);
        if let Ok(mut f) = failure.lock() {
            f.get_or_insert(e);
        }
    };
    let workers = opts.threads.clamp(1, 64);
    // Bounded: the planner runs at most two chunks per worker ahead.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Work>(workers * 2);
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        s.spawn(|| {
            let plan = || -> Result<(), VerifyRunError> {
                // A table's chunks end at its source's keys; a logical table's (several
                // sources) at the destination's, which holds the rows of all of them.
                let mut src = sources
                    .iter()
                    .map(|(_, s)| side(s.as_ref()))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut dst = dest_side(p)?;
                for (job_no, job) in jobs.iter().enumerate() {
                    let mut after: Option<Vec<Cell>> = None;
                    let mut chunk = 0usize;
                    loop {
                        if stop.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        let upto = match job.parts.as_slice() {
                            [one] => {
                                let q = job.query(&one.table, after.as_deref(), None, true);
                                src[one.source].boundary(&q, opts.chunk_rows).map_err(|e| {
                                    VerifyRunError::Source(format!("{}: {e}", one.table))
                                })
                            }
                            _ => {
                                let q = job.query(&job.to, after.as_deref(), None, false);
                                dst.boundary(&q, opts.chunk_rows).map_err(|e| {
                                    VerifyRunError::Destination(format!("{}: {e}", job.to))
                                })
                            }
                        };
                        // A table that cannot be read is reported as such; the others go on.
                        let upto = match upto {
                            Ok(u) => u,
                            Err(e) => {
                                work_failed(&reports, job_no, e);
                                break;
                            }
                        };
                        let last = upto.is_none();
                        let work = Work {
                            job: job_no,
                            chunk,
                            after: after.take(),
                            upto: upto.clone(),
                        };
                        if tx.send(work).is_err() {
                            return Ok(());
                        }
                        chunk += 1;
                        if last {
                            break;
                        }
                        after = upto;
                    }
                }
                Ok(())
            };
            if let Err(e) = plan() {
                fail(e);
            }
            drop(tx);
        });
        for _ in 0..workers {
            s.spawn(|| {
                let run = || -> Result<(), VerifyRunError> {
                    let mut w = Worker::open(p, &sources, opts)?;
                    loop {
                        if stop.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        let work = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return Ok(()),
                        };
                        let Ok(work) = work else { return Ok(()) };
                        let job = &jobs[work.job];
                        if reports[work.job].lock().is_ok_and(|r| r.error.is_some()) {
                            continue;
                        }
                        match w.chunk(job, &work) {
                            Ok(got) => {
                                if let Ok(mut r) = reports[work.job].lock() {
                                    r.add(got, opts.examples);
                                    r.took = started[work.job].elapsed();
                                    progress(&r);
                                }
                            }
                            // The table is reported as not verified; the worker's
                            // connections are opened again for the next chunk.
                            Err(e) => {
                                work_failed(&reports, work.job, e);
                                w = Worker::open(p, &sources, opts)?;
                            }
                        }
                    }
                };
                if let Err(e) = run() {
                    fail(e);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let meta = MetaStore::open(&p.data_dir)?;
    let mut all = Vec::new();
    for r in reports {
        let mut r = r
            .into_inner()
            .map_err(|_| VerifyRunError::NotBuilt("a worker panicked".into()))?;
        r.finish();
        meta.save_verify(&p.name, &record(&r))?;
        all.push(r);
    }
    all.sort_by(|a, b| (&a.table.db, &a.table.table).cmp(&(&b.table.db, &b.table.table)));
    Ok(all)
}

/// Records `e` as why table `job` could not be verified (the first error counts).
fn work_failed(reports: &[Mutex<TableReport>], job: usize, e: VerifyRunError) {
    if let Some(Ok(mut r)) = reports.get(job).map(|r| r.lock()) {
        r.error.get_or_insert(e.to_string());
    }
}

impl TableReport {
    fn new(j: &Job) -> Self {
        Self {
            table: j.table.clone(),
            to: j.to.clone(),
            rows: 0,
            equal: 0,
            missing: 0,
            extra: 0,
            different: 0,
            examples: Vec::new(),
            corrections: Vec::new(),
            applied: false,
            redelivered: 0,
            behind: false,
            at_ms: now_ms(),
            took: Duration::ZERO,
            error: None,
            pending: Vec::new(),
        }
    }

    fn add(&mut self, c: ChunkResult, examples: usize) {
        self.rows += c.rows;
        self.equal += c.equal;
        self.missing += c.counts[0];
        self.extra += c.counts[1];
        self.different += c.counts[2];
        for d in c.diffs {
            if self.examples.len() < examples {
                self.examples.push(d);
            }
        }
        self.applied |= c.applied;
        self.behind |= c.behind;
        if !c.corrections.is_empty() {
            self.pending.push((c.chunk, c.corrections));
        }
    }

    /// Puts the corrections in chunk (key) order: they arrive in the order chunks finish.
    fn finish(&mut self) {
        let mut groups = std::mem::take(&mut self.pending);
        groups.sort_by_key(|g| g.0);
        self.corrections = groups.into_iter().flat_map(|g| g.1).collect();
    }
}

/// The stored form of a table's report.
pub(crate) fn record(r: &TableReport) -> VerifyRecord {
    let examples: Vec<serde_json::Value> = r
        .examples
        .iter()
        .map(|d| {
            serde_json::json!({
                "kind": d.kind.name(),
                "key": d.key.iter().map(|(c, v)| serde_json::json!({"column": c, "value": v})).collect::<Vec<_>>(),
                "columns": d.columns,
            })
        })
        .collect();
    VerifyRecord {
        table: format!("{}.{}", r.table.db, r.table.table),
        dest: format!("{}.{}", r.to.db, r.to.table),
        at_ms: r.at_ms,
        took_ms: r.took.as_millis() as i64,
        rows: r.rows,
        equal: r.equal,
        missing: r.missing,
        extra: r.extra,
        different: r.different,
        detail: serde_json::json!({"examples": examples, "corrections": r.corrections.len(),
                                   "applied": r.applied, "behind": r.behind, "error": r.error})
        .to_string(),
    }
}
