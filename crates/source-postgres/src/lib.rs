//! PostgreSQL as a Sluice [`Source`]: logical replication with the built-in `pgoutput` plugin
//! (through `pgwire-replication`), full sync in key-ordered chunks, the catalog from
//! pg_catalog (docs/POSTGRES.md).
//!
//! Invariants:
//! - Positions are LSNs (`Position` of kind [`LSN_KIND`], the LSN in its offset). Every event
//!   of a transaction carries the LSN of its commit record; its `Commit` carries the LSN just
//!   past it, where a restart resumes (the server skips transactions whose commit lies
//!   before the start). So positions never go back, and a Commit's is a safe resume point.
//! - The replication slot is created (in [`Source::prepare`], after the publication, so that
//!   every change it decodes is published) before full sync reads a row: its consistent
//!   point is the hand-over position. Every transaction that commits after it is decoded by
//!   the slot; every one before it is visible to a read that starts afterwards. A chunk read
//!   later shows a state at or after the hand-over, and the replay from it brings each key to
//!   its final state: nothing is missed, whatever the chunks' times (docs/POSTGRES.md).
//! - The slot's confirmed flush position is only ever moved to a position the pipeline has
//!   stored as a checkpoint ([`Source::checkpointed`]): the server keeps the WAL of
//!   everything not yet acknowledged by the destination.
//! - Idle heartbeats are WAL messages this source writes itself
//!   (`pg_logical_emit_message`): when one comes back through the stream, every transaction
//!   committed before it has been sent, so its LSN is a safe checkpoint.

mod catalog;
mod pgoutput;
mod session;
mod snapshot;
mod stream;
mod tls;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::position::LSN_KIND;
use sluice_core::source::{Catalog, SnapshotReader, Source, SourceError, Streamed, UnitPlan};
use sluice_core::{Position, SecretUrl, TableDef, TableId};

use crate::session::{cell, ident, literal, Session, SESSION_OPTIONS};

/// The position of an LSN.
pub(crate) fn lsn_position(lsn: u64) -> Position {
    Position::new(LSN_KIND, "", lsn)
}

/// The LSN of a position this source made.
pub(crate) fn position_lsn(p: &Position) -> Result<u64, SourceError> {
    if p.kind() == LSN_KIND {
        Ok(p.offset())
    } else {
        Err(SourceError::Definite(format!(
            "the checkpoint's position {p} is not a PostgreSQL LSN: it was made by another \
             source; give the project a new name to start over"
        )))
    }
}

/// What a project's `source` section says of a PostgreSQL server.
#[derive(Clone)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database`.
    pub url: SecretUrl,
    /// The logical replication slot (made when missing).
    pub slot: String,
    /// The publication the slot streams.
    pub publication: String,
    /// Create the publication for the selected tables (and drop it on release).
    pub create_publication: bool,
    /// How often an idle source writes a heartbeat.
    pub heartbeat: Duration,
    /// `source.tls` (None: as the URL's `sslmode` says, without TLS support beyond it).
    pub tls: Option<sluice_core::tls::Tls>,
}

/// Where the control-plane sessions connect, and how.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) cfg: tokio_postgres::Config,
    pub(crate) tls: Option<sluice_core::tls::Tls>,
}

/// A PostgreSQL source.
#[derive(Clone)]
pub struct PostgresSource {
    url: SecretUrl,
    target: Target,
    pub(crate) slot: String,
    pub(crate) publication: String,
    pub(crate) create_publication: bool,
    heartbeat: Duration,
    /// The LSN of the last stored checkpoint, to confirm to the slot (0: none yet).
    confirmed: Arc<AtomicU64>,
    /// The selected tables' columns when the project was prepared (the state of a source
    /// that has read nothing yet).
    prepared: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for PostgresSource {
    // By hand: the client settings hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("url", &self.url)
            .field("slot", &self.slot)
            .field("publication", &self.publication)
            .field("create_publication", &self.create_publication)
            .finish()
    }
}

/// Whether `name` can be a slot name (PostgreSQL: lower-case letters, digits, `_`, at most
/// 63 characters).
pub fn valid_slot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The slot name a project gets by default: `sluice_` and its name, lower case, with every
/// other character as `_`.
pub fn default_slot(project: &str) -> String {
    let mut s: String = format!("sluice_{project}")
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    s.truncate(63);
    s
}

