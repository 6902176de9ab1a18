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

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_core::verify::{Cell, CellKind, ChunkQuery, Fix, VerifyColumn, VerifySide};
use sluice_core::{Position, TableId};
use sluice_meta::{MetaStore, VerifyRecord};
use sluice_pipeline::Project;
use sluice_route::Pattern;

pub use compare::{Diff, Kind};

/// How many second looks a differing chunk gets while the project runs.
const LOOKS: usize = 5;

/// How a verification runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only the selected tables matching one of these (none: every selected table).
    pub tables: Vec<Pattern>,
    /// Source rows per chunk.
    pub chunk_rows: usize,
    /// Tables compared at once (each worker has a connection to each side).
    pub threads: usize,
    /// Apply the corrections at the destination (one transaction per chunk).
    pub apply: bool,
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
    /// The project's checkpoint was behind the source while it did not run: changes not
    /// delivered yet may account for differences.
    pub behind: bool,
    /// When it started (ms since the epoch).
    pub at_ms: i64,
    /// How long it took.
    pub took: Duration,
}

impl TableReport {
    /// No difference.
    pub fn is_equal(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.different == 0
    }
}

/// What the workers share about one table.
struct Job {
    table: TableId,
    to: TableId,
    columns: Vec<VerifyColumn>,
    key_len: usize,
    filter: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The jobs of the tables `p` selects (and `opts.tables` keeps), from the source's catalog.
fn jobs(p: &Project, opts: &Options) -> Result<Vec<Job>, VerifyRunError> {
    let src = |e: &dyn std::fmt::Display| VerifyRunError::Source(e.to_string());
    let selected = sluice_pipeline::selection(p).map_err(|e| src(&e))?;
    let source = p.source.open().map_err(|e| src(&e))?;
    let mut cat = source.catalog().map_err(|e| src(&e))?;
    let mut out = Vec::new();
    for s in selected {
        if !opts.tables.is_empty() && !opts.tables.iter().any(|pat| pat.matches(&s.table)) {
            continue;
        }
        let def = cat.definition(&s.table).map_err(|e| src(&e))?;
        let key: Vec<String> = if !def.primary_key.is_empty() {
            def.primary_key.clone()
        } else if let Some(k) = p.keys.get(&s.table) {
            k.clone()
        } else {
            cat.unique_key(&s.table)
                .map_err(|e| src(&e))?
                .ok_or_else(|| {
                    VerifyRunError::Source(format!(
                        "{} has no primary key and no NOT NULL unique key to compare it by \
                         chunks: name unique NOT NULL columns in objects.keys",
                        s.table
                    ))
                })?
        };
        let keep = p.router.columns.get(&s.table);
        let column = |name: &str| -> Result<VerifyColumn, VerifyRunError> {
            let c = def
                .columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    VerifyRunError::Source(format!("{} has no column {name}", s.table))
                })?;
            Ok(VerifyColumn {
                name: c.name.clone(),
                kind: CellKind::of(&c.column_type),
                charset: c.charset.clone(),
            })
        };
        let mut columns = key
            .iter()
            .map(|k| column(k))
            .collect::<Result<Vec<_>, _>>()?;
        for c in &def.columns {
            let is_key = key.iter().any(|k| k.eq_ignore_ascii_case(&c.name));
            let kept = keep.is_none_or(|k| k.iter().any(|x| x.eq_ignore_ascii_case(&c.name)));
            if !is_key && kept {
                columns.push(column(&c.name)?);
            }
        }
        out.push(Job {
            key_len: key.len(),
            filter: p.router.filter_for(&s.table).map(|f| f.text().to_string()),
            table: s.table,
            to: s.to,
            columns,
        });
    }
    Ok(out)
}

