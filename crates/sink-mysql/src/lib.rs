//! Sluice's database destination for MySQL-compatible servers: OceanBase seekdb (the harness's
//! OceanBase), MariaDB and MySQL.
//!
//! - Schema sync creates the database and table from the source definition (translated where
//!   the destination differs: seekdb knows only the `utf8mb4_general_ci`, `utf8mb4_bin` and
//!   `binary` collations), or accepts an existing table whose columns match, naming the first
//!   that does not.
//! - Apply is idempotent: an insert or update writes the whole after image (delete by key, then
//!   insert; in place with `INSERT ... ON DUPLICATE KEY UPDATE` where the destination table has
//!   no unique key other than a primary key of the source key's columns, so the statement can meet no
//!   other row), a delete removes by key, an update that changes the key deletes the old key. A
//!   batch is split over `writers` connections by a hash of (table, key), so each key keeps
//!   its order; within a writer's share, only the last change of each key is applied (the
//!   images are whole rows), grouped into multi-row statements.
//! - Exactly once: each writer's share of a batch commits in one transaction together with
//!   that writer's row in `sluice.sluice_checkpoint` (the highest source sequence it applied).
//!   Replayed changes at or below it are skipped, so a change is applied once even when the
//!   source replays it after a crash.
//! - A duplicate-key conflict on a secondary unique key (possible when writers reorder changes
//!   of different keys) makes the batch run again on one connection, change by change, in
//!   source order.
//! - Several batches in flight: where every change of a batch goes to a table written in
//!   place, each writer applies its share on a lane of its own (lanes.rs), in send order,
//!   without waiting for the other writers to finish the batch before; other batches are
//!   applied alone, after every lane finished.
#![deny(missing_docs)]

mod apply;
mod bulk;
mod config;
pub mod ddl;
mod dest_tables;
mod keyless;
mod lanes;
mod schema;
mod session;
mod value;
mod writers;

pub use config::RawDatabase;
pub use schema::create_table_sql;
pub use value::param;

use apply::{action_key, actions, apply, commit_share, merged, write_checkpoint, Action, Landing};
use dest_tables::KeyOnly;
use lanes::{Context, Lanes, Plan};
use session::{connect, session_settings, wait_visible};
use writers::{applied_from_rows, split, writer_for, writers_collided, Share};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, TxOpts};
use sluice_core::sink::{DeliveryItem, Sink, SinkError};
use sluice_core::{Event, TableDef, TableId, TableSpec};
use sluice_mysql_client::Endpoint;

/// Settings of the database destination.
#[derive(Debug, Clone)]
pub struct MysqlConfig {
    /// `mysql://user:pass@host:port`; prints without its password.
    pub url: sluice_core::SecretUrl,
    /// The project name (key of the checkpoint rows).
    pub project: String,
    /// Parallel writer connections.
    pub writers: usize,
    /// Database of Sluice's checkpoint table at the destination.
    pub meta_db: String,
    /// DDL outside the applied list is skipped (logged) instead of stopping the project.
    pub ignore_other_ddl: bool,
    /// Physical source table -> destination table, for logical tables (sharded sources);
    /// tables not listed keep their (routed) name.
    pub merge: HashMap<TableId, TableId>,
    /// For a sharded source: the instance this writer serves. Destination tables then carry
    /// [`SHARD_COLUMN`] (`instance/db.table` of each row), and a primary key already held by
    /// another shard is an error naming both.
    pub shard: Option<String>,
    /// With `shard`: the shard column joins the destination's primary key, so equal keys of
    /// different shards are kept side by side instead of reported.
    pub shard_in_key: bool,
    /// Keep the destination's foreign-key checks on in writer sessions. Off by default, as a
    /// MySQL replica applies row events: writers apply different keys in parallel, so a child
    /// can arrive before its parent. On, the whole stream is applied on one connection in
    /// source order, and a row is written as an upsert (a delete-then-insert of a parent
    /// would cascade to its children).
    pub foreign_key_checks: bool,
    /// Full-sync rows go by `LOAD DATA LOCAL INFILE` where the server allows it (bulk.rs);
    /// false: always by INSERT (for a proxy in front of the server that does not pass LOCAL
    /// INFILE on, or to compare the two). Unset: on, except into OceanBase, whose LOAD DATA
    /// measured slower than its INSERTs (docs/BENCHMARKS.md).
    pub load_data: Option<bool>,
    /// `destination.tls` (None: as the URL says).
    pub tls: Option<sluice_core::tls::Tls>,
}

