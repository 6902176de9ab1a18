//! The bookkeeping of batches in flight that message-queue destinations with their own
//! sending threads share (RocketMQ lanes, DataHub writers): each batch (ticket) is split into
//! jobs, each job reports once, failed or not, and `wait` returns when all of a ticket's jobs
//! reported, woken by the reports (no polling loop).
//!
//! Every job reports even after a failure, so that a batch sent again never overtakes a job
//! of an earlier send still running.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use sluice_core::sink::{DeliveryItem, SinkError};

/// Why a job could not deliver its messages: retrying may help, or cannot.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Sent again later (unreachable, throttled, a closed shard, ...).
    Transient(String),
    /// Refused for good: the project stops.
    Refused(String),
}

#[derive(Default)]
struct TicketState {
    pending: usize,
    /// Key and payload bytes the batch sends (acknowledged when it is).
    bytes: u64,
    /// The first failure: the message's index in the batch, and why.
    failed: Option<(usize, Failure)>,
}

/// Batches in flight and their jobs' reports.
#[derive(Default)]
pub struct Tracker {
    tickets: Mutex<HashMap<u64, TicketState>>,
    done: Condvar,
}

impl Tracker {
    /// Starts `ticket` with `jobs` jobs to report, sending `bytes` of keys and payloads.
    pub fn open(&self, ticket: u64, jobs: usize, bytes: u64) {
        if let Ok(mut t) = self.tickets.lock() {
            t.insert(
                ticket,
                TicketState {
                    pending: jobs,
                    bytes,
                    failed: None,
                },
            );
        }
    }

    /// One job of `ticket` finished; a failure names the index of the message it failed at.
    pub fn report(&self, ticket: u64, result: Result<(), (usize, Failure)>) {
        if let Ok(mut all) = self.tickets.lock() {
            if let Some(t) = all.get_mut(&ticket) {
                t.pending = t.pending.saturating_sub(1);
                if let Err(f) = result {
                    t.failed.get_or_insert(f);
                }
            }
        }
        self.done.notify_all();
    }

    /// Whether no batch is in flight.
    pub fn idle(&self) -> bool {
        self.tickets.lock().map(|t| t.is_empty()).unwrap_or(false)
    }

    /// Waits until every job of `ticket` reported and forgets it: its bytes when all were
    /// delivered, else its first failure.
    pub fn wait(&self, ticket: u64) -> Result<Result<u64, (usize, Failure)>, SinkError> {
        let poisoned = || SinkError::Unavailable("delivery bookkeeping poisoned".into());
        let mut all = self.tickets.lock().map_err(|_| poisoned())?;
        loop {
            match all.get(&ticket) {
                None => break,
                Some(t) if t.pending == 0 => break,
                Some(_) => {}
            }
            all = self
                .done
                .wait_timeout(all, Duration::from_secs(1))
                .map_err(|_| poisoned())?
                .0;
        }
        let state = all.remove(&ticket).unwrap_or_default();
        Ok(match state.failed {
            None => Ok(state.bytes),
            Some(f) => Err(f),
        })
    }
}

/// The error of a batch whose message `index` failed: `"{dest} did not {verb} the change of
/// T (key K) at P: why"` when transient, `"{dest} refused the change of ..."` when not.
pub fn batch_error(
    dest: &str,
    verb: &str,
    items: &[DeliveryItem],
    (index, f): (usize, Failure),
) -> SinkError {
    let (t, p) = items
        .get(index)
        .map(|it| crate::describe(&it.event))
        .unwrap_or_default();
    let key = items
        .get(index)
        .map(|it| crate::key_text(&crate::key_of(&it.event)))
        .unwrap_or_default();
    match f {
        Failure::Transient(m) => SinkError::Unavailable(format!(
            "{dest} did not {verb} the change of {t} (key {key}) at {p}: {m}"
        )),
        Failure::Refused(m) => SinkError::Rejected(format!(
            "{dest} refused the change of {t} (key {key}) at {p}: {m}"
        )),
    }
}
