//! Verification of a message-queue destination: the destination's latest state per key is
//! rebuilt from what it was delivered ([`StateSide`] into a [`Latest`]), then the source is
//! walked in key-range chunks (text rendered as UTF-8, as messages carry it) and each source
//! row is matched with the state by key; keys of the state no chunk matched are extra.
//! Messages cannot be ordered by the source's collation, so the state is held whole (memory
//! grows with the table).
//!
//! While the project runs, a key that differs gets up to `LOOKS` more looks, as for a database
//! destination: the source's rows of those keys are read again, then the topic is read on
//! from where it was left once the project's checkpoint has passed the source position taken
//! after that read, and the keys are compared again; only keys that differ on every look are
//! reported. Extra keys get the same looks at the end (a row inserted after its chunk was read
//! is in the topic but was not in that chunk).
//!
//! With `--apply` (the project stopped), the keys that differ are corrected by re-delivery
//! (`sluice_pipeline::redeliver`): the source's current rows of the missing and different keys
//! as fresh messages, deletes of the extra keys, numbered after every sequence found in the
//! topics.
//!
//! A logical table (a sharded source) is compared as the union of its shards' tables, each
//! walked on its own instance; a difference names the instance its source row came from.
//! Re-delivery for a sharded source is not built yet.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sluice_core::verify::{Cell, ChunkQuery, Latest, StateSide, VerifyColumn, VerifySide};
use sluice_core::Position;
use sluice_meta::MetaStore;
use sluice_pipeline::redeliver::{redeliver, Redelivery};
use sluice_pipeline::Project;

use crate::compare::{self, Diff, Kind};
use crate::jobs::Job;
use crate::worker::{difference, passed, side};
use crate::{jobs, record, Options, TableReport, VerifyRunError, LOOKS};

/// A row with each cell in the form both renderings agree on ([`VerifyColumn::settled`]).
fn settle(columns: &[VerifyColumn], row: Vec<Cell>) -> Vec<Cell> {
    row.into_iter()
        .zip(columns)
        .map(|(c, col)| col.settled(c))
        .collect()
}

/// A source the comparison reads: its side, its catalog (for its end position), and the
/// name its checkpoint is kept under.
struct Src<'a> {
    side: Box<dyn VerifySide>,
    catalog: Box<dyn sluice_core::source::Catalog + 'a>,
    checkpoint: String,
    /// The instance (a sharded source's), for reports.
    shard: Option<String>,
}

/// What one table's comparison reads and where it looks again.
struct Table<'a, 'b> {
    opts: &'a Options,
    job: &'a Job,
    srcs: &'a mut [Src<'b>],
    state: &'a mut dyn StateSide,
    latest: Latest,
    meta: &'a MetaStore,
    running: bool,
}

impl Table<'_, '_> {
    fn src_err(&self, part: usize, e: &dyn std::fmt::Display) -> VerifyRunError {
        VerifyRunError::Source(format!("{}: {e}", self.job.parts[part].table))
    }

    /// Reads the topic on (all of it, the first time).
    fn read_on(&mut self) -> Result<(), VerifyRunError> {
        let job = self.job;
        self.state
            .read(&job.to, &job.columns, job.key_len, &mut self.latest)
            .map_err(|e| VerifyRunError::Destination(format!("{}: {e}", job.to)))
    }

    /// The state's rows of `keys` (those it has).
    fn state_rows(&self, keys: &[Vec<Cell>]) -> Vec<Vec<Cell>> {
        keys.iter()
            .filter_map(|k| self.latest.get(k).cloned())
            .map(|r| settle(&self.job.columns, r))
            .collect()
    }

    /// The checkpoint of source `i`, if it has one.
    fn checkpoint(&self, i: usize) -> Option<Position> {
        let cp = self.meta.checkpoint(&self.srcs[i].checkpoint);
        cp.ok().flatten().map(|c| c.position)
    }