/// The column recording each row's shard in a logical table's destination.
pub const SHARD_COLUMN: &str = "_sluice_shard";

pub(crate) fn q(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

pub(crate) fn unavailable(what: &str) -> impl Fn(mysql_async::Error) -> SinkError + '_ {
    move |e| match &e {
        mysql_async::Error::Server(s) if is_permanent(s.code) => {
            SinkError::Rejected(format!("destination: {what}: {e}"))
        }
        // The driver's I/O error says "Input/output error" twice around the OS error.
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => {
            SinkError::Unavailable(format!("destination: {what}: {io}"))
        }
        _ => SinkError::Unavailable(format!("destination: {what}: {e}")),
    }
}

/// Server errors that retrying cannot fix (bad data, foreign keys, constraints, missing
/// objects, privileges).
fn is_permanent(code: u16) -> bool {
    matches!(
        code,
        1044 | 1045
            | 1118
            | 1216
            | 1217
            | 1451
            | 1452
            | 1690
            | 3819
            | 4025
            | 1046
            | 1048
            | 1054
            | 1064
            | 1136
            | 1142
            | 1146
            | 1264
            | 1265
            | 1292
            | 1366
            | 1406
            | 1411
            | 1416
            | 3140
    )
}

/// The destination.
pub struct MysqlSink {
    cfg: MysqlConfig,
    rt: tokio::runtime::Runtime,
    conns: Vec<Option<Conn>>,
    /// Per writer: the highest source sequence it applied (from the destination).
    applied: Vec<u64>,
    /// The destination is OceanBase (collations translated).
    oceanbase: bool,
    results: HashMap<u64, Result<(), SinkError>>,
    next_ticket: u64,
    /// Sharded: the columns of each destination table (lower case), read when first written
    /// and again after DDL, so rows of shards not yet altered fit a table another shard's DDL
    /// changed.
    dest_columns: HashMap<TableId, HashSet<String>>,
    /// Shard columns already reported as missing at the destination.
    warned: HashSet<(TableId, String)>,
    /// Bytes of the values of every acknowledged batch.
    acked_bytes: u64,
    /// The destination is MariaDB (its JSON is text).
    mariadb: bool,
    /// The highest source sequence writer 0 applied, exact whatever the writer count was:
    /// changes of tables without a key go to writer 0 only and are skipped by it.
    keyless_applied: u64,
    /// Copied rows go by LOAD DATA LOCAL INFILE (the server allows it).
    payloads: Option<bulk::Payloads>,
    /// How every writer session connects (a replaced one too).
    endpoint: Endpoint,
    /// The writers' shares of batches in flight.
    lanes: Lanes,
    /// A session of its own for reading the destination's tables while writers are out on
    /// their lanes (None: connected when next needed).
    probe: Option<Conn>,
    /// `cfg.merge`, shared with the lanes.
    merge: Arc<HashMap<TableId, TableId>>,
    /// A batch failed since every batch in flight was last waited for: later ones are not
    /// applied until the pipeline sends the failed one again.
    poisoned: bool,
}

