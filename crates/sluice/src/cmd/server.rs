//! `sluice server` (the service), `sluice precheck -f`, and the API client commands
//! (`sluice datasource ...`, `sluice project create|start|... --server URL`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// Arguments of `sluice server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where the API (and /metrics, /health, /ready) listens.
    #[arg(long, default_value = "127.0.0.1:8640")]
    listen: String,
    /// The data directory: meta.db (projects, data sources, users, checkpoints) and the
    /// master key file.
    #[arg(long, default_value = "sluice-data")]
    data_dir: PathBuf,
    /// The master key file (default DATA_DIR/master.key; SLUICE_MASTER_KEY overrides it).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

/// Runs `sluice server`.
pub fn server(args: ServerArgs) -> anyhow::Result<()> {
    let sample_ms = std::env::var("SLUICE_SAMPLE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5000)
        .max(100);
    let opts = sluice_server::ServerOptions {
        listen: args.listen,
        data_dir: args.data_dir,
        key_file: args.key_file,
        sample_every: Duration::from_millis(sample_ms),
    };
    let (app, generated) = sluice_server::App::open(&opts)?;
    if let Some(p) = generated {
        println!(
            "sluice server: created user admin with the one-time password {p}\n  \
             (shown only now; change it: PUT /api/v1/users/admin {{\"password\": ...}}, or start \
             with SLUICE_ADMIN_PASSWORD set on a new data directory)"
        );
    }
    let dir = opts.data_dir.display().to_string();
    sluice_server::serve(app, &opts, |addr| {
        println!("sluice server: listening on http://{addr} (data in {dir})");
    })?;
    Ok(())
}

/// Arguments of `sluice precheck`.
#[derive(Debug, Args)]
pub struct PrecheckArgs {
    /// The project file.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
}

/// Runs `sluice precheck -f`: prints each finding with its fix; fails when one is a failure.
pub fn precheck(args: PrecheckArgs) -> anyhow::Result<()> {
    let project = sluice_registry::load(&args.file)?;
    let found = sluice_pipeline::precheck(&project);
    println!("checked: {}", found.checked.join(", "));
    for f in &found.warnings {
        println!("warning: [{}] {}\n  fix: {}", f.item, f.problem, f.fix);
    }
    for f in &found.failures {
        println!("failed:  [{}] {}\n  fix: {}", f.item, f.problem, f.fix);
    }
    if found.failures.is_empty() {
        println!("precheck passed ({} warnings)", found.warnings.len());
        Ok(())
    } else {
        bail!(
            "precheck of project {} failed: {} item(s)",
            project.name,
            found.failures.len()
        )
    }
}

/// Where the API is and the token to use.
#[derive(Debug, Args)]
pub struct Remote {
    /// The service's address.
    #[arg(long, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:8640")]
    server: String,
    /// The token (from `POST /api/v1/login` or an API token); taken from SLUICE_TOKEN.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Remote {
    /// Calls the API; the answer's JSON, or the error it names.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(600)))
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.server.trim_end_matches('/'));
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let (ctype, bytes) = body.unwrap_or(("application/json", Vec::new()));
        let req = req
            .header("content-type", ctype)
            .body(bytes)
            .context("request")?;
        let mut resp = agent
            .run(req)
            .with_context(|| format!("cannot reach the sluice server at {}: is it running (sluice server)? give --server or SLUICE_SERVER", self.server))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 {
            let msg = v
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(text);
            let field = v
                .get("field")
                .and_then(Value::as_str)
                .filter(|f| !f.is_empty());
            match field {
                Some(f) => bail!("{f}: {msg} (HTTP {status})"),
                None if status == 401 => {
                    bail!("{msg} (HTTP 401; set SLUICE_TOKEN to a token from POST /api/v1/login)")
                }
                None => bail!("{msg} (HTTP {status})"),
            }
        }
        Ok(v)
    }
}

/// Arguments of `sluice login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The user.
    #[arg(long, default_value = "admin")]
    user: String,
    #[command(flatten)]
    remote: Remote,
}

/// Runs `sluice login`: prints a session token for `SLUICE_TOKEN` (the password from
/// `SLUICE_PASSWORD`, else one line of standard input).
pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let password = match std::env::var("SLUICE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("read the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    let body = serde_json::to_vec(&json!({"user": args.user, "password": password}))?;
    let v = args
        .remote
        .call("POST", "/api/v1/login", Some(("application/json", body)))?;
    println!(
        "{}",
        v.get("token").and_then(Value::as_str).unwrap_or_default()
    );
    Ok(())
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `sluice datasource ...`.
#[derive(Debug, Args)]
pub struct DatasourceArgs {
    #[command(subcommand)]
    what: DatasourceCmd,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Subcommand)]