impl PostgresSource {
    /// The source the settings describe (nothing is connected yet).
    pub fn new(s: PostgresSettings) -> Result<Self, SourceError> {
        let mut cfg: tokio_postgres::Config = s.url.expose().parse().map_err(|_| {
            SourceError::Definite(format!(
                "{} is not a postgres://user:password@host:port/database URL{}",
                s.url,
                sluice_core::secret::URL_PASSWORD_HINT
            ))
        })?;
        if cfg.get_dbname().is_none() {
            return Err(SourceError::Definite(format!(
                "{} names no database: add /DATABASE to the URL (logical replication reads one database)",
                s.url
            )));
        }
        cfg.options(SESSION_OPTIONS);
        cfg.application_name("sluice");
        cfg.connect_timeout(Duration::from_secs(10));
        if let Some(t) = &s.tls {
            cfg.ssl_mode(tls::ssl_mode(t.mode));
            // The replication client checks a certificate's name only against a host name.
            let ip_host = cfg.get_hosts().iter().any(|h| {
                matches!(h, tokio_postgres::config::Host::Tcp(h) if h.parse::<std::net::IpAddr>().is_ok())
            });
            if t.mode == sluice_core::tls::TlsMode::VerifyIdentity && ip_host {
                return Err(SourceError::Definite(format!(
                    "source.tls.mode verify_identity needs a host name in the URL ({}), the name the \
                     server's certificate carries: the replication client does not check IP \
                     addresses; use the host name, or verify_ca",
                    s.url
                )));
            }
        }
        if !valid_slot_name(&s.slot) {
            return Err(SourceError::Definite(format!(
                "source.slot {:?}: a slot name is lower-case letters, digits and _, at most 63",
                s.slot
            )));
        }
        Ok(Self {
            url: s.url,
            target: Target { cfg, tls: s.tls },
            slot: s.slot,
            publication: s.publication,
            create_publication: s.create_publication,
            heartbeat: s.heartbeat.max(Duration::from_secs(1)),
            confirmed: Arc::new(AtomicU64::new(0)),
            prepared: Arc::new(Mutex::new(None)),
        })
    }

    /// The replication slot's name.
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// The publication's name.
    pub fn publication(&self) -> &str {
        &self.publication
    }

    fn session(&self) -> Result<Session, SourceError> {
        Session::open(&self.target)
    }

    /// The slot's confirmed flush position, or None when the slot does not exist.
    fn slot_lsn(&self, s: &Session) -> Result<Option<u64>, SourceError> {
        let r = s.rows(&format!(
            "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::int8, wal_status::text FROM pg_replication_slots WHERE slot_name = {}",
            literal(&self.slot)
        ))?;
        let Some(row) = r.first() else {
            return Ok(None);
        };
        if cell(row, 1) == "lost" {
            return Err(SourceError::Purged(format!(
                "replication slot {} was invalidated: the server removed WAL it still needed \
                 (max_slot_wal_keep_size)",
                self.slot
            )));
        }
        Ok(Some(cell(row, 0).parse().unwrap_or(0)))
    }

    /// The confirmed flush position of the slot [`Source::prepare`] made.
    fn made_slot_lsn(&self) -> Result<u64, SourceError> {
        self.slot_lsn(&self.session()?)?.ok_or_else(|| {
            SourceError::Definite(format!(
                "replication slot {} does not exist (it is made when the project starts)",
                self.slot
            ))
        })
    }

    /// How many bytes of WAL the slot keeps on the server (None: no slot).
    pub fn retained_wal(&self) -> Result<Option<u64>, SourceError> {
        let s = self.session()?;
        let r = s.rows(&format!(
            "SELECT (pg_current_wal_lsn() - restart_lsn)::int8 FROM pg_replication_slots WHERE slot_name = {}",
            literal(&self.slot)
        ))?;
        Ok(r.first().and_then(|row| cell(row, 0).parse().ok()))
    }

    pub(crate) fn config(&self) -> &Target {
        &self.target
    }