impl MysqlSink {
    /// Connects `writers` sessions and reads the destination's checkpoint rows.
    pub fn new(cfg: MysqlConfig) -> Result<Self, SinkError> {
        let (rt, endpoint) = runtime_and_endpoint(&cfg)?;
        let payloads = bulk::Payloads::default();
        let endpoint = endpoint.map_opts(|b| b.local_infile_handler(Some(payloads.clone())));
        let writers = cfg.writers.max(1);
        let (conns, probe, oceanbase, mariadb, applied, keyless_applied, local_infile) = rt.block_on(async {
            let mut conns = Vec::with_capacity(writers);
            for _ in 0..writers {
                let mut c = connect(&endpoint).await?;
                session_settings(&mut c, cfg.foreign_key_checks).await?;
                conns.push(Some(c));
            }
            let probe = connect(&endpoint).await?;
            let first = conns.first_mut().and_then(Option::as_mut).ok_or_else(|| SinkError::Config("no writer".into()))?;
            let version: Option<String> = first.query_first("SELECT VERSION()").await.map_err(unavailable("version"))?;
            let version = version.unwrap_or_default();
            let oceanbase = version.contains("OceanBase");
            let mariadb = version.contains("MariaDB");
            // Full sync loads copied rows in bulk where the server takes LOCAL INFILE data.
            let local_infile: Option<i64> = first.query_first("SELECT @@local_infile").await.ok().flatten();
            let local_infile = cfg.load_data.unwrap_or(!oceanbase) && local_infile == Some(1);
            create_checkpoint_table(first, &cfg.meta_db).await?;
            // Every writer commits its checkpoint row there: each must see the table first.
            let table = checkpoint_table(&cfg.meta_db);
            for c in conns.iter_mut().flatten() {
                wait_visible(c, &table).await?;
            }
            let first = conns.first_mut().and_then(Option::as_mut).ok_or_else(|| SinkError::Config("no writer".into()))?;
            let rows: Vec<(u32, u64)> = first
                .exec(
                    format!(
                        "SELECT writer, sequence FROM {}.sluice_checkpoint WHERE project = ?",
                        q(&cfg.meta_db)
                    ),
                    (&cfg.project,),
                )
                .await
                .map_err(unavailable("read the checkpoint"))?;
            let applied = applied_from_rows(&rows, writers);
            tracing::info!(project = %cfg.project, ?applied, "destination: sequences applied per writer");
            let keyless_applied = rows.iter().find(|(w, _)| *w == 0).map_or(0, |(_, s)| *s);
            Ok::<_, SinkError>((conns, probe, oceanbase, mariadb, applied, keyless_applied, local_infile))
        })?;
        if !local_infile {
            tracing::info!(
                "destination: local_infile is off; full sync writes copied rows by INSERT"
            );
        }
        let merge = Arc::new(cfg.merge.clone());
        let lanes = Lanes::new(writers, endpoint.clone());
        Ok(Self {
            cfg,
            rt,
            conns,
            applied,
            oceanbase,
            results: HashMap::new(),
            next_ticket: 0,
            dest_columns: HashMap::new(),
            warned: HashSet::new(),
            acked_bytes: 0,
            mariadb,
            keyless_applied,
            payloads: local_infile.then_some(payloads),
            endpoint,
            lanes,
            probe: Some(probe),
            merge,
            poisoned: false,
        })
    }

    fn dest_of(&self, t: &TableId) -> TableId {
        self.cfg.merge.get(t).cloned().unwrap_or_else(|| t.clone())
    }

    /// The highest source sequence applied by every writer (changes at or below it are at the
    /// destination).
    pub fn applied_floor(&self) -> u64 {
        self.applied.iter().copied().min().unwrap_or(0)
    }

    /// The CREATE TABLE for `def` at `dest`, translated for the destination.
    pub fn create_table_sql(&self, dest: &TableId, def: &TableDef) -> String {
        create_table_sql(
            dest,
            def,
            self.oceanbase,
            self.cfg.shard.is_some(),
            self.cfg.shard_in_key,
        )
    }

    /// Rows up to each DDL in parallel, then the DDL alone, in batch order (every lane
    /// settled). `key_only`: read for these items already (they hold no DDL).
    fn deliver_now(
        &mut self,
        items: &[DeliveryItem],
        mut key_only: Option<KeyOnly>,
    ) -> Result<(), SinkError> {
        let mut start = 0;
        for (i, item) in items.iter().enumerate() {
            if let Event::Ddl(d) = &item.event {
                self.deliver_rows(&items[start..i], None)?;
                self.apply_ddl(d, item.sequence)?;
                start = i + 1;
            }
        }
        self.deliver_rows(&items[start..], key_only.take())
    }

