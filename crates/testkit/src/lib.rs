//! Test support for Sluice: where the real services of `dev/services` listen, and a way for a
//! test to bring up the ones it needs.
//!
//! Invariants:
//! - Every address has a fixed default on 127.0.0.1 and an environment variable that overrides
//!   it; `dev/services` reads the same variables, so tests and the script never disagree.
//! - [`ensure_up`] runs `dev/services up NAME...` (idempotent, serialised by a lock in the script),
//!   at most once per service per test process. With `SLUICE_SERVICES_EXTERNAL=1` it starts
//!   nothing and only reports which services the test expects.
#![deny(missing_docs)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

mod postgres;
mod rocketmq;
mod tls;
pub use postgres::TempPostgres;
pub use rocketmq::TempRocketmq;
pub use tls::{Certs, TlsTerminator};

/// One real service of the harness, as named by `dev/services`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// MariaDB with binary logging (the main source instance).
    Mariadb,
    /// Two more MariaDB instances for sharded logical tables.
    MariadbShards,
    /// The Kafka-protocol broker (tansu).
    Kafka,
    /// RocketMQ name server and broker (rocketmq-rust).
    Rocketmq,
    /// OceanBase seekdb, a MySQL-protocol destination.
    Oceanbase,
    /// PostgreSQL.
    Postgres,
    /// The DataHub-protocol server of the repo (crates/datahub-server) and the official SDK.
    Datahub,
    /// The Confluent-compatible schema registry of the repo (crates/schema-registry-server)
    /// and the official client (confluent-kafka's schema-registry and Avro extras).
    SchemaRegistry,
}

impl Service {
    /// The name `dev/services` knows this service by.
    pub fn name(self) -> &'static str {
        match self {
            Service::Mariadb => "mariadb",
            Service::MariadbShards => "mariadb-shards",
            Service::Kafka => "kafka",
            Service::Rocketmq => "rocketmq",
            Service::Oceanbase => "oceanbase",
            Service::Postgres => "postgres",
            Service::Datahub => "datahub",
            Service::SchemaRegistry => "schema-registry",
        }
    }
}

/// A named address of the harness: the environment variable that overrides it and its default.
#[derive(Debug, Clone, Copy)]
pub struct Address {
    /// Environment variable read by the tests and by `dev/services`.
    pub env: &'static str,
    /// Default `host:port` on loopback.
    pub default: &'static str,
}

impl Address {
    /// The address in force: the environment variable if set and not empty, else the default.
    pub fn get(&self) -> String {
        match std::env::var(self.env) {
            Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => self.default.to_string(),
        }
    }

    /// The port of the address in force.
    pub fn port(&self) -> u16 {
        self.get()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{} is not host:port", self.env))
    }
}

/// MariaDB source instance.
pub const MARIADB: Address = Address {
    env: "SLUICE_MARIADB_ADDR",
    default: "127.0.0.1:3316",
};
/// First MariaDB shard instance.
pub const MARIADB_SHARD1: Address = Address {
    env: "SLUICE_MARIADB_SHARD1_ADDR",
    default: "127.0.0.1:3317",
};
/// Second MariaDB shard instance.
pub const MARIADB_SHARD2: Address = Address {
    env: "SLUICE_MARIADB_SHARD2_ADDR",
    default: "127.0.0.1:3318",
};
/// Kafka-protocol broker (bootstrap server).
pub const KAFKA: Address = Address {
    env: "SLUICE_KAFKA_ADDR",
    default: "127.0.0.1:9092",
};
/// RocketMQ name server.
pub const ROCKETMQ_NAMESRV: Address = Address {
    env: "SLUICE_ROCKETMQ_NAMESRV_ADDR",
    default: "127.0.0.1:9876",
};
/// OceanBase seekdb.
pub const OCEANBASE: Address = Address {
    env: "SLUICE_OCEANBASE_ADDR",
    default: "127.0.0.1:2881",
};
/// PostgreSQL.
pub const POSTGRES: Address = Address {
    env: "SLUICE_POSTGRES_ADDR",
    default: "127.0.0.1:5433",
};

/// The DataHub-protocol server (`http://` + this).
pub const DATAHUB: Address = Address {
    env: "SLUICE_DATAHUB_ADDR",
    default: "127.0.0.1:8280",
};

/// The schema registry (`http://` + this).
pub const SCHEMA_REGISTRY: Address = Address {
    env: "SLUICE_SCHEMA_REGISTRY_ADDR",
    default: "127.0.0.1:8281",
};

/// The repository's root folder (where `dev/services` lives).
///
/// Read at run time first (cargo and nextest set `CARGO_MANIFEST_DIR` for the tests they run):
/// a build reused from another checkout must still drive this checkout's services.
pub fn repo_root() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    PathBuf::from(manifest).join("../..")
}

/// The per-user cache of `dev/services` (installed brokers, virtual environments, probes).
pub fn services_cache() -> PathBuf {
    if let Ok(dir) = std::env::var("SLUICE_SERVICES_CACHE") {
        if !dir.is_empty() {
            return PathBuf::from(dir);
        }
    }
    let base = std::env::var("XDG_CACHE_HOME")
        .ok()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into())).join(".cache")
        });
    base.join("sluice-services")
}

