//! Several batches in flight at the database destination: each writer applies its shares of
//! successive batches in send order on a lane of its own, without waiting at the end of every
//! batch for the slowest of the other writers.
//!
//! Invariants:
//! - A lane applies its shares one after another, in send order, each in one transaction
//!   together with its writer's checkpoint row. A key always goes to the same writer, so its
//!   changes keep their order; and a writer has committed exactly every change of its keys up
//!   to its checkpoint row, which is what skipping replayed changes relies on.
//! - Once a share failed, its lane applies nothing more until the sink settles the lanes: its
//!   later shares report that they were not applied, so their batches are applied again (by
//!   the sink, or sent again by the pipeline) and nothing after the failure is skipped.
//! - Only batches whose every change goes to a table written in place (its only unique key is
//!   the source's key) overlap: writers then write disjoint rows and no other unique key, so a
//!   writer ahead of the others can neither collide with nor wait for their rows. Every other
//!   batch is applied alone, after every lane settled (lib.rs).
//! - The lanes have their own runtime (one thread) and their own sessions, connected when a lane
//!   first runs: the sink's other calls keep a runtime of the calling thread, whose I/O needs
//!   no hand-over between threads (full sync measured a tenth slower on a shared runtime).

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::Conn;
use sluice_core::sink::SinkError;
use sluice_core::{TableId, TableSchema, Value};
use tokio::task::JoinHandle;

use std::collections::hash_map::Entry;

use sluice_core::sink::DeliveryItem;
use sluice_core::Event;

use crate::apply::{action_table, commit_share, merged, Action, Landing};
use crate::dest_tables::KeyOnly;
use crate::session::{connect, session_settings};
use crate::writers::{split, Share};
use crate::MysqlSink;
use sluice_mysql_client::Endpoint;

/// An action that owns its row, so a lane can apply it after `send` returned.
pub(crate) enum Owned {
    /// See [`Action::Put`].
    Put(Arc<TableSchema>, Vec<Value>, Option<u64>),
    /// See [`Action::Remove`].
    Remove(Arc<TableSchema>, Vec<Value>),
}

impl Owned {
    /// `a`, whose table is `table`, copied.
    pub(crate) fn of(a: &Action<'_>, table: &Arc<TableSchema>) -> Self {
        match a {
            Action::Put(_, row, mask) => Self::Put(table.clone(), row.to_vec(), *mask),
            Action::Remove(_, key) => {
                Self::Remove(table.clone(), key.iter().map(|v| (*v).clone()).collect())
            }
        }
    }

    fn action(&self) -> Action<'_> {
        match self {
            Self::Put(s, row, mask) => Action::Put(s, row, *mask),
            Self::Remove(s, key) => Action::Remove(s, key.iter().collect()),
        }
    }
}

/// One writer's part of an overlapped batch.
pub(crate) struct LaneShare {
    pub(crate) acts: Vec<Owned>,
    /// The highest source sequence among them and that change's position.
    pub(crate) top: Option<(u64, String)>,
}

/// What every share of one batch needs to know about the destination.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) merge: Arc<HashMap<TableId, TableId>>,
    pub(crate) key_only: Arc<HashMap<TableId, Vec<String>>>,
    pub(crate) meta_db: Arc<str>,
    pub(crate) project: Arc<str>,
}

/// A share's outcome.
pub(crate) struct Done {
    pub(crate) ticket: u64,
    pub(crate) writer: usize,
    pub(crate) result: Result<(), SinkError>,
    /// The share's highest sequence (what the writer applied, when it succeeded).
    pub(crate) top: Option<u64>,
    /// Not applied because an earlier share of the lane failed.
    pub(crate) chained: bool,
}

/// What a lane hands back when its last share ended: its connection (None when lost) and
/// whether a share failed.
struct LaneEnd {
    conn: Option<Conn>,
    failed: bool,
}

/// A batch in flight on the lanes.
#[derive(Default)]
pub(crate) struct Ticket {
    /// Shares not yet done.
    left: usize,
    /// The first error of a share that ran.
    pub(crate) error: Option<SinkError>,
    /// Some share was not applied because of an earlier failure of its lane.
    pub(crate) chained: bool,
}