    fn deliver_rows(
        &mut self,
        items: &[DeliveryItem],
        key_only: Option<KeyOnly>,
    ) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        self.read_dest_columns(items)?;
        let key_only = match key_only {
            Some(k) => k,
            None => self.read_key_only(items)?,
        };
        if self.cfg.foreign_key_checks {
            // Parents before children: every change in source order, on one connection.
            return self.deliver_in_order(items, false);
        }
        let shares = split(items, &self.applied, self.keyless_applied);
        let tops: Vec<Option<u64>> = shares.iter().map(|s| s.top.map(|(seq, _)| seq)).collect();
        let meta_db = q(&self.cfg.meta_db);
        let project = self.cfg.project.clone();
        let to = Landing {
            merge: &self.cfg.merge,
            shard: self.cfg.shard.as_deref(),
            shard_in_key: self.cfg.shard_in_key,
            columns: &self.dest_columns,
            upsert: self.cfg.foreign_key_checks,
            key_only: &key_only,
            bulk: self.payloads.as_ref(),
        };
        let to = &to;
        // A full-sync chunk: its keys are normally new at the destination (see `apply`).
        let copied = items.iter().all(|i| i.snapshot);
        let mariadb = self.mariadb;
        let mut conns: Vec<Option<Conn>> = std::mem::take(&mut self.conns);
        let result = self.rt.block_on(async {
            let mut futures = Vec::new();
            for (w, (Share { acts, raw, top }, conn)) in
                shares.into_iter().zip(conns.iter_mut()).enumerate()
            {
                let (meta_db, project) = (meta_db.clone(), project.clone());
                futures.push(async move {
                    if acts.is_empty() && raw.is_empty() && top.is_none() {
                        return Ok(());
                    }
                    // Copied rows have distinct keys: nothing to merge.
                    let acts: Vec<Action<'_>> = if copied {
                        acts.into_iter().map(|(_, a)| a).collect()
                    } else {
                        merged(acts)
                    };
                    let conn = conn
                        .as_mut()
                        .ok_or_else(|| SinkError::Unavailable("writer lost".into()))?;
                    let top = top.map(|(seq, pos)| (seq, pos.to_string()));
                    let checkpoint = top
                        .as_ref()
                        .map(|(s, pos)| (meta_db.as_str(), project.as_str(), w, *s, pos.as_str()));
                    commit_share(conn, &acts, &raw, to, copied, mariadb, checkpoint).await
                });
            }
            futures_util::future::join_all(futures).await
        });
        // Advance what each writer applied (only for the shares that committed).
        let mut first_err = None;
        for (w, r) in result.into_iter().enumerate() {
            match r {
                Ok(()) => {
                    // Changes it skipped were at or below what it had applied already.
                    if let Some(top) = tops[w] {
                        self.applied[w] = self.applied[w].max(top);
                        if w == 0 {
                            self.keyless_applied = self.keyless_applied.max(top);
                        }
                    }
                }
                Err(e) => {
                    // A lost connection is replaced on the next batch.
                    if matches!(e, SinkError::Unavailable(_)) {
                        if let Some(c) = conns.get_mut(w) {
                            *c = None;
                        }
                    }
                    first_err.get_or_insert(e);
                }
            }
        }
        self.conns = conns;
        match first_err {
            None => Ok(()),
            Some(e) => self.mend(items, e),
        }
    }

    /// After a share of `items` failed with `e` (every lane settled): the batch applied again
    /// on one connection where that can succeed, else the error.
    fn mend(&mut self, items: &[DeliveryItem], e: SinkError) -> Result<(), SinkError> {
        // Another shard's DDL may be why: read the tables again before the next attempt.
        self.dest_columns.clear();
        match e {
            // The writers got in each other's way: once more on one connection, in source
            // order, which no other writer of ours can block. Retried in parallel as it was,
            // the batch could collide with itself on every attempt (a livelock).
            e if writers_collided(&e) => {
                tracing::warn!(
                    "writers collided; applying the batch on one connection in source order: {e}"
                );
                self.reconnect()?;
                self.deliver_in_order(items, false)
            }
            // A refusal retrying cannot fix. Applied again in source order, change by change:
            // either the order was the cause (the batch then lands) or the error names the
            // change the destination refuses.
            SinkError::Rejected(e) => {
                tracing::warn!("the destination refused part of a batch; applying it change by change in source order: {e}");
                self.reconnect()?;
                self.deliver_in_order(items, true)
            }
            e => Err(e),
        }
    }

    /// The whole batch on one connection, change by change, in source order (no merging); a
    /// full-sync chunk (distinct keys) in multi-row statements, as the writers would, unless
    /// `one_by_one`. A change the destination refuses is named in the error: table, key and
    /// source position.
    fn deliver_in_order(
        &mut self,
        items: &[DeliveryItem],
        one_by_one: bool,
    ) -> Result<(), SinkError> {
        let copied = items.iter().all(|i| i.snapshot) && !one_by_one;
        let meta_db = q(&self.cfg.meta_db);
        let project = self.cfg.project.clone();
        let writers = self.conns.len();
        let top = items.iter().filter_map(|i| i.sequence).max();
        let pos = items
            .iter()
            .rev()
            .find_map(|i| match &i.event {
                Event::Row(r) => Some(r.pos.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        let applied = self.applied.clone();
        let (mariadb, keyless_applied) = (self.mariadb, self.keyless_applied);
        let to = Landing {
            merge: &self.cfg.merge,
            shard: self.cfg.shard.as_deref(),
            shard_in_key: self.cfg.shard_in_key,
            columns: &self.dest_columns,
            upsert: self.cfg.foreign_key_checks,
            key_only: &HashMap::new(),
            bulk: self.payloads.as_ref(),
        };
        let mut conn = self
            .conns
            .first_mut()
            .and_then(Option::take)
            .ok_or_else(|| SinkError::Unavailable("writer lost".into()))?;
        let writer_of = |k: &str| writer_for(k, writers);
        let r = self.rt.block_on(async {
            let mut tx = conn
                .start_transaction(TxOpts::default())
                .await
                .map_err(unavailable("begin"))?;
            let done = async {
                if copied {
                    let acts: Vec<Action<'_>> = items
                        .iter()
                        .filter_map(|i| match &i.event {
                            Event::Row(r) if !r.table.primary_key.is_empty() => Some(actions(r)),
                            _ => None,
                        })
                        .flatten()
                        .collect();
                    apply(&mut tx, &acts, &to, true).await?;
                    let raw: Vec<&sluice_core::RowChange> = items
                        .iter()
                        .filter_map(|i| match &i.event {
                            Event::Row(r) if r.table.primary_key.is_empty() => Some(r),
                            _ => None,
                        })
                        .collect();
                    keyless::apply(&mut tx, &raw, &|t| to.dest(t), mariadb).await?;
                }
                for item in items.iter().filter(|_| !copied) {
                    let Event::Row(r) = &item.event else { continue };
                    if r.table.primary_key.is_empty() {
                        if item.sequence.is_some_and(|s| s <= keyless_applied) {
                            continue;
                        }
                        keyless::apply(&mut tx, &[r], &|t| to.dest(t), mariadb).await?;
                        continue;
                    }
                    for a in actions(r) {
                        let w = writer_of(&action_key(&a));
                        if item.sequence.is_some_and(|s| s <= applied[w]) {
                            continue;
                        }
                        apply(&mut tx, std::slice::from_ref(&a), &to, false)
                            .await
                            .map_err(|e| apply::located(e, &a, &r.pos))?;
                    }
                }
                if let Some(seq) = top {
                    write_checkpoint(&mut tx, &meta_db, &project, 0..writers, seq, &pos).await?;
                }
                Ok::<_, SinkError>(())
            }
            .await;
            if let Err(e) = done {
                let _ = tx.rollback().await;
                return Err(e);
            }
            tx.commit().await.map_err(unavailable("commit"))
        });
        if let Some(c) = self.conns.first_mut() {
            *c = Some(conn);
        }
        r?;
        if let Some(seq) = top {
            for a in self.applied.iter_mut() {
                *a = (*a).max(seq);
            }
            self.keyless_applied = self.keyless_applied.max(seq);
        }
        Ok(())
    }

    /// Replaces lost writer sessions.
    fn reconnect(&mut self) -> Result<(), SinkError> {
        if self.conns.iter().all(Option::is_some) {
            return Ok(());
        }
        // The options the first sessions had: with the LOCAL INFILE handler of this sink.
        let endpoint = self.endpoint.clone();
        let conns = &mut self.conns;
        let fk = self.cfg.foreign_key_checks;
        self.rt.block_on(async {
            for c in conns.iter_mut().filter(|c| c.is_none()) {
                let mut n = endpoint.connect().await.map_err(unavailable("reconnect"))?;
                session_settings(&mut n, fk).await?;
                *c = Some(n);
            }
            Ok(())
        })
    }
}

/// Creates what a project keeps at the destination (the checkpoint database and table) once,
/// on one connection, before the parts of a sharded project start their sinks: their first
/// runs then find it instead of racing to create it (a freshly started seekdb could show one
/// session a table another had just created only later: `ERROR 1146` at the first read).
pub fn prepare_destination(cfg: &MysqlConfig) -> Result<(), SinkError> {
    let (rt, endpoint) = runtime_and_endpoint(cfg)?;
    rt.block_on(async {
        let mut c = connect(&endpoint).await?;
        create_checkpoint_table(&mut c, &cfg.meta_db).await?;
        wait_visible(&mut c, &checkpoint_table(&cfg.meta_db)).await?;
        let _ = c.disconnect().await;
        Ok(())
    })
}

/// Removes what project `project` (and its parts, `project.INSTANCE`) keeps at the
/// destination: its checkpoint rows. A released project writes nothing more, and a new
/// project of the same name starts afresh.
pub fn release_destination(cfg: &MysqlConfig) -> Result<(), SinkError> {
    let (rt, endpoint) = runtime_and_endpoint(cfg)?;
    rt.block_on(async {
        let mut c = connect(&endpoint).await?;
        create_checkpoint_table(&mut c, &cfg.meta_db).await?;
        c.exec_drop(
            format!(
                "DELETE FROM {} WHERE project = ? OR LEFT(project, CHAR_LENGTH(?)) = ?",
                checkpoint_table(&cfg.meta_db)
            ),
            (
                &cfg.project,
                format!("{}.", cfg.project),
                format!("{}.", cfg.project),
            ),
        )
        .await
        .map_err(unavailable("remove the checkpoint rows"))?;
        let _ = c.disconnect().await;
        Ok(())
    })
}

/// The destination's side of a verification, on its own connection.
pub fn verify_side(
    cfg: &MysqlConfig,
) -> Result<Box<dyn sluice_core::verify::VerifySide>, SinkError> {
    sluice_verify_mysql::MysqlSide::connect(&cfg.url, cfg.tls.as_ref())
        .map(|s| Box::new(s) as Box<dyn sluice_core::verify::VerifySide>)
        .map_err(|e| match e {
            sluice_core::verify::VerifyError::Unavailable(m) => SinkError::Unavailable(m),
            sluice_core::verify::VerifyError::Definite(m) => SinkError::Config(m),
        })
}

/// The runtime the destination's calls run on, and where its sessions connect.
fn runtime_and_endpoint(
    cfg: &MysqlConfig,
) -> Result<(tokio::runtime::Runtime, Endpoint), SinkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SinkError::Unavailable(e.to_string()))?;
    let endpoint = Endpoint::new(&cfg.url, cfg.tls.as_ref())
        .map_err(|e| SinkError::Config(format!("destination.url: {e}")))?;
    Ok((rt, endpoint))
}

