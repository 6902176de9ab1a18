//! Verification of a message-queue destination: the destination's latest state per key is
//! rebuilt from what it was delivered ([`StateSide`]), then the source is walked in key-range
//! chunks (text rendered as UTF-8, as messages carry it) and each source row is matched with
//! the state by key; keys left in the state at the end are extra. Messages cannot be ordered by
//! the source's collation, so the state is held whole (memory grows with the table).
//!
//! With `--apply`, the keys that differ are corrected by re-delivery
//! (`sluice_pipeline::redeliver`): the source's current rows of the missing and different keys
//! as fresh messages, deletes of the extra keys, numbered after every sequence found in the
//! topics.
//!
//! Not built yet: while the project runs (refused: stop it first), sharded sources.

use std::time::Instant;

use sluice_core::verify::{Cell, ChunkQuery, StateSide, VerifyColumn};
use sluice_meta::MetaStore;
use sluice_pipeline::redeliver::{redeliver, Redelivery};
use sluice_pipeline::Project;

use crate::compare::{self, Kind};
use crate::worker::{difference, side};
use crate::{jobs, record, Options, TableReport, VerifyRunError};

/// A row with each cell in the form both renderings agree on ([`VerifyColumn::settled`]).
fn settle(columns: &[VerifyColumn], row: Vec<Cell>) -> Vec<Cell> {
    row.into_iter()
        .zip(columns)
        .map(|(c, col)| col.settled(c))
        .collect()
}

pub(crate) fn verify(
    p: &Project,
    opts: &Options,
    mut state: Box<dyn StateSide>,
    progress: &(dyn Fn(&TableReport) + Sync),
) -> Result<Vec<TableReport>, VerifyRunError> {
    let not_built = |m: &str| Err(VerifyRunError::NotBuilt(m.to_string()));
    if !p.shards.is_empty() {
        return not_built("verification of a sharded source into a message queue is not built yet");
    }
    if opts.corrections && !opts.apply {
        return not_built(
            "a message-queue destination is corrected by re-delivering the keys that differ \
             (--apply); --correction writes SQL for database destinations",
        );
    }
    if sluice_pipeline::is_running(&p.data_dir, &p.name) {
        return not_built(
            "the project is running: stop it first (verifying a message-queue destination \
             while changes flow is not built yet)",
        );
    }
    let jobs = jobs::jobs(p, opts)?;
    let source = p
        .source
        .open()
        .map_err(|e| VerifyRunError::Source(e.to_string()))?;
    let mut src = side(source.as_ref())?;
    let meta = MetaStore::open(&p.data_dir)?;
    let mut out = Vec::new();
    // With --apply: what to deliver again, and the highest sequence the topics hold.
    let mut work: Vec<Redelivery> = Vec::new();
    let mut floor = 0u64;
    for job in &jobs {
        let started = Instant::now();
        let mut r = TableReport::new(job);
        let mut fix = Redelivery {
            table: job.table.clone(),
            key: job.columns[..job.key_len].to_vec(),
            rows: Vec::new(),
            gone: Vec::new(),
        };
        let mut left = match state.state(&job.to, &job.columns, job.key_len) {
            Ok(s) => {
                floor = floor.max(s.max_sequence);
                s.rows
            }
            Err(e) => {
                r.error = Some(format!("destination: {e}"));
                meta.save_verify(&p.name, &record(&r))?;
                out.push(r);
                continue;
            }
        };
        let part = &job.parts[0];
        let mut after: Option<Vec<Cell>> = None;
        loop {
            let base = ChunkQuery {
                utf8_text: true,
                ..job.query(&part.table, after.as_deref(), None, true)
            };
            let src_err =
                |e: &dyn std::fmt::Display| VerifyRunError::Source(format!("{}: {e}", part.table));
            let upto = src
                .boundary(&base, opts.chunk_rows)
                .map_err(|e| src_err(&e))?;
            let q = ChunkQuery {
                upto: upto.as_deref(),
                ..base.clone()
            };
            let rows: Vec<Vec<Cell>> = src
                .rows(&q)
                .map_err(|e| src_err(&e))?
                .into_iter()
                .map(|r| settle(&job.columns, r))
                .collect();
            // The destination's rows of these keys, taken out of the state.
            let dest: Vec<Vec<Cell>> = rows
                .iter()
                .filter_map(|row| left.remove(&row[..job.key_len.min(row.len())]))
                .map(|r| settle(&job.columns, r))
                .collect();
            let diffs = compare::compare(&rows, &dest, job.key_len);
            r.rows += rows.len() as u64;
            r.equal += (rows.len() - diffs.len()) as u64;
            for d in &diffs {
                match d.kind {
                    Kind::Missing => r.missing += 1,
                    Kind::Different => r.different += 1,
                    Kind::Extra => r.extra += 1,
                }
                if r.examples.len() < opts.examples {
                    r.examples.push(difference(job, d, None));
                }
                if opts.apply {
                    fix.rows.push(d.key.clone());
                }
            }
            r.took = started.elapsed();
            progress(&r);
            match upto {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        // What the source does not have.
        let mut extra: Vec<Vec<Cell>> = left.into_keys().collect();
        extra.sort();
        r.extra += extra.len() as u64;
        for key in extra {
            if opts.apply {
                fix.gone.push(key.clone());
            }
            if r.examples.len() < opts.examples {
                let d = compare::Diff {
                    kind: Kind::Extra,
                    key,
                    columns: Vec::new(),
                    source: None,
                };
                r.examples.push(difference(job, &d, None));
            }
        }
        r.took = started.elapsed();
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
