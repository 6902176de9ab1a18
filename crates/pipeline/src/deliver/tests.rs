//! The in-order acknowledgement rules, against a destination whose outcomes the test decides.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicBool;

use sluice_core::sink::{DeliveryItem, Sink, SinkError};
use sluice_core::Event;

use super::*;

/// Records every batch it is sent (by its id, the heartbeat time of its item) and answers
/// each wait with the next outcome scripted for that batch (Ok when none is left).
#[derive(Default)]
struct Scripted {
    sent: Vec<u64>,
    tickets: HashMap<u64, u64>,
    next: u64,
    outcomes: HashMap<u64, VecDeque<Result<(), SinkError>>>,
}

fn batch(id: u64) -> Vec<DeliveryItem> {
    vec![DeliveryItem {
        event: Event::Heartbeat {
            pos: sluice_core::Position::new("binlog", "b.000001", id),
            ts_ms: id,
        },
        snapshot: false,
        sequence: Some(id),
        txn_number: id,
        last_in_txn: true,
        key_change: None,
    }]
}

fn id_of(items: &[DeliveryItem]) -> u64 {
    match items.first().map(|i| &i.event) {
        Some(Event::Heartbeat { ts_ms, .. }) => *ts_ms,
        _ => u64::MAX,
    }
}

impl Sink for Scripted {
    fn prepare(&mut self, _: &[sluice_core::TableSpec]) -> Result<(), SinkError> {
        Ok(())
    }
    fn send(&mut self, items: &[DeliveryItem]) -> Result<u64, SinkError> {
        self.next += 1;
        self.sent.push(id_of(items));
        self.tickets.insert(self.next, id_of(items));
        Ok(self.next)
    }
    fn wait(&mut self, ticket: u64, items: &[DeliveryItem]) -> Result<(), SinkError> {
        assert_eq!(
            self.tickets.remove(&ticket),
            Some(id_of(items)),
            "waited with its own items, once"
        );
        self.outcomes
            .get_mut(&id_of(items))
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(()))
    }
}

fn with_retry(stop: bool, f: impl FnOnce(&mut Retry<'_>)) {
    let dir = std::env::temp_dir().join(format!(
        "sluice-deliver-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let status = Status::open(&dir, "p").expect("store");
    let metrics = Metrics::new("deliver-test").expect("metrics");
    let stop = AtomicBool::new(stop);
    let mut retry = Retry::new(&status, "incremental", &stop, &metrics);
    f(&mut retry);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn marks_come_back_in_send_order_and_an_empty_batch_waits_its_turn() {
    with_retry(false, |retry| {
        let mut sink = Scripted::default();
        let mut f = InFlight::new(4);
        assert!(f.send(&mut sink, batch(1), "one", retry).expect("sent"));
        assert!(f
            .send(&mut sink, Vec::new(), "only a mark", retry)
            .expect("sent"));
        assert!(f.send(&mut sink, batch(3), "three", retry).expect("sent"));
        assert_eq!(f.len(), 3);
        assert!(!f.is_full());
        let mut marks = Vec::new();
        while let Some(a) = f.complete_front(&mut sink, retry).expect("acked") {
            marks.push(a.mark);
        }
        assert_eq!(marks, ["one", "only a mark", "three"]);
        assert_eq!(sink.sent, [1, 3], "an empty batch is never sent");
    });
}

#[test]
fn after_a_transient_failure_everything_in_flight_is_sent_again_in_order() {
    with_retry(false, |retry| {
        let mut sink = Scripted::default();
        sink.outcomes.insert(
            2,
            [Err(SinkError::Unavailable("broker gone".into()))].into(),
        );
        let mut f = InFlight::new(4);
        for id in 1..=3 {
            assert!(f.send(&mut sink, batch(id), id, retry).expect("sent"));
        }
        let mut marks = Vec::new();
        while let Some(a) = f.complete_front(&mut sink, retry).expect("acked") {
            marks.push(a.mark);
        }
        // Batch 3 was taken before batch 2 failed: it is sent again after 2, never passed.
        assert_eq!(marks, [1, 2, 3]);
        assert_eq!(sink.sent, [1, 2, 3, 2, 3]);
    });
}

#[test]
fn a_definite_failure_stops_and_stopping_during_an_outage_acknowledges_nothing() {
    with_retry(false, |retry| {
        let mut sink = Scripted::default();
        sink.outcomes
            .insert(1, [Err(SinkError::Rejected("too large".into()))].into());
        let mut f = InFlight::new(2);
        assert!(f.send(&mut sink, batch(1), (), retry).expect("sent"));
        let e = f.complete_front(&mut sink, retry).err().expect("definite");
        assert!(e.to_string().contains("too large"), "{e}");
    });
    with_retry(true, |retry| {
        let mut sink = Scripted::default();
        sink.outcomes
            .insert(1, [Err(SinkError::Unavailable("down".into()))].into());
        let mut f = InFlight::new(2);
        assert!(f.send(&mut sink, batch(1), (), retry).expect("sent"));
        assert!(f.send(&mut sink, batch(2), (), retry).expect("sent"));
        assert!(f
            .complete_front(&mut sink, retry)
            .expect("no error")
            .is_none());
        assert!(f.is_empty(), "nothing in flight is recorded");
    });
}
