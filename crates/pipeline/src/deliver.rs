//! Delivering batches, for both stages: several batches in flight, acknowledgements turned
//! into checkpoint marks in send order, and one way of waiting out an unavailable destination.
//!
//! Invariants:
//! - [`InFlight::complete_front`] returns a batch's mark only when that batch and every batch
//!   sent before it were acknowledged: a checkpoint built from the marks covers exactly the
//!   contiguous acknowledged prefix, never a change the destination has not acknowledged.
//! - After a transient failure, every batch in flight from the failed one on is sent again,
//!   in send order, so the destination sees the failed batch again before anything after it
//!   (a later batch it already took arrives a second time; per-key order still ends right).
//! - Stopping while the destination is unavailable records nothing of what is in flight: it
//!   is sent again on the next run.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::sink::{DeliveryItem, Sink, SinkError};
use sluice_meta::MetaStore;

use crate::error::RunError;
use crate::metrics::Metrics;

/// The project's state and status note, on a connection of its own to the metadata store (so
/// that the stage loop keeps its own for checkpoints, and a destination's outage notifier can
/// hold one on another thread).
#[derive(Clone)]
pub(crate) struct Status {
    meta: Arc<Mutex<MetaStore>>,
    project: String,
}

impl Status {
    pub(crate) fn open(dir: &Path, project: &str) -> Result<Self, sluice_meta::MetaError> {
        Ok(Self {
            meta: Arc::new(Mutex::new(MetaStore::open(dir)?)),
            project: project.to_string(),
        })
    }

    /// The project runs in `stage`; `note` says what it waits for (empty: nothing).
    pub(crate) fn running(&self, stage: &str, note: &str) {
        if let Ok(m) = self.meta.lock() {
            let _ = m.set_state(&self.project, stage, "Running", note);
        }
    }
}

/// Waits out an unavailable destination with a growing backoff, saying so in the project's
/// status ("retrying: ..."), and clears that when delivery works again.
pub(crate) struct Retry<'a> {
    status: &'a Status,
    stage: &'static str,
    stop: &'a AtomicBool,
    metrics: &'a Metrics,
    backoff: Duration,
    retried: bool,
}

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl<'a> Retry<'a> {
    pub(crate) fn new(
        status: &'a Status,
        stage: &'static str,
        stop: &'a AtomicBool,
        metrics: &'a Metrics,
    ) -> Self {
        Self {
            status,
            stage,
            stop,
            metrics,
            backoff: FIRST_BACKOFF,
            retried: false,
        }
    }

    /// A transient failure: records it and waits. False when the run is stopping instead
    /// (nothing more is tried; what is in flight is sent again on the next run).
    pub(crate) fn failed(&mut self, e: &str) -> bool {
        self.metrics.error("writer");
        self.status.running(self.stage, &format!("retrying: {e}"));
        if self.stop.load(Ordering::SeqCst) {
            return false;
        }
        tracing::warn!(project = %self.status.project, "destination unavailable, retrying in {:?}: {e}", self.backoff);
        self.retried = true;
        std::thread::sleep(self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        true
    }

    /// Delivery works: status stops saying it is retrying.
    pub(crate) fn succeeded(&mut self) {
        if self.retried {
            self.status.running(self.stage, "");
            self.retried = false;
        }
        self.backoff = FIRST_BACKOFF;
    }
}

/// A batch acknowledged, with its mark.
pub(crate) struct Acked<M> {
    pub(crate) items: Vec<DeliveryItem>,
    pub(crate) mark: M,
}

struct Batch<M> {
    /// None while it is not (or no longer) sent; an empty batch is never sent.
    ticket: Option<u64>,
    items: Vec<DeliveryItem>,
    mark: M,
}

/// Batches sent and not yet acknowledged, oldest first.
pub(crate) struct InFlight<M> {
    batches: VecDeque<Batch<M>>,
    max: usize,
}

fn definite(e: SinkError) -> RunError {
    RunError::Sink(e)
}

impl<M> InFlight<M> {
    /// At most `max` batches in flight (at least one).
    pub(crate) fn new(max: usize) -> Self {
        Self {
            batches: VecDeque::new(),
            max: max.max(1),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.batches.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Whether the next send must first wait for the oldest batch.
    pub(crate) fn is_full(&self) -> bool {
        self.batches.len() >= self.max
    }

    /// Sends a batch (empty: only its mark, which still waits for every batch before it).
    /// Ok(false) when stopping while the destination is unavailable.
    pub(crate) fn send(
        &mut self,
        sink: &mut dyn Sink,
        items: Vec<DeliveryItem>,
        mark: M,
        retry: &mut Retry<'_>,
    ) -> Result<bool, RunError> {
        let ticket = if items.is_empty() {
            None
        } else {
            match send_retrying(sink, &items, retry)? {
                Some(t) => Some(t),
                None => return Ok(false),
            }
        };
        self.batches.push_back(Batch {
            ticket,
            items,
            mark,
        });
        Ok(true)
    }

    /// Waits for the oldest batch and returns it with its mark, sending everything in flight
    /// again while the destination is unavailable. None when nothing is in flight, or when the
    /// run stops while waiting (then nothing in flight is returned: it is all sent again on
    /// the next run).
    pub(crate) fn complete_front(
        &mut self,
        sink: &mut dyn Sink,
        retry: &mut Retry<'_>,
    ) -> Result<Option<Acked<M>>, RunError> {
        loop {
            let Some(front) = self.batches.front() else {
                return Ok(None);
            };
            let result = match front.ticket {
                None if front.items.is_empty() => Ok(()),
                None => Err(SinkError::Unavailable("not sent".into())),
                Some(t) => sink.wait(t, &front.items),
            };
            match result {
                Ok(()) => {
                    retry.succeeded();
                    let Some(b) = self.batches.pop_front() else {
                        return Ok(None);
                    };
                    return Ok(Some(Acked {
                        items: b.items,
                        mark: b.mark,
                    }));
                }
                Err(SinkError::Unavailable(e)) => {
                    if let Some(b) = self.batches.front_mut() {
                        b.ticket = None;
                    }
                    // Collect the later batches' outcomes (their tickets end here)...
                    for b in self.batches.iter_mut().skip(1) {
                        if let Some(t) = b.ticket.take() {
                            let _ = sink.wait(t, &b.items);
                        }
                    }
                    if !retry.failed(&e) {
                        self.batches.clear();
                        return Ok(None);
                    }
                    // ...then send them all again, oldest first.
                    for i in 0..self.batches.len() {
                        let Some(b) = self.batches.get(i) else { break };
                        if b.items.is_empty() {
                            continue;
                        }
                        let Some(t) = send_retrying(sink, &b.items, retry)? else {
                            self.batches.clear();
                            return Ok(None);
                        };
                        if let Some(b) = self.batches.get_mut(i) {
                            b.ticket = Some(t);
                        }
                    }
                }
                Err(e) => return Err(definite(e)),
            }
        }
    }
}

/// Sends one batch, waiting out an unavailable destination; None when stopping instead.
fn send_retrying(
    sink: &mut dyn Sink,
    items: &[DeliveryItem],
    retry: &mut Retry<'_>,
) -> Result<Option<u64>, RunError> {
    loop {
        match sink.send(items) {
            Ok(t) => return Ok(Some(t)),
            Err(SinkError::Unavailable(e)) => {
                if !retry.failed(&e) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(definite(e)),
        }
    }
}

#[cfg(test)]
mod tests;