/// `db`.`sluice_checkpoint`.
fn checkpoint_table(meta_db: &str) -> String {
    format!("{}.sluice_checkpoint", q(meta_db))
}

async fn create_checkpoint_table(c: &mut Conn, meta_db: &str) -> Result<(), SinkError> {
    c.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", q(meta_db)))
        .await
        .map_err(unavailable("create the checkpoint database"))?;
    c.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {} (project VARCHAR(128) NOT NULL, \
         writer INT NOT NULL, sequence BIGINT UNSIGNED NOT NULL, position VARCHAR(512) NOT NULL, \
         PRIMARY KEY (project, writer))",
        checkpoint_table(meta_db)
    ))
    .await
    .map_err(unavailable("create the checkpoint table"))
}

/// The first writer's connection (schema sync, DDL and checkpoint rows go through it).
fn first_writer(conns: &mut [Option<Conn>]) -> Result<&mut Conn, SinkError> {
    conns
        .first_mut()
        .and_then(Option::as_mut)
        .ok_or_else(|| SinkError::Unavailable("writer lost".into()))
}

impl Sink for MysqlSink {
    fn start_afresh(&mut self) -> Result<(), SinkError> {
        self.settle();
        let (meta_db, project) = (q(&self.cfg.meta_db), self.cfg.project.clone());
        let writers = self.conns.len();
        let conn = first_writer(&mut self.conns)?;
        self.rt.block_on(async {
            conn.exec_drop(
                format!("DELETE FROM {meta_db}.sluice_checkpoint WHERE project = ?"),
                (&project,),
            )
            .await
            .map_err(unavailable("clear an earlier run's checkpoint rows"))?;
            // A row per writer from the start: after a crash between the writers' commits of
            // one batch, a writer that did not commit still shows what it applied (nothing).
            write_checkpoint(conn, &meta_db, &project, 0..writers, 0, "").await
        })?;
        self.applied.iter_mut().for_each(|a| *a = 0);
        self.keyless_applied = 0;
        Ok(())
    }