/// Verifies every selected table of `p` (as `opts` says), calling `progress` with each table's
/// report so far after each chunk, and stores each table's result in the project's metadata
/// store.
pub fn verify(
    p: &Project,
    opts: &Options,
    progress: &(dyn Fn(&TableReport) + Sync),
) -> Result<Vec<TableReport>, VerifyRunError> {
    if !p.shards.is_empty() {
        return Err(VerifyRunError::NotBuilt(
            "verification of a sharded source (logical tables) is not built yet".into(),
        ));
    }
    let dst = |e: &dyn std::fmt::Display| VerifyRunError::Destination(e.to_string());
    // The destination must be one that can be queried; find out before reading anything.
    if p.destination.verifier().map_err(|e| dst(&e))?.is_none() {
        return Err(VerifyRunError::NotBuilt(
            "verification of this destination type is not built yet: database destinations \
             (mysql, mariadb, oceanbase) can be verified"
                .into(),
        ));
    }
    let queue = Mutex::new(jobs(p, opts)?.into_iter().collect::<VecDeque<_>>());
    let workers = opts
        .threads
        .clamp(1, 64)
        .min(queue.lock().map(|q| q.len()).unwrap_or(1).max(1));
    let results: Mutex<Vec<TableReport>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<VerifyRunError>> = Mutex::new(None);
    let source = p
        .source
        .open()
        .map_err(|e| VerifyRunError::Source(e.to_string()))?;
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let run = || -> Result<(), VerifyRunError> {
                    let mut w = Worker::open(p, source.as_ref(), opts)?;
                    loop {
                        let job = match queue.lock() {
                            Ok(mut q) => q.pop_front(),
                            Err(_) => None,
                        };
                        let Some(job) = job else { return Ok(()) };
                        let r = w.table(&job, progress)?;
                        MetaStore::open(&p.data_dir)?.save_verify(&p.name, &record(&r))?;
                        if let Ok(mut all) = results.lock() {
                            all.push(r);
                        }
                    }
                };
                if let Err(e) = run() {
                    if let Ok(mut q) = queue.lock() {
                        q.clear();
                    }
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut all = results.into_inner().unwrap_or_default();
    all.sort_by(|a, b| (&a.table.db, &a.table.table).cmp(&(&b.table.db, &b.table.table)));
    Ok(all)
}

/// The stored form of a table's report.
fn record(r: &TableReport) -> VerifyRecord {
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
                                   "applied": r.applied, "behind": r.behind})
        .to_string(),
    }
}

/// One worker: a connection to each side, and the source's catalog for its end position.
struct Worker<'a> {
    p: &'a Project,
    opts: &'a Options,
    src: Box<dyn VerifySide>,
    dst: Box<dyn VerifySide>,
    cat: Box<dyn sluice_core::source::Catalog + 'a>,
    running: bool,
}

impl<'a> Worker<'a> {
    fn open(
        p: &'a Project,
        source: &'a dyn sluice_core::source::Source,
        opts: &'a Options,
    ) -> Result<Self, VerifyRunError> {
        let src_err = |e: &dyn std::fmt::Display| VerifyRunError::Source(e.to_string());
        let src = source
            .verifier()
            .map_err(|e| src_err(&e))?
            .ok_or_else(|| VerifyRunError::NotBuilt("this source cannot be verified yet".into()))?;
        let dst = p
            .destination
            .verifier()
            .map_err(|e| VerifyRunError::Destination(e.to_string()))?
            .ok_or_else(|| {
                VerifyRunError::NotBuilt("this destination cannot be verified yet".into())
            })?;
        let cat = source.catalog().map_err(|e| src_err(&e))?;
        Ok(Self {
            p,
            opts,
            src,
            dst,
            cat,
            running: sluice_pipeline::is_running(&p.data_dir, &p.name),
        })
    }

    /// The project's checkpoint position, if any.
    fn checkpoint(&self) -> Option<Position> {
        MetaStore::open(&self.p.data_dir)
            .ok()?
            .checkpoint(&self.p.name)
            .ok()
            .flatten()
            .map(|c| c.position)
    }

