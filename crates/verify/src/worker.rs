//! One worker: a connection to the destination and to each source, comparing chunks.

use std::time::{Duration, Instant};

use sluice_core::source::{Catalog, Source};
use sluice_core::verify::{Cell, Digest, Fix, VerifySide};
use sluice_core::Position;
use sluice_meta::MetaStore;
use sluice_pipeline::Project;

use crate::compare::{self, Kind};
use crate::jobs::Job;
use crate::{Difference, Options, VerifyRunError, LOOKS};

/// A chunk to compare: `(after, upto]` of job `job`, the `chunk`-th of its table.
pub(crate) struct Work {
    pub job: usize,
    pub chunk: usize,
    pub after: Option<Vec<Cell>>,
    pub upto: Option<Vec<Cell>>,
}

/// What one chunk found.
pub(crate) struct ChunkResult {
    pub chunk: usize,
    pub rows: u64,
    pub equal: u64,
    pub diffs: Vec<Difference>,
    /// Missing, extra, different.
    pub counts: [u64; 3],
    pub corrections: Vec<String>,
    pub applied: bool,
    pub behind: bool,
}

/// A source's verification side.
pub(crate) fn side(source: &dyn Source) -> Result<Box<dyn VerifySide>, VerifyRunError> {
    source
        .verifier()
        .map_err(|e| VerifyRunError::Source(e.to_string()))?
        .ok_or_else(|| VerifyRunError::NotBuilt("this source cannot be verified yet".into()))
}

/// The destination's verification side.
pub(crate) fn dest_side(p: &Project) -> Result<Box<dyn VerifySide>, VerifyRunError> {
    p.destination
        .verifier()
        .map_err(|e| VerifyRunError::Destination(e.to_string()))?
        .ok_or_else(|| VerifyRunError::NotBuilt("this destination cannot be verified yet".into()))
}

/// A difference as reported: the key and the differing columns by name.
pub(crate) fn difference(job: &Job, d: &compare::Diff, shard: Option<String>) -> Difference {
    Difference {
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
        shard,
    }
}

/// The digest of several parts' chunks: counts and sums add, XORs combine.
fn combined(ds: &[Digest]) -> Digest {
    ds.iter().fold(Digest::default(), |a, d| Digest {
        rows: a.rows + d.rows,
        sum: a.sum.wrapping_add(d.sum),
        xor: a.xor ^ d.xor,
    })
}