    fn prepare(&mut self, tables: &[TableSpec]) -> Result<(), SinkError> {
        self.settle();
        let oceanbase = self.oceanbase;
        let sharded = self.cfg.shard.is_some();
        let in_key = self.cfg.shard_in_key;
        let dests: Vec<TableId> = tables.iter().map(|t| self.dest_of(&t.dest)).collect();
        let conn = first_writer(&mut self.conns)?;
        self.rt.block_on(schema::prepare_tables(
            conn, tables, &dests, oceanbase, sharded, in_key,
        ))?;
        // Every writer writes these tables: each must see them first (see `wait_visible`).
        let names: Vec<String> = tables
            .iter()
            .zip(&dests)
            .filter(|(spec, _)| spec.def.is_some())
            .map(|(_, d)| format!("{}.{}", q(&d.db), q(&d.table)))
            .collect();
        let conns = &mut self.conns;
        let probe = &mut self.probe;
        self.rt.block_on(async {
            for c in conns.iter_mut().chain(std::iter::once(probe)).flatten() {
                for t in &names {
                    wait_visible(c, t).await?;
                }
            }
            Ok(())
        })
    }

    fn clear_table(&mut self, table: &TableId) -> Result<(), SinkError> {
        self.settle();
        let dest = self.dest_of(table);
        let sql = format!("TRUNCATE TABLE {}.{}", q(&dest.db), q(&dest.table));
        let conn = first_writer(&mut self.conns)?;
        self.rt
            .block_on(conn.query_drop(&sql))
            .map_err(unavailable("clear a table before copying it again"))
    }