    /// Waits (at most `settle`) until a running project's checkpoint is at or after `seen`.
    fn settle(&self, seen: &Position) -> bool {
        let deadline = Instant::now() + self.opts.settle;
        loop {
            if self.checkpoint().is_some_and(|c| &c >= seen) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn table(
        &mut self,
        job: &Job,
        progress: &(dyn Fn(&TableReport) + Sync),
    ) -> Result<TableReport, VerifyRunError> {
        let started = Instant::now();
        let mut r = TableReport {
            table: job.table.clone(),
            to: job.to.clone(),
            rows: 0,
            equal: 0,
            missing: 0,
            extra: 0,
            different: 0,
            examples: Vec::new(),
            corrections: Vec::new(),
            applied: false,
            behind: false,
            at_ms: now_ms(),
            took: Duration::ZERO,
        };
        let src_err =
            |e: &dyn std::fmt::Display| VerifyRunError::Source(format!("{}: {e}", job.table));
        let dst_err =
            |e: &dyn std::fmt::Display| VerifyRunError::Destination(format!("{}: {e}", job.to));
        let comparable = self.src.dialect() == self.dst.dialect();
        let per_worker = self
            .opts
            .throttle_rows
            .map(|t| (t / self.opts.threads.max(1) as u64).max(1));
        let mut after: Option<Vec<Cell>> = None;
        loop {
            let chunk_started = Instant::now();
            let seen = self.cat.end().map_err(|e| src_err(&e))?;
            let base = ChunkQuery {
                table: &job.table,
                columns: &job.columns,
                key_len: job.key_len,
                after: after.as_deref(),
                upto: None,
                filter: job.filter.as_deref(),
            };
            let upto = self
                .src
                .boundary(&base, self.opts.chunk_rows)
                .map_err(|e| src_err(&e))?;
            let sq = ChunkQuery {
                upto: upto.as_deref(),
                ..base.clone()
            };
            let dq = ChunkQuery {
                table: &job.to,
                filter: None,
                ..sq.clone()
            };
            let (src, dst) = (&mut self.src, &mut self.dst);
            // Both servers work at once.
            let (sd, dd) = std::thread::scope(|s| {
                let d = s.spawn(|| dst.digest(&dq));
                let sd = src.digest(&sq);
                (sd, d.join())
            });
            let sd = sd.map_err(|e| src_err(&e))?;
            let dd = dd
                .map_err(|_| VerifyRunError::Destination("a digest thread failed".into()))?
                .map_err(|e| dst_err(&e))?;
            if comparable && sd == dd {
                r.rows += sd.rows;
                r.equal += sd.rows;
            } else {
                let (sr, dr) = std::thread::scope(|s| {
                    let d = s.spawn(|| dst.rows(&dq));
                    let sr = src.rows(&sq);
                    (sr, d.join())
                });
                let sr = sr.map_err(|e| src_err(&e))?;
                let dr = dr
                    .map_err(|_| VerifyRunError::Destination("a row thread failed".into()))?
                    .map_err(|e| dst_err(&e))?;
                let mut diffs = compare::compare(&sr, &dr, job.key_len);
                let rows = sr.len() as u64;
                if !diffs.is_empty() && self.running {
                    // Another look at the keys that differ: the source's rows first, then the
                    // destination's once the checkpoint has passed that read, so every change
                    // the source rows show has arrived. A key changed again meanwhile can
                    // differ anew: look again, a few times.
                    for _ in 0..LOOKS {
                        let keys: Vec<Vec<Cell>> = diffs.iter().map(|d| d.key.clone()).collect();
                        let s2 = self.src.rows_by_key(&sq, &keys).map_err(|e| src_err(&e))?;
                        let read = self.cat.end().map_err(|e| src_err(&e))?;
                        if !self.settle(&read) {
                            break;
                        }
                        let d2 = self.dst.rows_by_key(&dq, &keys).map_err(|e| dst_err(&e))?;
                        diffs = compare::compare(&s2, &d2, job.key_len);
                        if diffs.is_empty() {
                            break;
                        }
                    }
                } else if !diffs.is_empty() && self.checkpoint().is_some_and(|c| c < seen) {
                    r.behind = true;
                }
                r.rows += rows;
                let mut fixes = Vec::new();
                for d in &diffs {
                    match d.kind {
                        Kind::Missing => r.missing += 1,
                        Kind::Extra => r.extra += 1,
                        Kind::Different => r.different += 1,
                    }
                    if r.examples.len() < self.opts.examples {
                        r.examples.push(Difference {
                            kind: d.kind,
                            key: d
                                .key
                                .iter()
                                .zip(&job.columns)
                                .map(|(v, c)| (c.name.clone(), v.shown(c.kind)))
                                .collect(),
                            columns: d
                                .columns
                                .iter()
                                .filter_map(|&i| job.columns.get(i).map(|c| c.name.clone()))
                                .collect(),
                        });
                    }
                    let fix = match (d.kind, &d.source) {
                        (Kind::Missing, Some(row)) => Fix::Insert(row),
                        (Kind::Different, Some(row)) => Fix::Update(row, &d.columns),
                        _ => Fix::Delete(&d.key),
                    };
                    fixes.push(self.dst.correction(&dq, fix));
                }
                // Rows the source has minus those that differ; a missing row is not equal.
                let unequal = diffs.iter().filter(|d| d.kind != Kind::Extra).count() as u64;
                r.equal += rows.saturating_sub(unequal);
                if self.opts.apply && !fixes.is_empty() {
                    self.dst.apply(&fixes).map_err(|e| dst_err(&e))?;
                    r.applied = true;
                }
                r.corrections.extend(fixes);
            }
            r.took = started.elapsed();
            progress(&r);
            if let Some(rate) = per_worker {
                let want = Duration::from_secs_f64(self.opts.chunk_rows as f64 / rate as f64);
                if let Some(rest) = want.checked_sub(chunk_started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            match upto {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        r.took = started.elapsed();
        Ok(r)
    }
}