    /// Looks again at the keys of `diffs` (see the module doc), in the source tables of
    /// `parts`; the differences left.
    fn look_again(
        &mut self,
        mut diffs: Vec<Diff>,
        parts: &[usize],
    ) -> Result<Vec<Diff>, VerifyRunError> {
        let job = self.job;
        for _ in 0..LOOKS {
            if diffs.is_empty() {
                break;
            }
            let keys: Vec<Vec<Cell>> = diffs.iter().map(|d| d.key.clone()).collect();
            let mut again: Vec<Vec<Cell>> = Vec::new();
            let mut seen: Vec<(usize, Position)> = Vec::new();
            for &n in parts {
                let part = &job.parts[n];
                let q = ChunkQuery {
                    utf8_text: true,
                    ..job.query(&part.table, None, None, true)
                };
                let src = &mut self.srcs[part.source];
                let rows = src.side.rows_by_key(&q, &keys);
                let rows = rows.map_err(|e| self.src_err(n, &e))?;
                again.extend(rows.into_iter().map(|r| settle(&job.columns, r)));
                if !seen.iter().any(|(i, _)| *i == part.source) {
                    let end = self.srcs[part.source].catalog.end();
                    seen.push((part.source, end.map_err(|e| self.src_err(n, &e))?));
                }
            }
            if !passed(self.opts.settle, &seen, |i| self.checkpoint(i)) {
                break;
            }
            self.read_on()?;
            diffs = compare::compare(&again, &self.state_rows(&keys), job.key_len);
        }
        Ok(diffs)
    }
}