/// The writers' lanes.
pub(crate) struct Lanes {
    /// Started with the first lane.
    rt: Option<tokio::runtime::Runtime>,
    /// How a lane connects.
    endpoint: Endpoint,
    /// Per writer: its lane's session while no share runs (None: connected by its next share).
    conns: Vec<Option<Conn>>,
    /// Per writer: the task of its last share (it holds the writer's connection).
    running: Vec<Option<JoinHandle<LaneEnd>>>,
    tx: Sender<Done>,
    rx: Receiver<Done>,
    tickets: BTreeMap<u64, Ticket>,
}

impl Lanes {
    pub(crate) fn new(writers: usize, endpoint: Endpoint) -> Self {
        let (tx, rx) = channel();
        Self {
            rt: None,
            endpoint,
            conns: (0..writers).map(|_| None).collect(),
            running: (0..writers).map(|_| None).collect(),
            tx,
            rx,
            tickets: BTreeMap::new(),
        }
    }

    /// Nothing in flight and nothing to report.
    pub(crate) fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    /// Whether a batch in flight has a share that failed.
    pub(crate) fn any_failed(&self) -> bool {
        self.tickets
            .values()
            .any(|t| t.error.is_some() || t.chained)
    }

    /// Queues batch `ticket`'s shares (index = writer) on their lanes.
    pub(crate) fn push(
        &mut self,
        ticket: u64,
        shares: Vec<LaneShare>,
        cx: &Context,
    ) -> Result<(), SinkError> {
        if self.rt.is_none() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("sluice-db-lanes")
                .enable_all()
                .build()
                .map_err(|e| SinkError::Unavailable(format!("start the writers' lanes: {e}")))?;
            self.rt = Some(rt);
        }
        let Some(rt) = self.rt.as_ref() else {
            return Err(SinkError::Unavailable(
                "the writers' lanes did not start".into(),
            ));
        };
        let mut left = 0;
        for (w, share) in shares.into_iter().enumerate() {
            if share.acts.is_empty() && share.top.is_none() {
                continue;
            }
            left += 1;
            let prev = self.running.get_mut(w).and_then(Option::take);
            let idle = if prev.is_none() {
                self.conns.get_mut(w).and_then(Option::take)
            } else {
                None
            };
            let (tx, cx, endpoint) = (self.tx.clone(), cx.clone(), self.endpoint.clone());
            let task = rt.spawn(async move {
                let (conn, failed) = match prev {
                    Some(p) => match p.await {
                        Ok(end) => (end.conn, end.failed),
                        Err(_) => (None, true),
                    },
                    None => (idle, false),
                };
                // A lane's first share, or the first after its session was lost, connects.
                let (conn, failed) = match (conn, failed) {
                    (None, false) => match lane_session(&endpoint).await {
                        Ok(c) => (Some(c), false),
                        Err(e) => {
                            let _ = tx.send(Done {
                                ticket,
                                writer: w,
                                result: Err(e),
                                top: None,
                                chained: false,
                            });
                            return LaneEnd {
                                conn: None,
                                failed: true,
                            };
                        }
                    },
                    other => other,
                };
                let top = share.top.as_ref().map(|(s, _)| *s);
                let (conn, result, chained) = match conn {
                    Some(mut c) if !failed => {
                        let r = run(&mut c, &share, &cx, w).await;
                        // A lost connection is replaced once the lanes settle.
                        let keep = !matches!(r, Err(SinkError::Unavailable(_)));
                        (keep.then_some(c), r, false)
                    }
                    c => (
                        c,
                        Err(SinkError::Unavailable(format!(
                            "not applied: an earlier batch of writer {w} failed"
                        ))),
                        true,
                    ),
                };
                let failed = result.is_err();
                let _ = tx.send(Done {
                    ticket,
                    writer: w,
                    result,
                    top,
                    chained,
                });
                LaneEnd { conn, failed }
            });
            if let Some(slot) = self.running.get_mut(w) {
                *slot = Some(task);
            }
        }
        self.tickets.insert(
            ticket,
            Ticket {
                left,
                ..Ticket::default()
            },
        );
        Ok(())
    }

    /// Waits for every share of batch `ticket`, handing each outcome (of this batch or an
    /// earlier one) to `account`; returns the batch's ticket (None: not on the lanes).
    pub(crate) fn wait(&mut self, ticket: u64, account: &mut dyn FnMut(&Done)) -> Option<Ticket> {
        loop {
            match self.tickets.get(&ticket) {
                Some(t) if t.left > 0 => {}
                _ => return self.tickets.remove(&ticket),
            }
            match self.rx.recv_timeout(Duration::from_secs(1)) {
                Ok(d) => self.record(d, account),
                Err(RecvTimeoutError::Timeout) => {
                    // A task that ended without reporting (it panicked) would leave this
                    // waiting for ever.
                    if self.running.iter().flatten().all(JoinHandle::is_finished) {
                        while let Ok(d) = self.rx.try_recv() {
                            self.record(d, account);
                        }
                        if let Some(t) = self.tickets.get_mut(&ticket).filter(|t| t.left > 0) {
                            // Counted as failed: nothing of the batch is assumed applied.
                            t.left = 0;
                            t.error.get_or_insert(SinkError::Unavailable(
                                "a writer ended without reporting its share".into(),
                            ));
                        }
                    }
                }
                // Never: the lanes hold a sender themselves.
                Err(RecvTimeoutError::Disconnected) => {
                    let mut t = self.tickets.remove(&ticket)?;
                    t.error
                        .get_or_insert(SinkError::Unavailable("the writers' lanes closed".into()));
                    return Some(t);
                }
            }
        }
    }

    /// Waits until every lane ran its last share and keeps their sessions (None for a lost
    /// one); every outcome goes to `account`. The lanes then run afresh.
    pub(crate) fn settle(&mut self, account: &mut dyn FnMut(&Done)) {
        let running: Vec<(usize, JoinHandle<LaneEnd>)> = self
            .running
            .iter_mut()
            .enumerate()
            .filter_map(|(w, r)| r.take().map(|h| (w, h)))
            .collect();
        if let (false, Some(rt)) = (running.is_empty(), self.rt.as_ref()) {
            let ends = rt.block_on(futures_util::future::join_all(
                running
                    .into_iter()
                    .map(|(w, h)| async move { (w, h.await) }),
            ));
            for (w, end) in ends {
                if let Some(c) = self.conns.get_mut(w) {
                    *c = end.ok().and_then(|e| e.conn);
                }
            }
        }
        while let Ok(d) = self.rx.try_recv() {
            self.record(d, account);
        }
    }

    fn record(&mut self, d: Done, account: &mut dyn FnMut(&Done)) {
        account(&d);
        let Some(t) = self.tickets.get_mut(&d.ticket) else {
            return;
        };
        t.left = t.left.saturating_sub(1);
        match d.result {
            Err(_) if d.chained => t.chained = true,
            Err(e) => {
                t.error.get_or_insert(e);
            }
            Ok(()) => {}
        }
    }
}

