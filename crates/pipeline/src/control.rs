//! What slows or holds a running project: throttles (rows/s, bytes/s) and pause/resume.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_meta::MetaStore;

/// Keeps the delivered rows and bytes at or under their per-second limits, measured from the
/// start of the run: after each batch, waits until the totals are within the budget.
pub(crate) struct Throttle {
    rows_per_s: Option<u64>,
    bytes_per_s: Option<u64>,
    start: Instant,
    rows: u64,
    bytes: u64,
}

impl Throttle {
    pub(crate) fn new(rows_per_s: Option<u64>, bytes_per_s: Option<u64>) -> Self {
        Self {
            rows_per_s,
            bytes_per_s,
            start: Instant::now(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Counts a delivered batch and sleeps as long as the limits require (or until `stop`).
    pub(crate) fn after(&mut self, rows: u64, bytes: u64, stop: &AtomicBool) {
        self.rows += rows;
        self.bytes += bytes;
        let need =
            |total: u64, limit: Option<u64>| limit.map_or(0.0, |l| total as f64 / l.max(1) as f64);
        let due = need(self.rows, self.rows_per_s).max(need(self.bytes, self.bytes_per_s));
        let until = self.start + Duration::from_secs_f64(due);
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
        }
    }
}

/// Pause requests (`sluice project pause`, SIGUSR1) are read from the metadata store, at most
/// once per 500 ms.
pub(crate) struct PauseCheck {
    last: Instant,
    /// A sharded project's name, when this run is one of its parts: pausing the project pauses
    /// every part.
    parent: Option<String>,
}

impl PauseCheck {
    pub(crate) fn new(parent: Option<String>) -> Self {
        Self {
            last: Instant::now() - Duration::from_secs(1),
            parent,
        }
    }

    fn asked(&self, meta: &MetaStore, project: &str) -> bool {
        meta.paused(project).unwrap_or(false)
            || self
                .parent
                .as_deref()
                .is_some_and(|p| meta.paused(p).unwrap_or(false))
    }

    /// Whether a look at the store is due.
    pub(crate) fn last_due(&self) -> bool {
        self.last.elapsed() >= Duration::from_millis(500)
    }

    /// If the project was asked to pause: records state Paused, waits until resumed (or
    /// `stop`), records Running again. Nothing is read or delivered meanwhile; the reader
    /// blocks on its full channel.
    pub(crate) fn hold(&mut self, meta: &MetaStore, project: &str, stage: &str, stop: &AtomicBool) {
        if self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        if !self.asked(meta, project) {
            return;
        }
        tracing::info!(project, "paused");
        let _ = meta.set_state(project, stage, "Paused", "");
        while !stop.load(Ordering::SeqCst) && self.asked(meta, project) {
            std::thread::sleep(Duration::from_millis(200));
        }
        tracing::info!(project, "resumed");
        let _ = meta.set_state(project, stage, "Running", "");
    }
}
