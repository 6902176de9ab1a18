//! `sluice server`: the long-running service. It keeps data sources, projects, users and
//! tokens in its metadata store (the `srv_*` tables of `DIR/meta.db`, beside the projects'
//! checkpoints), runs each started project as a worker (`workers.rs`: the same pipeline as
//! `sluice run -f`), and answers an authenticated JSON API under `/api/v1` (`api.rs`, described
//! by `openapi.json`), with `/metrics`, `/health` and `/ready`, and the web console at `/`
//! (`console.rs`).
//!
//! Invariants:
//! - No secret leaves the service: data-source and project secrets are sealed at rest
//!   (`secrets.rs`), answers say only whether one is set, and every message that reaches a
//!   log, an error or a status comes from checks that print none.
//! - A project's state in the store is the truth for the lifecycle: projects stored as
//!   Running, Paused or Modifying are started again when the service starts, from their
//!   checkpoints.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod console;
pub mod datasource;
pub mod error;
pub mod project;
pub mod secrets;
pub mod store;
pub mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_pipeline::metrics::MetricsBoard;

/// What the service shares between requests and workers.
#[derive(Clone, Debug)]
pub struct App {
    /// The service's records.
    pub store: Arc<store::Store>,
    /// The master key.
    pub vault: Arc<secrets::Vault>,
    /// The data directory (meta.db, the projects' locks).
    pub dir: PathBuf,
    /// The running projects.
    pub workers: Arc<workers::Workers>,
    /// Every run's metrics.
    pub board: MetricsBoard,
    /// Set once the projects that were running have been started again.
    pub ready: Arc<AtomicBool>,
}

/// How to run the service.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen.
    pub listen: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The master key file (default `DIR/master.key`); `SLUICE_MASTER_KEY` overrides it.
    pub key_file: Option<PathBuf>,
    /// How often the figures are sampled.
    pub sample_every: Duration,
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The metadata store.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The master key.
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    /// The address.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The first user.
    #[error("cannot create the admin user: {0}")]
    Admin(String),
}

impl App {
    /// Opens the store and the key, and creates the first user when there is none: `admin`
    /// with `SLUICE_ADMIN_PASSWORD`, or a generated password returned here to be printed once.
    pub fn open(opts: &ServerOptions) -> Result<(Self, Option<String>), ServerError> {
        let store = store::Store::open(&opts.data_dir)?;
        let key_file = opts
            .key_file
            .clone()
            .unwrap_or_else(|| opts.data_dir.join("master.key"));
        let vault = secrets::Vault::open(&key_file)?;
        let app = App {
            store: Arc::new(store),
            vault: Arc::new(vault),
            dir: opts.data_dir.clone(),
            workers: Arc::default(),
            board: MetricsBoard::default(),
            ready: Arc::default(),
        };
        let mut generated = None;
        if app.store.user_count()? == 0 {
            let password = match std::env::var("SLUICE_ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    use base64::Engine;
                    let p = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(secrets::random::<15>()?);
                    generated = Some(p.clone());
                    p
                }
            };
            let hash = auth::hash_password(&password).map_err(|e| ServerError::Admin(e.message))?;
            app.store.put_user(&store::User {
                name: "admin".into(),
                role: "admin".into(),
                hash,
            })?;
        }
        Ok((app, generated))
    }

    /// Starts again the projects stored as Running, Paused or Modifying.
    pub fn resume_projects(&self) {
        let Ok(rows) = self.store.projects() else {
            return;
        };
        for row in rows {
            // A modification the service stopped in the middle of is not half done: its
            // added tables' units may be stored while the project still has its old objects.
            // It is marked failed (asking again adds the tables again).
            if let Ok(mods) = self.store.modifications(&row.name) {
                for m in mods.iter().filter(|m| m.state == "applying") {
                    let _ = self.store.set_modification(
                        m.id,
                        &m.change,
                        "failed",
                        "the service stopped while this was applied; ask for it again",
                    );
                }
            }
            if !matches!(row.state.as_str(), "Running" | "Paused" | "Modifying") {
                continue;
            }
            let started = api::runnable(self, &row)
                .and_then(|p| workers::spawn(self, p).map_err(error::ApiError::internal));
            match started {
                Ok(()) => tracing::info!(project = %row.name, "resumed from its checkpoint"),
                Err(e) => {
                    let _ = self.store.add_event(&row.name, &e.message);
                    let _ = self
                        .store
                        .set_project_state(&row.name, "Failed", &e.message);
                }
            }
        }
        self.ready.store(true, Ordering::SeqCst);
    }
}

/// Runs the service until SIGINT or SIGTERM; then stops every worker gracefully (their states
/// stay, so the next start resumes them). `bound` is told the address listened on.
pub fn serve(
    app: App,
    opts: &ServerOptions,
    bound: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let listen_err = |message: String| ServerError::Listen {
        addr: opts.listen.clone(),
        message,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| listen_err(e.to_string()))?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&opts.listen))
        .map_err(|e| listen_err(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| listen_err(e.to_string()))?;
    bound(addr);
    let stop = Arc::new(AtomicBool::new(false));
    workers::sampler(app.clone(), opts.sample_every, stop.clone());
    let booting = app.clone();
    std::thread::spawn(move || booting.resume_projects());
    let router = api::router(app.clone());
    let served = rt.block_on(async {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                use tokio::signal::unix::{signal, SignalKind};
                match (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) {
                    (Ok(mut t), Ok(mut i)) => {
                        tokio::select! {
                            _ = t.recv() => {},
                            _ = i.recv() => {},
                        }
                    }
                    _ => std::future::pending::<()>().await,
                }
            })
            .await
    });
    stop.store(true, Ordering::SeqCst);
    eprintln!("sluice server: stopping the projects (flushing and checkpointing)");
    workers::stop_all(&app);
    served.map_err(|e| listen_err(e.to_string()))
}
