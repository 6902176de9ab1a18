//! A PostgreSQL server of a test's own.

use std::path::PathBuf;
use std::process::Command;

use crate::{ensure_up, unique_name, Service};

/// A throwaway PostgreSQL server (`wal_level=logical`) in a temporary folder on a free
/// loopback port, for tests that restart or crash the source without disturbing the shared
/// one. Run through `pg_ctl` (as the `postgres` user when the tests run as root, since
/// PostgreSQL refuses root); stopped at once and removed on drop.
pub struct TempPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Settings after the defaults (`name=value`), which they override.
    settings: Vec<String>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl TempPostgres {
    /// Initialises and starts a server (the shared `postgres` service is brought up first:
    /// it installs the packages).
    pub fn start() -> Result<Self, String> {
        Self::start_with(&[])
    }

    /// [`TempPostgres::start`] with these settings (`name=value`) over the defaults.
    pub fn start_with(settings: &[&str]) -> Result<Self, String> {
        let server = Self::init(settings)?;
        server.start_again()?;
        Ok(server)
    }

    /// A data folder made by initdb, not started.
    fn init(settings: &[&str]) -> Result<Self, String> {
        ensure_up(&[Service::Postgres]);
        let bin = Self::bin_dir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(unique_name("sluice-postgres"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if Self::as_root() {
            let _ = Command::new("chown").arg("postgres").arg(&dir).status();
        }
        let server = Self {
            addr: format!("127.0.0.1:{port}"),
            dir,
            bin,
            port,
            settings: settings.iter().map(|s| s.to_string()).collect(),
        };
        let init = server
            .pg("initdb")
            .arg("-D")
            .arg(server.dir.join("data"))
            .args(["-A", "trust", "-U", "postgres"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            ));
        }
        Ok(server)
    }

    /// A server that accepts TLS connections only (`hostnossl` lines reject the rest),
    /// presenting `cert` and `key` (`ca` for client certificates).
    pub fn start_with_tls(
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
    ) -> Result<Self, String> {
        let server = Self::init(&[
            "ssl=on",
            "ssl_cert_file=server.crt",
            "ssl_key_file=server.key",
            "ssl_ca_file=ca.crt",
        ])?;
        server.install_tls(cert, key, ca)?;
        server.start_again()?;
        Ok(server)
    }

    /// Copies the TLS files into the data folder (owned by the server's user, the key private)
    /// and lets TCP clients in over TLS only.
    fn install_tls(
        &self,
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
    ) -> Result<(), String> {
        let data = self.dir.join("data");
        for (from, to) in [(cert, "server.crt"), (key, "server.key"), (ca, "ca.crt")] {
            let dest = data.join(to);
            std::fs::copy(from, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            if Self::as_root() {
                let _ = Command::new("chown").arg("postgres").arg(&dest).status();
            }
            let _ = Command::new("chmod").arg("600").arg(&dest).status();
        }
        let hba = "local all all trust\n\
                   local replication all trust\n\
                   hostssl all all 127.0.0.1/32 trust\n\
                   hostssl replication all 127.0.0.1/32 trust\n\
                   hostnossl all all 127.0.0.1/32 reject\n\
                   hostnossl replication all 127.0.0.1/32 reject\n";
        std::fs::write(data.join("pg_hba.conf"), hba).map_err(|e| e.to_string())
    }

    /// The folder of the server's Unix socket (local connections are trusted, also when TCP
    /// clients must use TLS).
    pub fn socket_dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    fn bin_dir() -> Result<PathBuf, String> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("/usr/lib/postgresql: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_ctl").exists())
            .collect();
        found.sort();
        found
            .pop()
            .ok_or_else(|| "no PostgreSQL binaries under /usr/lib/postgresql".into())
    }

    /// A command of the server's binaries, as the postgres user when we are root.
    fn pg(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if Self::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn ctl(&self, args: &[&str]) -> Result<(), String> {
        let out = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {}: {}{}; log: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
            ))
        }
    }

    /// Starts a stopped server on the same data and port (after a crash, recovery runs).
    pub fn start_again(&self) -> Result<(), String> {
        let log = self.dir.join("postgres.log");
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10",
            self.port,
            self.dir.display()
        );
        for s in &self.settings {
            opts.push_str(&format!(" -c {s}"));
        }
        self.ctl(&[
            "-l",
            &log.display().to_string(),
            "-w",
            "-t",
            "60",
            "-o",
            &opts,
            "start",
        ])
    }

    /// Stops the server as an administrator would (`pg_ctl stop -m fast`) and starts it again.
    pub fn restart(&self) -> Result<(), String> {
        self.ctl(&["-w", "-m", "fast", "stop"])?;
        self.start_again()
    }

    /// Stops the server at once, without a checkpoint (`-m immediate`: a crash; recovery
    /// runs at the next start).
    pub fn crash(&self) {
        let _ = self.ctl(&["-w", "-m", "immediate", "stop"]);
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