/// Brings up the given services through `dev/services up`, once per service per process.
///
/// Panics with the command to run when a service cannot be brought up: a test that needs a real
/// server must fail loudly, never pass without one.
pub fn ensure_up(services: &[Service]) {
    static STARTED: OnceLock<Mutex<HashSet<Service>>> = OnceLock::new();
    let started = STARTED.get_or_init(|| Mutex::new(HashSet::new()));
    let mut started = started.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = services
        .iter()
        .filter(|s| !started.contains(s))
        .map(|s| s.name())
        .collect();
    if missing.is_empty() {
        return;
    }
    let script = repo_root().join("dev/services");
    let external = std::env::var("SLUICE_SERVICES_EXTERNAL").is_ok_and(|v| v == "1");
    let verb = if external { "check" } else { "up" };
    let status = Command::new(&script).arg(verb).args(&missing).status();
    match status {
        Ok(s) if s.success() => started.extend(services.iter().copied()),
        other => panic!(
            "services {missing:?} are not available ({other:?}); run `dev/services up {}` and see \
             its output",
            missing.join(" ")
        ),
    }
}

/// A name no other test run will use: `prefix_<pid>_<time>_<counter>`, safe as a MySQL database,
/// table or topic name, so tests run in parallel and re-runs never collide.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000_000)
        .unwrap_or(0);
    format!("{prefix}_{}_{t}_{n}", std::process::id())
}