/// How a batch is applied.
pub(crate) enum Plan {
    /// On the lanes, overlapping the batches before it: its shares, index = writer.
    Lanes(Vec<LaneShare>, KeyOnly),
    /// Alone, once every lane finished (with what is known of its tables already).
    Alone(Option<KeyOnly>),
}

/// Records a share's outcome: what its writer applied.
fn account(applied: &mut [u64], keyless_applied: &mut u64, d: &Done) {
    if let (Ok(()), Some(top)) = (&d.result, d.top) {
        if let Some(a) = applied.get_mut(d.writer) {
            *a = (*a).max(top);
        }
        if d.writer == 0 {
            *keyless_applied = (*keyless_applied).max(top);
        }
    }
}

/// The sink's side of the lanes: which batches go there, and waiting for them.
impl MysqlSink {
    /// Waits until every lane finished: the writers' sessions are back and what each writer
    /// applied is known.
    pub(crate) fn settle(&mut self) {
        let (applied, keyless) = (&mut self.applied, &mut self.keyless_applied);
        self.lanes.settle(&mut |d| account(applied, keyless, d));
    }

    /// How `items` are applied: on the lanes when every change goes to a table written in
    /// place by a key-ordered writer (not a shard's, not copied rows, no DDL, foreign-key
    /// checks off; see lanes.rs), else alone.
    pub(crate) fn plan(&mut self, items: &[DeliveryItem]) -> Result<Plan, SinkError> {
        if self.cfg.foreign_key_checks || self.cfg.shard.is_some() {
            return Ok(Plan::Alone(None));
        }
        let mut rows = false;
        for item in items {
            match &item.event {
                Event::Row(r) if !item.snapshot && !r.table.primary_key.is_empty() => rows = true,
                Event::Row(_) | Event::Ddl(_) => return Ok(Plan::Alone(None)),
                _ => {}
            }
        }
        if !rows {
            return Ok(Plan::Alone(None));
        }
        let key_only = self.read_key_only(items)?;
        let to = Landing {
            merge: &self.cfg.merge,
            shard: None,
            shard_in_key: false,
            columns: &self.dest_columns,
            upsert: false,
            key_only: &key_only,
            bulk: None,
        };
        // Each table once: whether it is written in place, and its shared schema.
        let mut tables: HashMap<*const TableSchema, &Arc<TableSchema>> = HashMap::new();
        for item in items {
            let Event::Row(r) = &item.event else { continue };
            if let Entry::Vacant(v) = tables.entry(Arc::as_ptr(&r.table)) {
                if !to.in_place(&r.table, &to.dest(&r.table.id)) {
                    return Ok(Plan::Alone(Some(key_only)));
                }
                v.insert(&r.table);
            }
        }
        let shares = split(items, &self.applied, self.keyless_applied);
        let mut lane_shares = Vec::with_capacity(shares.len());
        for Share { acts, top, .. } in shares {
            let mut owned = Vec::with_capacity(acts.len());
            for a in merged(acts) {
                // Every action's table was seen above; were one not, the batch goes alone
                // rather than lose the action.
                let Some(table) = tables.get(&std::ptr::from_ref(action_table(&a))) else {
                    return Ok(Plan::Alone(Some(key_only)));
                };
                owned.push(Owned::of(&a, table));
            }
            lane_shares.push(LaneShare {
                acts: owned,
                top: top.map(|(seq, pos)| (seq, pos.to_string())),
            });
        }
        Ok(Plan::Lanes(lane_shares, key_only))
    }

