//! The writer threads: each takes the jobs of the shards it serves, in order, and puts their
//! records one put at a time; records a put did not store are put again in order (see the
//! crate's invariants).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use sluice_datahub_protocol::pb;
use sluice_mq::tickets::{Failure, Tracker};

use crate::client::{self, CallError, Client};
use crate::{Job, Out, MAX_PUT_BYTES};

/// A writer thread: puts its jobs' records shard by shard, one put at a time.
pub(crate) fn writer(
    client: Client,
    project: String,
    per_put: usize,
    rx: mpsc::Receiver<Job>,
    tracker: Arc<Tracker>,
    halted: Arc<AtomicBool>,
) {
    while let Ok(job) = rx.recv() {
        let result = if halted.load(Ordering::SeqCst) {
            Err((
                job.records.first().map_or(0, |r| r.index),
                Failure::Transient("an earlier put failed; sent again in order".into()),
            ))
        } else {
            put_job(&client, &project, per_put, &job)
        };
        if result.is_err() {
            halted.store(true, Ordering::SeqCst);
        }
        tracker.report(job.ticket, result);
    }
}

fn put_job(
    client: &Client,
    project: &str,
    per_put: usize,
    job: &Job,
) -> Result<(), (usize, Failure)> {
    for (at, end) in put_ranges(job.records.iter().map(|r| r.bytes), per_put) {
        put_chunk(client, project, job, &job.records[at..end])?;
    }
    Ok(())
}

/// How a shard's records are cut into puts: in order, at most `per_put` records
/// (batch_records) and under the 4 MB request limit each (a record alone always makes one).
fn put_ranges(sizes: impl Iterator<Item = usize>, per_put: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut n, mut bytes) = (0, 0, 0);
    for (i, size) in sizes.enumerate() {
        // Each record's framing and field overhead, roughly.
        let b = size + 64;
        if n > 0 && (n >= per_put || bytes + b > MAX_PUT_BYTES) {
            out.push((start, i));
            (start, n, bytes) = (i, 0, 0);
        }
        n += 1;
        bytes += b;
    }
    if n > 0 {
        out.push((start, start + n));
    }
    out
}

/// Puts `chunk` until every record is stored: failed records (and later ones of their keys)
/// are put again, in order, for as long as puts store something (five rounds in a row that
/// store nothing fail the job, as does a failure that retrying cannot mend).
fn put_chunk(
    client: &Client,
    project: &str,
    job: &Job,
    chunk: &[Out],
) -> Result<(), (usize, Failure)> {
    let mut pending: Vec<&Out> = chunk.iter().collect();
    let mut backoff = Duration::from_millis(100);
    // Rounds in a row in which nothing was stored: a put that stores something is progress,
    // however often its records fail.
    let mut stalled = 0;
    loop {
        let entries: Vec<pb::RecordEntry> = pending.iter().map(|o| o.entry.clone()).collect();
        let first = pending.first().map_or(0, |o| o.index);
        let failed = match client.put(project, &job.topic, job.tuple, &entries) {
            Ok(f) => f,
            Err(e) => {
                let shard_gone = matches!(
                    e.code(),
                    Some("InvalidShardOperation") | Some("NoSuchShard")
                );
                let f = if shard_gone {
                    Failure::Transient(format!("shard {} of topic {} is closed (split or merged): {e}; shards are read again", job.shard, job.topic))
                } else if e.is_transient() {
                    Failure::Transient(e.to_string())
                } else if let CallError::Answer { status: 401, .. } = e {
                    Failure::Refused(format!("{e}; check destination.access_id and access_key"))
                } else {
                    Failure::Refused(e.to_string())
                };
                return Err((first, f));
            }
        };
        if failed.is_empty() {
            return Ok(());
        }
        // What failed, and whether retrying can mend it.
        let mut keys: HashSet<&[u8]> = HashSet::new();
        let mut failed_at: Vec<usize> = Vec::new();
        for (i, code, msg) in &failed {
            let Some(o) = pending.get(*i) else { continue };
            if code == "InvalidShardOperation" || code == "NoSuchShard" {
                return Err((o.index, Failure::Transient(format!(
                    "shard {} of topic {} is closed (split or merged): {msg}; shards are read again",
                    job.shard, job.topic
                ))));
            }
            if !client::transient_code(code) {
                return Err((
                    o.index,
                    Failure::Refused(format!(
                        "datahub refused a record of topic {}: {code}: {msg}",
                        job.topic
                    )),
                ));
            }
            keys.insert(&o.key);
            failed_at.push(*i);
        }
        let Some(&lowest) = failed_at.iter().min() else {
            return Ok(());
        };
        if failed_at.len() < pending.len() {
            stalled = 0;
            backoff = Duration::from_millis(100);
        } else {
            stalled += 1;
        }
        if stalled >= 5 {
            let (_, code, msg) = &failed[0];
            return Err((
                pending[lowest].index,
                Failure::Transient(format!(
                    "datahub kept failing records of topic {}: {code}: {msg}",
                    job.topic
                )),
            ));
        }
        let failed_set: HashSet<usize> = failed_at.into_iter().collect();
        pending = pending
            .iter()
            .enumerate()
            .filter(|(i, o)| {
                failed_set.contains(i) || (*i > lowest && keys.contains(o.key.as_slice()))
            })
            .map(|(_, o)| *o)
            .collect();
        if stalled > 0 {
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// The writer that serves a shard: always the same one, so a shard's puts leave in order.
pub(crate) fn lane_hash(topic: &str, shard: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    topic.hash(&mut h);
    shard.hash(&mut h);
    h.finish() as usize
}

/// The bytes a record counts for (its values and attributes), against the record and put limits.
pub(crate) fn entry_bytes(e: &pb::RecordEntry) -> usize {
    e.data
        .data
        .iter()
        .map(|f| f.value.as_ref().map_or(0, Vec::len))
        .sum::<usize>()
        + e.attributes.as_ref().map_or(0, |a| {
            a.attributes
                .iter()
                .map(|p| p.key.len() + p.value.len())
                .sum()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_hold_at_most_batch_records_and_stay_under_four_megabytes() {
        assert_eq!(
            put_ranges([10usize; 7].into_iter(), 3),
            vec![(0, 3), (3, 6), (6, 7)]
        );
        assert_eq!(put_ranges(std::iter::empty(), 3), vec![]);
        // 1 MB records: four do not fit one put.
        let mb = 1024 * 1024 - 100;
        assert_eq!(put_ranges([mb; 5].into_iter(), 500), vec![(0, 3), (3, 5)]);
    }
}