/// A throwaway MariaDB server with its own settings, for tests that need a source configured
/// differently from the harness's (binary logging off, STATEMENT format, ...). Started in a
/// temporary folder on a free loopback port; killed and removed on drop.
pub struct TempMariadb {
    dir: PathBuf,
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl TempMariadb {
    /// Starts a server whose `[mysqld]` section gets `settings` (one `key=value` per entry).
    /// Needs the MariaDB packages (`ensure_up(&[Service::Mariadb])` installs them).
    pub fn start(settings: &[&str]) -> Result<Self, String> {
        ensure_up(&[Service::Mariadb]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(unique_name("sluice-mariadb"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let d = dir.display();
        let cnf = format!(
            "[mysqld]\nuser=root\ndatadir={d}/data\ntmpdir={d}/tmp\nsocket={d}/mysqld.sock\npid-file={d}/mysqld.pid\n\
             log_error={d}/error.log\nbind-address=127.0.0.1\nport={port}\nskip_name_resolve=ON\n\
             innodb_buffer_pool_size=32M\nperformance_schema=OFF\n{}\n",
            settings.join("\n")
        );
        // A tmpdir of its own: two bootstraps at once otherwise collide on /tmp's temporary
        // tables ("Unknown table 'mysql.tmp_user_sys'"), as two tests starting servers did.
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cnf_path = dir.join("my.cnf");
        std::fs::write(&cnf_path, cnf).map_err(|e| format!("{}: {e}", cnf_path.display()))?;
        let install = Command::new("mariadb-install-db")
            .arg(format!("--defaults-file={}", cnf_path.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .map_err(|e| format!("mariadb-install-db: {e}"))?;
        if !install.status.success() {
            return Err(format!(
                "mariadb-install-db failed: {}{}; its log: {}",
                String::from_utf8_lossy(&install.stdout),
                String::from_utf8_lossy(&install.stderr),
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            ));
        }
        let child = Self::spawn(&dir)?;
        let server = Self {
            dir,
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn spawn(dir: &std::path::Path) -> Result<std::process::Child, String> {
        Command::new("mariadbd")
            .arg(format!("--defaults-file={}", dir.join("my.cnf").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("mariadbd: {e}"))
    }

    /// Stops the server gracefully (SIGTERM, as `dev/services down` does) and starts it again
    /// on the same data and port.
    pub fn restart(&mut self) -> Result<(), String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.dir)?;
        self.wait_ready()
    }

    /// Kills the server (SIGKILL: a crash, in-flight transactions lost to recovery); it stays
    /// down until [`TempMariadb::start_again`].
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a crashed server again on the same data and port (crash recovery runs).
    pub fn start_again(&mut self) -> Result<(), String> {
        self.child = Self::spawn(&self.dir)?;
        self.wait_ready()
    }

    /// Ready when root can connect over the socket; root@127.0.0.1 is (re)granted for TCP.
    fn wait_ready(&self) -> Result<(), String> {
        let sock = format!("--socket={}/mysqld.sock", self.dir.display());
        let grant = "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; \
                     GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ok = Command::new("mariadb")
                .args([sock.as_str(), "-uroot", "-e", grant])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                return Err(format!("temporary MariaDB did not start: {log}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for TempMariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a tool of the harness (`dev/services VERB SCRIPT ARGS...`, e.g. the Python that has an
/// official client): its standard output, or an error with its output and its errors.
pub fn services_tool(
    verb: &str,
    script: &std::path::Path,
    args: &[&str],
) -> Result<String, String> {
    let out = Command::new(repo_root().join("dev/services"))
        .arg(verb)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("dev/services {verb}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// Waits until `child` listens on 127.0.0.1:`port`, for at most `secs`; an error if it exited
/// first or time ran out (the caller adds its log).
pub fn wait_listening(child: &mut std::process::Child, port: u16, secs: u64) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "it exited ({status}) before listening on port {port}"
            ));
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("it did not listen on port {port} within {secs} s"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A throwaway Kafka-protocol broker (tansu from the services cache) with its own file storage
/// on a free loopback port, for tests that stop and restart the broker without disturbing the
/// shared one. Killed and removed on drop.
pub struct TempKafka {
    dir: PathBuf,
    storage: &'static str,
    child: Option<std::process::Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The address the broker tells clients to connect to (`addr`, unless a TLS terminator
    /// stands in front of it).
    advertised: String,
}

impl TempKafka {
    /// Starts a broker (the shared `kafka` service is brought up first: it installs tansu).
    pub fn start() -> Result<Self, String> {
        Self::start_with("sqlite:///tansu.db")
    }

    /// Starts a broker that keeps its records in memory: quick to read back in bulk, for tests
    /// that write tens of thousands of records and never restart the broker.
    pub fn start_memory() -> Result<Self, String> {
        Self::start_with("memory://tansu/")
    }

    /// Starts a memory broker that tells clients to connect to `advertised` (`host:port` of a
    /// TLS terminator in front of it) instead of its own address.
    pub fn start_advertising(advertised: &str) -> Result<Self, String> {
        Self::start_with_advertised("memory://tansu/", Some(advertised))
    }

    fn start_with(storage: &'static str) -> Result<Self, String> {
        Self::start_with_advertised(storage, None)
    }

    fn start_with_advertised(
        storage: &'static str,
        advertised: Option<&str>,
    ) -> Result<Self, String> {
        ensure_up(&[Service::Kafka]);
        let addr = format!("127.0.0.1:{}", free_port()?);
        let dir = std::env::temp_dir().join(unique_name("sluice-kafka"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut k = Self {
            dir,
            storage,
            child: None,
            advertised: advertised.unwrap_or(&addr).to_string(),
            addr,
        };
        k.resume()?;
        Ok(k)
    }

    fn tansu() -> Result<PathBuf, String> {
        let cache = services_cache();
        std::fs::read_dir(&cache)
            .map_err(|e| format!("{}: {e}", cache.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin/tansu"))
            .find(|p| p.exists())
            .ok_or_else(|| {
                format!(
                    "no tansu under {}; run dev/services install kafka",
                    cache.display()
                )
            })
    }

    /// Stops the broker (SIGKILL: an abrupt outage); its stored records stay.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the broker again on the same storage and port; returns once the port accepts.
    pub fn resume(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.join("tansu.log")).map_err(|e| e.to_string())?;
        let child = Command::new(Self::tansu()?)
            .current_dir(&self.dir)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://{}", self.addr),
                "--advertised-listener-url",
                &format!("tcp://{}", self.advertised),
                "--storage-engine",
                self.storage,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("tansu: {e}"))?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            if std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("tansu.log")).unwrap_or_default();
                return Err(format!("temporary broker did not listen: {log}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for TempKafka {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that is free now, with `below` ports under it and `above` over it free too
/// (a RocketMQ broker also listens 2 below and 1 above its port).
pub(crate) fn free_port_block(below: u16, above: u16) -> Result<u16, String> {
    for _ in 0..50 {
        let p = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let (Some(lo), Some(hi)) = (p.checked_sub(below), p.checked_add(above)) else {
            continue;
        };
        if (lo..=hi).all(|q| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok()) {
            return Ok(p);
        }
    }
    Err("no block of free ports".into())
}

/// A throwaway DataHub-protocol server (the one `dev/services` builds) on a free loopback port
/// with its own data folder, for tests that stop it, inject failures or split its shards
/// without disturbing the shared one. Killed and removed on drop.
pub struct TempDatahub {
    dir: PathBuf,
    child: Option<std::process::Child>,
    env: Vec<(String, String)>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl TempDatahub {
    /// Starts a server; returns once it answers.
    pub fn start() -> Result<Self, String> {
        Self::start_with_env(&[])
    }

    /// Starts a server with extra environment (`SLUICE_DATAHUB_FAIL_EVERY`, ...).
    pub fn start_with_env(env: &[(&str, &str)]) -> Result<Self, String> {
        ensure_up(&[Service::Datahub]);
        let port = free_port_block(0, 0)?;
        let dir = std::env::temp_dir().join(unique_name("sluice-datahub"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut d = Self {
            dir,
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            addr: format!("127.0.0.1:{port}"),
        };
        d.resume()?;
        Ok(d)
    }

    /// `http://ADDR`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server abruptly (SIGKILL); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data and port; returns once it listens.
    pub fn resume(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(repo_root().join("dev/services"));
        cmd.args(["datahub-server", "--listen", &self.addr, "--data"])
            .arg(self.dir.join("data"))
            .stdout(std::process::Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().map_err(|e| format!("datahub server: {e}"))?);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            if std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(format!("temporary DataHub server did not listen: {log}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for TempDatahub {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