/// Waits (at most `settle`) until the checkpoint of each source `i` of `seen` (as
/// `checkpoint(i)` reads it) is at or after its position; whether they all got there.
pub(crate) fn passed(
    settle: Duration,
    seen: &[(usize, Position)],
    checkpoint: impl Fn(usize) -> Option<Position>,
) -> bool {
    let deadline = Instant::now() + settle;
    loop {
        if seen
            .iter()
            .all(|(i, at)| checkpoint(*i).is_some_and(|c| &c >= at))
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) struct Worker<'a> {
    p: &'a Project,
    opts: &'a Options,
    /// Per source (index of `jobs::sources`): its side and catalog.
    srcs: Vec<(Box<dyn VerifySide>, Box<dyn Catalog + 'a>)>,
    /// The instance names of the sources (sharded), for checkpoints and reports.
    shards: Vec<Option<String>>,
    dst: Box<dyn VerifySide>,
    running: bool,
    /// The project's metadata store, read for its checkpoints (opened once).
    meta: Option<MetaStore>,
}

impl<'a> Worker<'a> {
    pub fn open(
        p: &'a Project,
        sources: &'a [(Option<String>, Box<dyn Source>)],
        opts: &'a Options,
    ) -> Result<Self, VerifyRunError> {
        let mut srcs = Vec::new();
        for (_, s) in sources {
            let cat = s
                .catalog()
                .map_err(|e| VerifyRunError::Source(e.to_string()))?;
            srcs.push((side(s.as_ref())?, cat));
        }
        Ok(Self {
            p,
            opts,
            srcs,
            shards: sources.iter().map(|(n, _)| n.clone()).collect(),
            dst: dest_side(p)?,
            running: sluice_pipeline::is_running(&p.data_dir, &p.name),
            meta: MetaStore::open(&p.data_dir).ok(),
        })
    }

    /// Source `i`'s part of the project's checkpoint, if any.
    fn checkpoint(&self, i: usize) -> Option<Position> {
        let meta = self.meta.as_ref()?;
        let name = match &self.shards[i] {
            None => self.p.name.clone(),
            Some(s) => format!("{}.{s}", self.p.name),
        };
        meta.checkpoint(&name).ok().flatten().map(|c| c.position)
    }

    /// Waits (at most `settle`) until each source's checkpoint is at or after its position.
    fn settle(&self, seen: &[(usize, Position)]) -> bool {
        passed(self.opts.settle, seen, |i| self.checkpoint(i))
    }

    /// The end positions of the sources of `job`.
    fn ends(&mut self, job: &Job) -> Result<Vec<(usize, Position)>, VerifyRunError> {
        let mut out = Vec::new();
        for part in &job.parts {
            if out.iter().any(|(i, _)| *i == part.source) {
                continue;
            }
            let end = self.srcs[part.source]
                .1
                .end()
                .map_err(|e| VerifyRunError::Source(e.to_string()))?;
            out.push((part.source, end));
        }
        Ok(out)
    }

    /// The rows of every part (by key, or of the chunk), each with the part it came from.
    fn source_rows(
        &mut self,
        job: &Job,
        work: &Work,
        keys: Option<&[Vec<Cell>]>,
    ) -> Result<(Vec<Vec<Cell>>, Vec<usize>), VerifyRunError> {
        let (mut rows, mut from) = (Vec::new(), Vec::new());
        for (n, part) in job.parts.iter().enumerate() {
            let q = job.query(
                &part.table,
                work.after.as_deref(),
                work.upto.as_deref(),
                true,
            );
            let side = &mut self.srcs[part.source].0;
            let got = match keys {
                Some(k) => side.rows_by_key(&q, k),
                None => side.rows(&q),
            }
            .map_err(|e| VerifyRunError::Source(format!("{}: {e}", part.table)))?;
            from.extend(std::iter::repeat_n(n, got.len()));
            rows.extend(got);
        }
        Ok((rows, from))
    }

    pub fn chunk(&mut self, job: &Job, work: &Work) -> Result<ChunkResult, VerifyRunError> {
        let chunk_started = Instant::now();
        let dst_err =
            |e: &dyn std::fmt::Display| VerifyRunError::Destination(format!("{}: {e}", job.to));
        let mut out = ChunkResult {
            chunk: work.chunk,
            rows: 0,
            equal: 0,
            diffs: Vec::new(),
            counts: [0; 3],
            corrections: Vec::new(),
            applied: false,
            behind: false,
        };
        let comparable = job
            .parts
            .iter()
            .all(|pt| self.srcs[pt.source].0.dialect() == self.dst.dialect());
        let seen = self.ends(job)?;
        let dq = job.query(&job.to, work.after.as_deref(), work.upto.as_deref(), false);
        let (srcs, dst) = (&mut self.srcs, &mut self.dst);
        // The destination's server works while the sources' do.
        let (sd, dd) = std::thread::scope(|s| {
            let d = s.spawn(|| dst.digest(&dq));
            let mut ds = Vec::new();
            for part in &job.parts {
                let q = job.query(
                    &part.table,
                    work.after.as_deref(),
                    work.upto.as_deref(),
                    true,
                );
                ds.push(
                    srcs[part.source]
                        .0
                        .digest(&q)
                        .map_err(|e| VerifyRunError::Source(format!("{}: {e}", part.table))),
                );
            }
            (ds.into_iter().collect::<Result<Vec<_>, _>>(), d.join())
        });
        let sd = combined(&sd?);
        let dd = dd
            .map_err(|_| VerifyRunError::Destination("a digest thread failed".into()))?
            .map_err(|e| dst_err(&e))?;
        if comparable && sd == dd {
            out.rows = sd.rows;
            out.equal = sd.rows;
            return Ok(self.throttled(out, chunk_started));
        }
        let dst = &mut self.dst;
        let dr = std::thread::scope(|s| s.spawn(|| dst.rows(&dq)).join());
        let (sr, mut from) = self.source_rows(job, work, None)?;
        let dr = dr
            .map_err(|_| VerifyRunError::Destination("a row thread failed".into()))?
            .map_err(|e| dst_err(&e))?;
        let rows = sr.len() as u64;
        let mut source_rows = sr;
        let mut diffs = compare::compare(&source_rows, &dr, job.key_len);
        if !diffs.is_empty() && self.running {
            // Another look at the keys that differ: the sources' rows first, then the
            // destination's once the checkpoint has passed that read, so every change the
            // source rows show has arrived. A key changed again meanwhile can differ anew:
            // look again, a few times.
            for _ in 0..LOOKS {
                let keys: Vec<Vec<Cell>> = diffs.iter().map(|d| d.key.clone()).collect();
                let (s2, f2) = self.source_rows(job, work, Some(&keys))?;
                let read = self.ends(job)?;
                if !self.settle(&read) {
                    break;
                }
                let d2 = self.dst.rows_by_key(&dq, &keys).map_err(|e| dst_err(&e))?;
                diffs = compare::compare(&s2, &d2, job.key_len);
                (source_rows, from) = (s2, f2);
                if diffs.is_empty() {
                    break;
                }
            }
        } else if !diffs.is_empty()
            && seen
                .iter()
                .any(|(i, at)| self.checkpoint(*i).is_some_and(|c| &c < at))
        {
            out.behind = true;
        }
        // Which shard a source row came from (by its key).
        let shard_of = |key: &[Cell]| -> Option<String> {
            let i = source_rows
                .iter()
                .position(|r| r.get(..job.key_len) == Some(key))?;
            let part = job.parts.get(*from.get(i)?)?;
            self.shards.get(part.source).cloned().flatten()
        };
        out.rows = rows;
        for d in &diffs {
            out.counts[match d.kind {
                Kind::Missing => 0,
                Kind::Extra => 1,
                Kind::Different => 2,
            }] += 1;
            if out.diffs.len() < self.opts.examples {
                out.diffs.push(difference(job, d, shard_of(&d.key)));
            }
            if self.opts.corrections || self.opts.apply {
                let fix = match (d.kind, &d.source) {
                    (Kind::Missing, Some(row)) => Fix::Insert(row),
                    (Kind::Different, Some(row)) => Fix::Update(row, &d.columns),
                    _ => Fix::Delete(&d.key),
                };
                out.corrections.push(self.dst.correction(&dq, fix));
            }
        }
        // Rows the source has minus those that differ; a missing row is not equal.
        let unequal = diffs.iter().filter(|d| d.kind != Kind::Extra).count() as u64;
        out.equal = rows.saturating_sub(unequal);
        if self.opts.apply && !out.corrections.is_empty() {
            self.dst.apply(&out.corrections).map_err(|e| dst_err(&e))?;
            out.applied = true;
        }
        Ok(self.throttled(out, chunk_started))
    }

    /// Sleeps as `throttle_rows` asks after a chunk.
    fn throttled(&self, out: ChunkResult, started: Instant) -> ChunkResult {
        if let Some(rate) = self.opts.throttle_rows {
            let per_worker = (rate / self.opts.threads.max(1) as u64).max(1);
            let want = Duration::from_secs_f64(out.rows as f64 / per_worker as f64);
            if let Some(rest) = want.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        out
    }
}