    fn send(&mut self, items: &[DeliveryItem]) -> Result<u64, SinkError> {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        // Every batch in flight was waited for: the pipeline sends the failed one again.
        if self.results.is_empty() && self.lanes.is_empty() {
            self.poisoned = false;
        }
        // Batches apply in send order: after one failed, later ones wait until it is sent
        // again (applied first, they would move the writers' checkpoints past it, and its
        // replay would be skipped).
        if let Some(failed) = self
            .results
            .iter()
            .find(|(_, r)| r.is_err())
            .map(|(t, _)| *t)
        {
            self.results.insert(
                ticket,
                Err(SinkError::Unavailable(format!(
                    "not applied: batch {failed} before it failed"
                ))),
            );
            return Ok(ticket);
        }
        if self.poisoned {
            self.results.insert(
                ticket,
                Err(SinkError::Unavailable(
                    "not applied: a batch before it failed".into(),
                )),
            );
            return Ok(ticket);
        }
        self.reconnect()?;
        match self.plan(items)? {
            Plan::Lanes(shares, key_only) => {
                let cx = Context {
                    merge: self.merge.clone(),
                    key_only: Arc::new(key_only),
                    meta_db: q(&self.cfg.meta_db).into(),
                    project: self.cfg.project.as_str().into(),
                };
                self.lanes.push(ticket, shares, &cx)?;
            }
            Plan::Alone(key_only) => {
                self.settle();
                let r = if self.lanes.any_failed() {
                    // Applied after a batch in flight that failed, it would be skipped when
                    // that one is sent again.
                    Err(SinkError::Unavailable(
                        "not applied: a batch before it failed".into(),
                    ))
                } else {
                    self.reconnect()
                        .and_then(|()| self.deliver_now(items, key_only))
                };
                self.results.insert(ticket, r);
            }
        }
        Ok(ticket)
    }

    fn acknowledged_bytes(&self) -> u64 {
        self.acked_bytes
    }

    fn wait(&mut self, ticket: u64, items: &[DeliveryItem]) -> Result<(), SinkError> {
        let r = match self.results.remove(&ticket) {
            Some(r) => r,
            None => self.wait_lanes(ticket, items),
        };
        // Counted when the pipeline learns of the acknowledgement, as every destination does.
        if r.is_ok() {
            self.acked_bytes += value::batch_len(items);
        } else {
            self.poisoned = true;
        }
        r
    }
}
