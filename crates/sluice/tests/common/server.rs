//! A `sluice server` of a test, and calls to its API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::{sluice, TestResult};
use mysql_async::prelude::Queryable;

/// A `sluice server` on a free port with its own data directory; killed when dropped. Its
/// output goes to `server.log` in the directory (read it when a test fails).
pub struct Server {
    child: Option<std::process::Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory.
    pub dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Server {
    /// Starts a server on `dir` with `admin` / `adminpw`.
    pub fn start(dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_with(dir, &[("SLUICE_ADMIN_PASSWORD", "adminpw")])
    }

    /// Starts a server on `dir` with these environment variables.
    pub fn start_with(
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let mut s = Self {
            child: None,
            url: String::new(),
            dir: dir.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.launch()?;
        Ok(s)
    }

    fn launch(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(&self.dir)?;
        let log_path = self.dir.join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let start = std::fs::metadata(&log_path)?.len();
        let mut cmd = sluice();
        if std::env::var_os("SLUICE_LOG").is_none() {
            cmd.env("SLUICE_LOG", "info");
        }
        cmd.env("SLUICE_SAMPLE_MS", "500");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&self.dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let new = text.get(start as usize..).unwrap_or("");
            if let Some(at) = new.find("listening on ") {
                let rest = &new[at + "listening on ".len()..];
                self.url = rest.split_whitespace().next().unwrap_or("").to_string();
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("sluice server did not start: {new}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Until the projects that were running have been started again.
        let deadline = Instant::now() + Duration::from_secs(60);
        while call(&self.url, None, "GET", "/ready", None).map(|(s, _)| s) != Ok(200) {
            if Instant::now() > deadline {
                return Err("sluice server never became ready".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// SIGKILL: no flush, no checkpoint.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (the graceful stop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = super::sigterm(&c);
            let _ = c.wait();
        }
    }

    /// Starts it again on the same directory.
    pub fn restart(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.kill9();
        self.launch()
    }

    /// What it printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A session of `user`.
    pub fn login(&self, user: &str, password: &str) -> Result<Api, Box<dyn std::error::Error>> {
        let (status, v) = call(
            &self.url,
            None,
            "POST",
            "/api/v1/login",
            Some(json!({"user": user, "password": password})),
        )?;
        if status != 200 {
            return Err(format!("login {user}: {status} {v}").into());
        }
        Ok(Api {
            url: self.url.clone(),
            token: v["token"].as_str().unwrap_or("").to_string(),
            seen: Default::default(),
        })
    }

    /// The admin's session.
    pub fn admin(&self) -> Result<Api, Box<dyn std::error::Error>> {
        self.login("admin", "adminpw")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One HTTP call; (status, the answer's text).
fn request(
    url: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Json>,
) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(300)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{url}{path}"))
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let req = req.body(bytes).map_err(|e| e.to_string())?;
    let mut resp = agent
        .run(req)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.body_mut().read_to_string().unwrap_or_default()))
}

/// One HTTP call; (status, JSON answer or Null).
pub fn call(
    url: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Json>,
) -> Result<(u16, Json), String> {
    let (status, text) = request(url, token, method, path, body)?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Json::Null)))
}

/// The text of a GET (a YAML answer).
pub fn text(url: &str, token: &str, path: &str) -> Result<String, String> {
    request(url, Some(token), "GET", path, None).map(|(_, t)| t)
}

/// Calls of one user; every answer is kept (a test greps them for secrets).
pub struct Api {
    /// The server.
    pub url: String,
    /// The token.
    pub token: String,
    /// Every answer's text.
    pub seen: std::cell::RefCell<String>,
}

impl Api {
    /// (status, answer).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Json>,
    ) -> Result<(u16, Json), String> {
        let r = call(&self.url, Some(&self.token), method, path, body)?;
        self.seen.borrow_mut().push_str(&format!("{}\n", r.1));
        Ok(r)
    }

    /// The answer of a call that must succeed (2xx).
    pub fn ok(
        &self,
        method: &str,
        path: &str,
        body: Option<Json>,
    ) -> Result<Json, Box<dyn std::error::Error>> {
        let (s, v) = self.call(method, path, body)?;
        if !(200..300).contains(&s) {
            return Err(format!("{method} {path}: {s} {v}").into());
        }
        Ok(v)
    }

    /// A project's view.
    pub fn project(&self, name: &str) -> Result<Json, Box<dyn std::error::Error>> {
        self.ok("GET", &format!("/api/v1/projects/{name}"), None)
    }

    /// An action on a project (must succeed); the answer.
    pub fn act(&self, name: &str, action: &str) -> Result<Json, Box<dyn std::error::Error>> {
        self.ok(
            "POST",
            &format!("/api/v1/projects/{name}/{action}"),
            Some(json!({})),
        )
    }

    /// Waits until `check` holds of the project's view (or fails after `secs`).
    pub fn wait_for(
        &self,
        name: &str,
        secs: u64,
        what: &str,
        check: impl Fn(&Json) -> bool,
    ) -> Result<Json, Box<dyn std::error::Error>> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.project(name)?;
            if check(&v) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("project {name}: {what} not reached in {secs} s: {v}").into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the project's checkpoint has passed the source's current end and all its
    /// full sync is done.
    pub fn wait_caught_up(
        &self,
        name: &str,
        end_ms: u64,
        secs: u64,
    ) -> Result<Json, Box<dyn std::error::Error>> {
        self.wait_for(name, secs, "caught up", |v| {
            v["full"]["finished"] == json!(true)
                && v["checkpoint"]["ts_ms"]
                    .as_u64()
                    .is_some_and(|t| t >= end_ms)
        })
    }
}

/// Now, ms, rounded down to the second (binlog times are whole seconds).
pub fn now_s_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() * 1000)
        .unwrap_or(0)
}

/// `host:port` split.
pub fn host_port(addr: &str) -> (String, u16) {
    let (h, p) = addr.rsplit_once(':').unwrap_or((addr, "3306"));
    (h.to_string(), p.parse().unwrap_or(3306))
}

/// A MariaDB user with a password (the secret the tests look for), granted what a source
/// needs (`all`) or only SELECT.
pub async fn source_user(
    c: &mut mysql_async::Conn,
    name: &str,
    all: bool,
) -> Result<String, mysql_async::Error> {
    let password = format!("Pw-{name}-q7!");
    c.query_drop(format!(
        "CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{password}'"
    ))
    .await?;
    let grant = if all { "ALL PRIVILEGES" } else { "SELECT" };
    c.query_drop(format!("GRANT {grant} ON *.* TO '{name}'@'%'"))
        .await?;
    Ok(password)
}

/// A check of a project's state.
pub fn state_is(s: &'static str) -> impl Fn(&Json) -> bool {
    move |v: &Json| v["state"] == json!(s)
}

/// A refused action: 409, naming the states that allow it.
pub fn refused(api: &Api, name: &str, action: &str, allows: &str) -> TestResult {
    let (s, v) = match action {
        "delete" => api.call("DELETE", &format!("/api/v1/projects/{name}"), None)?,
        _ => api.call(
            "POST",
            &format!("/api/v1/projects/{name}/{action}"),
            Some(json!({})),
        )?,
    };
    assert_eq!(s, 409, "{action}: {v}");
    let msg = v["error"].as_str().unwrap_or("");
    assert!(
        msg.contains(&format!("{action} is allowed only when it is {allows}")),
        "{msg}"
    );
    Ok(())
}
