//! A RocketMQ name server and broker of a test's own.

use std::path::PathBuf;
use std::process::Command;

use crate::{ensure_up, free_port_block, repo_root, services_cache, unique_name, Service};

/// A throwaway RocketMQ name server and broker (rocketmq-rust from the services cache) on free
/// loopback ports with their own store, for tests that stop the broker without disturbing the
/// shared one. Killed and removed on drop.
pub struct TempRocketmq {
    dir: PathBuf,
    namesrv: Option<std::process::Child>,
    broker: Option<std::process::Child>,
    broker_port: u16,
    /// ACL: the broker authenticates every request with this user (name, password).
    auth: Option<(String, String)>,
    /// The name server, `127.0.0.1:PORT`.
    pub namesrv_addr: String,
}

impl TempRocketmq {
    /// Starts a name server and a broker (the shared `rocketmq` service is brought up first: it
    /// installs them and the probe); returns once a message makes a round trip.
    pub fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    /// Starts a name server and a broker that authenticates every request (ACL 2.0) and
    /// knows one user, `user` with `password` (its access key and secret key); ready once the
    /// broker listens and had a moment to register.
    pub fn start_with_auth(user: &str, password: &str) -> Result<Self, String> {
        Self::start_with(Some((user.to_string(), password.to_string())))
    }

    fn start_with(auth: Option<(String, String)>) -> Result<Self, String> {
        ensure_up(&[Service::Rocketmq]);
        let ns = free_port_block(0, 0)?;
        // Where dev/services keeps RocketMQ stores: not on a disk a build may fill past the
        // 90% at which rocketmq-rust refuses every message (see `scratch_root` there).
        let scratch = Command::new(repo_root().join("dev/services"))
            .arg("rocketmq-scratch")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_else(std::env::temp_dir);
        let dir = scratch.join(unique_name("sluice-rocketmq"));
        std::fs::create_dir_all(dir.join("home")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut r = Self {
            namesrv: None,
            broker: None,
            broker_port: free_port_block(2, 1)?,
            auth,
            namesrv_addr: format!("127.0.0.1:{ns}"),
            dir,
        };
        r.start_namesrv()?;
        r.resume()?;
        Ok(r)
    }

    /// The log file `name` in this broker's folder, appended to.
    fn log(&self, name: &str) -> Result<std::fs::File, String> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(name))
            .map_err(|e| e.to_string())
    }

    fn start_namesrv(&mut self) -> Result<(), String> {
        let port = self
            .namesrv_addr
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let log = self.log("namesrv.log")?;
        self.namesrv = Some(
            Command::new(Self::bin("rocketmq-namesrv-rust")?)
                .env("ROCKETMQ_HOME", self.dir.join("home"))
                .args(["--listenPort", &port, "--bindAddress", "127.0.0.1"])
                .arg("--rocketmqHome")
                .arg(self.dir.join("home"))
                .arg("--kvConfigPath")
                .arg(self.dir.join("kvConfig.json"))
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("rocketmq-namesrv-rust: {e}"))?,
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.namesrv_addr).is_err() {
            if std::time::Instant::now() > deadline {
                return Err("temporary RocketMQ name server did not listen".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stops the name server (SIGKILL); the broker runs on, and registers again with its next
    /// heartbeat once the name server is back.
    pub fn stop_namesrv(&mut self) {
        if let Some(mut c) = self.namesrv.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the name server again on the same port.
    pub fn resume_namesrv(&mut self) -> Result<(), String> {
        self.start_namesrv()
    }

    fn bin(name: &str) -> Result<PathBuf, String> {
        let p = services_cache().join("rocketmq-1.0.0/bin").join(name);
        if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "no {}; run dev/services install rocketmq",
                p.display()
            ))
        }
    }

    /// Stops the broker (SIGKILL: an abrupt outage); its store stays, the name server runs on.
    pub fn stop_broker(&mut self) {
        if let Some(mut c) = self.broker.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the broker again on the same store and ports; returns once a message makes a
    /// round trip through it.
    pub fn resume(&mut self) -> Result<(), String> {
        let d = self.dir.display();
        let toml = format!(
            "[broker]\nnamesrvAddr = \"{ns}\"\nbrokerIp1 = \"127.0.0.1\"\nlistenPort = {p}\n\
             storePathRootDir = \"{d}/store\"\nautoCreateTopicEnable = false\n{auth}\n\
             [broker.brokerServerConfig]\nbindAddress = \"127.0.0.1\"\n\n\
             [broker.brokerIdentity]\nbrokerName = \"sluice-temp-broker\"\nbrokerClusterName = \"SluiceTemp\"\nbrokerId = 0\n\n\
             [store]\nstoreType = \"LocalFile\"\nbrokerRole = \"ASYNC_MASTER\"\nstorePathRootDir = \"{d}/store\"\n\
             haListenAddress = \"127.0.0.1\"\nhaListenPort = {ha}\n\
             mappedFileSizeCommitLog = 134217728\nmappedFileSizeConsumeQueue = 600000\n\
             maxHashSlotNum = 50000\nmaxIndexNum = 200000\n",
            ns = self.namesrv_addr,
            p = self.broker_port,
            ha = self.broker_port + 1,
            auth = match &self.auth {
                Some((u, p)) => format!(
                    "authenticationEnabled = true\ninitAuthenticationUser = '{{\"username\":\"{u}\",\"password\":\"{p}\"}}'\n"
                ),
                None => String::new(),
            },
        );
        let conf = self.dir.join("broker.toml");
        std::fs::write(&conf, toml).map_err(|e| e.to_string())?;
        let log = self.log("broker.log")?;
        self.broker = Some(
            Command::new(Self::bin("rocketmq-broker-rust")?)
                // It keeps ACL users under $HOME/config/auth: this broker's own, not the user's.
                .current_dir(&self.dir)
                .env("HOME", &self.dir)
                .env("ROCKETMQ_HOME", self.dir.join("home"))
                .env("ROCKETMQ_SECURITY_PROFILE", "development-insecure-loopback")
                .arg("-c")
                .arg(&conf)
                .args(["-n", &self.namesrv_addr])
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("rocketmq-broker-rust: {e}"))?,
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        if self.auth.is_some() {
            // The probe has no credentials: wait for the port and the broker's registration.
            while std::net::TcpStream::connect(("127.0.0.1", self.broker_port)).is_err() {
                if std::time::Instant::now() > deadline {
                    return Err("temporary RocketMQ broker did not listen".into());
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            std::thread::sleep(std::time::Duration::from_secs(2));
            return Ok(());
        }
        loop {
            let ok = Command::new(repo_root().join("dev/services"))
                .args([
                    "rocketmq-probe",
                    "roundtrip",
                    "--namesrv",
                    &self.namesrv_addr,
                ])
                .args(["--topic", "SluiceTempProbe"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
                return Err(format!("temporary RocketMQ broker did not start: {log}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
}

impl Drop for TempRocketmq {
    fn drop(&mut self) {
        self.stop_broker();
        if let Some(mut c) = self.namesrv.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