enum DatasourceCmd {
    /// Lists the data sources.
    List,
    /// Shows one (secrets as `*_set` only).
    Show {
        /// Its name.
        name: String,
    },
    /// Creates one: NAME KIND and fields as key=value (a password from --password-env).
    Create {
        /// Its name.
        name: String,
        /// mysql, mariadb, oceanbase, postgres, kafka, rocketmq or datahub.
        kind: String,
        /// Fields, `host=127.0.0.1 port=3306 user=sluice`.
        fields: Vec<String>,
        /// Reads the password (or the kind's secret field) from this environment variable.
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Deletes one (refused while a project names it).
    Delete {
        /// Its name.
        name: String,
    },
    /// Connects with it and says what the server answered.
    Test {
        /// Its name.
        name: String,
    },
}

/// Runs `sluice datasource ...`.
pub fn datasource(args: DatasourceArgs) -> anyhow::Result<()> {
    let r = &args.remote;
    match args.what {
        DatasourceCmd::List => print(&r.call("GET", "/api/v1/datasources", None)?),
        DatasourceCmd::Show { name } => {
            print(&r.call("GET", &format!("/api/v1/datasources/{name}"), None)?)
        }
        DatasourceCmd::Create {
            name,
            kind,
            fields,
            password_env,
        } => {
            let mut o = serde_json::Map::new();
            o.insert("name".into(), json!(name));
            o.insert("kind".into(), json!(kind));
            for f in fields {
                let Some((k, v)) = f.split_once('=') else {
                    bail!("{f}: give fields as key=value");
                };
                let v = match v.parse::<u64>() {
                    Ok(n) if k == "port" => json!(n),
                    _ => json!(v),
                };
                o.insert(k.into(), v);
            }
            if let Some(var) = password_env {
                let p = std::env::var(&var)
                    .with_context(|| format!("--password-env {var}: the variable is not set"))?;
                let key = match kind.as_str() {
                    "rocketmq" => "secret_key",
                    "datahub" => "access_key",
                    _ => "password",
                };
                o.insert(key.into(), json!(p));
            }
            let body = serde_json::to_vec(&Value::Object(o))?;
            print(&r.call(
                "POST",
                "/api/v1/datasources",
                Some(("application/json", body)),
            )?);
        }
        DatasourceCmd::Delete { name } => {
            r.call("DELETE", &format!("/api/v1/datasources/{name}"), None)?;
            println!("data source {name} deleted");
        }
        DatasourceCmd::Test { name } => {
            let v = r.call("POST", &format!("/api/v1/datasources/{name}/test"), None)?;
            print(&v);
            if v.get("ok") != Some(&Value::Bool(true)) {
                bail!("data source {name}: the connection test failed");
            }
        }
    }
    Ok(())
}

/// A project action against the service.
pub fn remote_project(
    remote: &Remote,
    action: &str,
    name: Option<&str>,
    file: Option<&PathBuf>,
    force: bool,
) -> anyhow::Result<()> {
    let need = || name.context("give the project name");
    match action {
        "create" => {
            let f = file.context("give the project file: sluice project create -f project.yaml (- reads standard input)")?;
            let text = if f.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                    .context("read the project file from standard input")?;
                b
            } else {
                std::fs::read(f).with_context(|| format!("read {}", f.display()))?
            };
            print(&remote.call("POST", "/api/v1/projects", Some(("application/yaml", text)))?);
        }
        "list" => print(&remote.call("GET", "/api/v1/projects", None)?),
        "status" => print(&remote.call("GET", &format!("/api/v1/projects/{}", need()?), None)?),
        "delete" => {
            remote.call("DELETE", &format!("/api/v1/projects/{}", need()?), None)?;
            println!("project {} deleted", need()?);
        }
        a => {
            let body = if force {
                json!({"force": true})
            } else {
                json!({})
            };
            let v = remote.call(
                "POST",
                &format!("/api/v1/projects/{}/{a}", need()?),
                Some(("application/json", serde_json::to_vec(&body)?)),
            )?;
            print(&v);
            if a == "precheck" && v.get("passed") != Some(&Value::Bool(true)) {
                bail!("precheck of project {} failed", need()?);
            }
        }
    }
    Ok(())
}