    /// The replication client's settings for the slot, from `start`.
    pub(crate) fn replication_config(
        &self,
        start: u64,
    ) -> Result<pgwire_replication::ReplicationConfig, SourceError> {
        use pgwire_replication::{Lsn, ReplicationConfig};
        let cfg = &self.target.cfg;
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let password = cfg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        Ok(ReplicationConfig::new(
            host,
            cfg.get_user().unwrap_or("postgres"),
            password,
            cfg.get_dbname().unwrap_or("postgres"),
            self.slot.clone(),
            self.publication.as_str(),
        )
        .with_port(port)
        .with_tls(tls::replication(self.target.tls.as_ref()))
        .with_start_lsn(Lsn::from_u64(start))
        .with_options(SESSION_OPTIONS)
        .with_application_name("sluice")
        .with_status_interval(Duration::from_secs(1))
        .with_wakeup_interval(Duration::from_secs(1)))
    }

    /// The LSN to confirm to the slot now (0: nothing yet).
    pub(crate) fn confirmed(&self) -> u64 {
        self.confirmed.load(Ordering::SeqCst)
    }

    pub(crate) fn heartbeat(&self) -> Duration {
        self.heartbeat
    }
}

/// The known columns of each table (`schema.table` -> [name, type]), the source's state:
/// a relation message that differs from it is a schema change.
pub(crate) type Known = BTreeMap<String, Vec<(String, String)>>;

pub(crate) fn known_key(t: &TableId) -> String {
    format!("{}.{}", t.db, t.table)
}