pub(crate) fn verify(
    p: &Project,
    opts: &Options,
    mut state: Box<dyn StateSide>,
    progress: &(dyn Fn(&TableReport) + Sync),
) -> Result<Vec<TableReport>, VerifyRunError> {
    let not_built = |m: &str| Err(VerifyRunError::NotBuilt(m.to_string()));
    if opts.corrections && !opts.apply {
        return not_built(
            "a message-queue destination is corrected by re-delivering the keys that differ \
             (--apply); --correction writes SQL for database destinations",
        );
    }
    let running = sluice_pipeline::is_running(&p.data_dir, &p.name);
    if running && opts.apply {
        return not_built(
            "the project is running: stop it before --apply (a re-delivery numbers its \
             messages after the checkpoint's sequence)",
        );
    }
    if opts.apply && !p.shards.is_empty() {
        return not_built(
            "re-delivery for a sharded source is not built yet: run without --apply, then \
             correct the keys reported",
        );
    }
    let jobs = jobs::jobs(p, opts)?;
    let opened = jobs::open_sources(p)?;
    let mut srcs = Vec::new();
    for (shard, source) in &opened {
        srcs.push(Src {
            side: side(source.as_ref())?,
            catalog: source
                .catalog()
                .map_err(|e| VerifyRunError::Source(e.to_string()))?,
            checkpoint: match shard {
                None => p.name.clone(),
                Some(s) => format!("{}.{s}", p.name),
            },
            shard: shard.clone(),
        });
    }
    let meta = MetaStore::open(&p.data_dir)?;
    let mut out = Vec::new();
    // With --apply: what to deliver again, and the highest sequence the topics hold.
    let mut work: Vec<Redelivery> = Vec::new();
    let mut floor = 0u64;
    for job in &jobs {
        let started = Instant::now();
        let mut r = TableReport::new(job);
        let mut t = Table {
            opts,
            job,
            srcs: &mut srcs,
            state: state.as_mut(),
            latest: Latest::new(),
            meta: &meta,
            running,
        };
        if let Err(e) = t.read_on() {
            r.error = Some(e.to_string());
            meta.save_verify(&p.name, &record(&r))?;
            out.push(r);
            continue;
        }
        let mut fix = Redelivery {
            table: job.table.clone(),
            key: job.columns[..job.key_len].to_vec(),
            rows: Vec::new(),
            gone: Vec::new(),
        };
        // Each difference with the instance its source row came from.
        let mut found: Vec<(Diff, Option<String>)> = Vec::new();
        // Keys of the state some source row had.
        let mut matched: HashSet<Vec<Cell>> = HashSet::new();
        // Each source table in turn (a logical table's shards: their union is compared).
        for (n, part) in job.parts.iter().enumerate() {
            let mut after: Option<Vec<Cell>> = None;
            loop {
                let chunk_started = Instant::now();
                let base = ChunkQuery {
                    utf8_text: true,
                    ..job.query(&part.table, after.as_deref(), None, true)
                };
                let side = &mut t.srcs[part.source].side;
                let upto = side.boundary(&base, opts.chunk_rows);
                let upto = upto.map_err(|e| t.src_err(n, &e))?;
                let q = ChunkQuery {
                    upto: upto.as_deref(),
                    ..base.clone()
                };
                let rows = t.srcs[part.source].side.rows(&q);
                let rows: Vec<Vec<Cell>> = rows
                    .map_err(|e| t.src_err(n, &e))?
                    .into_iter()
                    .map(|row| settle(&job.columns, row))
                    .collect();
                let keys: Vec<Vec<Cell>> = rows
                    .iter()
                    .map(|row| row[..job.key_len.min(row.len())].to_vec())
                    .collect();
                let mut diffs = compare::compare(&rows, &t.state_rows(&keys), job.key_len);
                matched.extend(keys);
                if t.running {
                    diffs = t.look_again(diffs, &[n])?;
                }
                r.rows += rows.len() as u64;
                r.equal += (rows.len() - diffs.len()) as u64;
                let shard = t.srcs[part.source].shard.clone();
                found.extend(diffs.into_iter().map(|d| (d, shard.clone())));
                r.took = started.elapsed();
                progress(&r);
                // At most `throttle_rows` source rows a second.
                if let Some(rate) = opts.throttle_rows {
                    let want = Duration::from_secs_f64(rows.len() as f64 / rate.max(1) as f64);
                    if let Some(rest) = want.checked_sub(chunk_started.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                match upto {
                    Some(k) => after = Some(k),
                    None => break,
                }
            }
        }
        // What the source does not have (looked at again while the project runs: a row
        // inserted after its chunk was read is in the topic too).
        let mut extra: Vec<Vec<Cell>> = t
            .latest
            .keys()
            .filter(|k| !matched.contains(*k))
            .cloned()
            .collect();
        extra.sort();
        let extra: Vec<Diff> = extra
            .into_iter()
            .map(|key| Diff {
                kind: Kind::Extra,
                key,
                columns: Vec::new(),
                source: None,
            })
            .collect();
        let extra = if t.running {
            // An extra key the source has now is one of its rows (inserted after its chunk
            // was read); one that is equal now is an equal row.
            let before = extra.len();
            let all: Vec<usize> = (0..job.parts.len()).collect();
            let extra = t.look_again(extra, &all)?;
            r.rows += (before - extra.iter().filter(|d| d.kind == Kind::Extra).count()) as u64;
            r.equal += (before - extra.len()) as u64;
            extra
        } else {
            extra
        };
        found.extend(extra.into_iter().map(|d| (d, None)));
        // Not running and behind the source: changes not delivered yet may be the differences.
        if !found.is_empty() && !t.running {
            for i in 0..t.srcs.len() {
                let end = t.srcs[i].catalog.end();
                let end = end.map_err(|e| VerifyRunError::Source(e.to_string()))?;
                r.behind |= t.checkpoint(i).is_some_and(|c| c < end);
            }
        }
        for (d, shard) in &found {
            match d.kind {
                Kind::Missing => r.missing += 1,
                Kind::Different => r.different += 1,
                Kind::Extra => r.extra += 1,
            }
            if r.examples.len() < opts.examples {
                let shard = if d.kind == Kind::Extra {
                    None
                } else {
                    shard.clone()
                };
                r.examples.push(difference(job, d, shard));
            }
            if opts.apply {
                match d.kind {
                    Kind::Extra => fix.gone.push(d.key.clone()),
                    _ => fix.rows.push(d.key.clone()),
                }
            }
        }
        r.took = started.elapsed();
        floor = floor.max(t.latest.max_sequence());
        if !fix.rows.is_empty() || !fix.gone.is_empty() {
            r.applied = true;
            r.redelivered = (fix.rows.len() + fix.gone.len()) as u64;
            work.push(fix);
        }
        meta.save_verify(&p.name, &record(&r))?;
        out.push(r);
    }
    if !work.is_empty() {
        let done = redeliver(p, floor, &work)
            .map_err(|e| VerifyRunError::Destination(format!("re-delivery: {e}")))?;
        tracing::info!(project = %p.name, rows = done.rows, deletes = done.deletes,
            vanished = done.vanished, first = done.first, last = done.last, "re-delivered");
    }
    Ok(out)
}