    /// Waits for batch `ticket` on the lanes; a failed share is mended where the sink can.
    pub(crate) fn wait_lanes(
        &mut self,
        ticket: u64,
        items: &[DeliveryItem],
    ) -> Result<(), SinkError> {
        let (applied, keyless) = (&mut self.applied, &mut self.keyless_applied);
        let Some(t) = self
            .lanes
            .wait(ticket, &mut |d| account(applied, keyless, d))
        else {
            return Err(SinkError::Unavailable(format!("unknown batch {ticket}")));
        };
        if t.error.is_none() && !t.chained {
            return Ok(());
        }
        if self.poisoned {
            return Err(SinkError::Unavailable(format!(
                "not applied: a batch before {ticket} failed"
            )));
        }
        // Every lane finished: the sessions are back, what each writer applied is known.
        self.settle();
        self.reconnect()?;
        match t.error {
            Some(e) => self.mend(items, e),
            // Only shares a lane skipped after its earlier failure, which was mended: the
            // batch is applied now, each writer skipping what it applied.
            None => self.deliver_now(items, None),
        }
    }
}

/// A lane's session: as the sink's writers (foreign-key checks off: lanes serve only batches
/// applied so).
async fn lane_session(endpoint: &Endpoint) -> Result<Conn, SinkError> {
    let mut c = connect(endpoint).await?;
    session_settings(&mut c, false).await?;
    Ok(c)
}

/// One share in one transaction with its writer's checkpoint row.
async fn run(conn: &mut Conn, share: &LaneShare, cx: &Context, w: usize) -> Result<(), SinkError> {
    let acts: Vec<Action<'_>> = share.acts.iter().map(Owned::action).collect();
    let none = HashMap::new();
    let to = Landing {
        merge: &cx.merge,
        shard: None,
        shard_in_key: false,
        columns: &none,
        upsert: false,
        key_only: &cx.key_only,
        bulk: None,
    };
    let checkpoint = share
        .top
        .as_ref()
        .map(|(seq, pos)| (&*cx.meta_db, &*cx.project, w, *seq, pos.as_str()));
    commit_share(conn, &acts, &[], &to, false, false, checkpoint).await
}