impl Source for PostgresSource {
    fn catalog(&self) -> Result<Box<dyn Catalog + '_>, SourceError> {
        Ok(Box::new(catalog::PgCatalog {
            session: self.session()?,
            source: self,
        }))
    }

    fn starts_now(&self) -> bool {
        true
    }

    fn prepare(&self, tables: &[TableId]) -> Result<(), SourceError> {
        let s = self.session()?;
        // Nothing is made on a server that cannot decode (the precheck says the same).
        let wal_level = s
            .rows("SELECT current_setting('wal_level')")?
            .first()
            .map(|r| cell(r, 0))
            .unwrap_or_default();
        if wal_level != "logical" {
            return Err(SourceError::Definite(format!(
                "wal_level is {wal_level}: logical replication needs logical; set wal_level = \
                 logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart \
                 PostgreSQL"
            )));
        }
        // Once a table is published, PostgreSQL refuses its updates and deletes unless it has
        // a replica identity: never publish one without (the application's writes would
        // fail), whatever key the project names for it.
        let identity = catalog::identified(&s)?;
        for t in tables {
            if !identity.get(t).copied().unwrap_or(false) {
                return Err(SourceError::Definite(format!(
                    "{t} has no primary key and no REPLICA IDENTITY: once published, its updates \
                     and deletes would be refused by PostgreSQL and could not be captured; \
                     ALTER TABLE {}.{} REPLICA IDENTITY FULL (or add a primary key), or exclude it",
                    ident(&t.db),
                    ident(&t.table)
                )));
            }
        }
        // The columns the destination is made with: a relation that differs later is a
        // schema change. Read before the slot is made, so that a change of columns in between
        // is seen as one (a database destination takes a repeated ADD COLUMN as applied).
        let mut known = Known::new();
        for t in tables {
            let info =
                s.rt()
                    .block_on(catalog::table_info(s.client(), t, &catalog::regclass(t)))?;
            known.insert(
                known_key(t),
                info.columns
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.name.clone()))
                    .collect(),
            );
        }
        let publication = literal(&self.publication);
        let exists = s.rows(&format!(
            "SELECT puballtables::text FROM pg_publication WHERE pubname = {publication}"
        ))?;
        let list = |ts: &[&TableId]| {
            ts.iter()
                .map(|t| format!("{}.{}", ident(&t.db), ident(&t.table)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.create_publication {
            // The publication comes before the slot: a change is decoded with the
            // publication as it stood then, so a table joins before anything is read.
            if exists.is_empty() {
                let all: Vec<&TableId> = tables.iter().collect();
                let sql = if all.is_empty() {
                    format!("CREATE PUBLICATION {}", ident(&self.publication))
                } else {
                    format!(
                        "CREATE PUBLICATION {} FOR TABLE {}",
                        ident(&self.publication),
                        list(&all)
                    )
                };
                s.run(&sql)
                    .map_err(|e| e.context("create the publication"))?;
            } else if exists.first().is_some_and(|r| cell(r, 0) != "true") {
                let have: std::collections::HashSet<TableId> = s
                    .rows(&format!(
                        "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = {publication}"
                    ))?
                    .iter()
                    .map(|r| TableId::new(cell(r, 0), cell(r, 1)))
                    .collect();
                let missing: Vec<&TableId> = tables.iter().filter(|t| !have.contains(t)).collect();
                if !missing.is_empty() {
                    s.run(&format!(
                        "ALTER PUBLICATION {} ADD TABLE {}",
                        ident(&self.publication),
                        list(&missing)
                    ))
                    .map_err(|e| e.context("add the selected tables to the publication"))?;
                }
            }
        } else if exists.is_empty() {
            return Err(SourceError::Definite(format!(
                "publication {} does not exist: CREATE PUBLICATION {} FOR TABLE ... (the selected \
                 tables), or set source.create_publication: true",
                self.publication,
                ident(&self.publication)
            )));
        }
        if self.slot_lsn(&s)?.is_none() {
            s.run(&format!(
                "SELECT pg_create_logical_replication_slot({}, 'pgoutput')",
                literal(&self.slot)
            ))
            .map_err(|e| e.context("create the replication slot"))?;
            tracing::info!(slot = %self.slot, "replication slot created");
        }
        if let Ok(mut p) = self.prepared.lock() {
            *p = serde_json::to_string(&known).ok();
        }
        Ok(())
    }

    fn checkpointed(&self, position: &Position) {
        if let Ok(lsn) = position_lsn(position) {
            self.confirmed.fetch_max(lsn, Ordering::SeqCst);
        }
    }

    fn retained(&self) -> Result<Option<String>, SourceError> {
        Ok(Some(match self.retained_wal()? {
            Some(bytes) => format!(
                "replication slot {} retains {:.1} MB of WAL on the server",
                self.slot,
                bytes as f64 / 1_048_576.0
            ),
            None => format!("replication slot {} does not exist", self.slot),
        }))
    }

    fn release(&self) -> Result<(), SourceError> {
        let s = self.session()?;
        // A run that just stopped may hold the slot a moment longer (its WAL sender is
        // closing): wait up to 15 s for it to let go.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while self.slot_lsn(&s).ok().flatten().is_some() {
            match s.run(&format!(
                "SELECT pg_drop_replication_slot({})",
                literal(&self.slot)
            )) {
                Ok(()) => break,
                Err(SourceError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e.context("drop the replication slot")),
            }
        }
        if self.create_publication {
            s.run(&format!(
                "DROP PUBLICATION IF EXISTS {}",
                ident(&self.publication)
            ))
            .map_err(|e| e.context("drop the publication"))?;
        }
        Ok(())
    }

    fn definitions_at_start(
        &self,
        _tables: &[TableId],
        _end: &Position,
        _defs: &mut [Option<TableDef>],
    ) -> Result<(), SourceError> {
        // A PostgreSQL project always starts now (starts_now): the definitions are current.
        Ok(())
    }

    fn handover(&self) -> Result<Position, SourceError> {
        Ok(lsn_position(self.made_slot_lsn()?))
    }

    fn plan(
        &self,
        tables: &[TableId],
        keys: &HashMap<TableId, Vec<String>>,
        chunk_rows: usize,
        readers: usize,
    ) -> Result<Vec<UnitPlan>, SourceError> {
        let _ = (keys, chunk_rows, readers);
        let s = self.session()?;
        snapshot::plan(&s, tables)
    }

    fn snapshot_reader(
        &self,
        keys: HashMap<TableId, Vec<String>>,
        chunk_rows: usize,
    ) -> Result<Box<dyn SnapshotReader>, SourceError> {
        Ok(Box::new(snapshot::Reader::new(
            self.clone(),
            keys,
            chunk_rows,
        )?))
    }

    fn copied_at(&self, last_key: &str) -> Option<Position> {
        snapshot::copied_at(last_key)
    }

    fn initial_state(&self) -> String {
        self.prepared
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_else(|| "{}".into())
    }

    fn stream(
        &self,
        from: Option<(&Position, &str)>,
        emit: &mut dyn FnMut(Streamed) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let (start, state) = match from {
            Some((p, state)) => (position_lsn(p)?, state.to_string()),
            None => (self.made_slot_lsn()?, self.initial_state()),
        };
        let known: Known = serde_json::from_str(&state).unwrap_or_default();
        stream::run(self, start, known, emit)
    }
}
