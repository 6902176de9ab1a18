//! The web console in a real browser: headless Chromium from Debian's packages, driven by
//! Playwright for Python (`dev/services browser-python`), against a `sluice server`. Each
//! scenario saves screenshots of its pages under `target/tmp/console/`.

mod common;

use common::server::Server;
use common::*;
use serde_json::json;

#[test]
fn signing_in_shows_the_projects_and_data_sources_and_signing_out_ends_the_session() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let dir = temp_dir(&unique_name("srvweb"));
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    let (host, port) = MARIADB
        .get()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap_or_default();
    api.ok("POST", "/api/v1/datasources", Some(json!({"name": "shop", "kind": "mariadb", "host": host, "port": port.parse::<u16>()?, "user": "root"})))?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "mq", "kind": "kafka", "brokers": "127.0.0.1:1"})),
    )?;
    api.ok(
        "POST",
        "/api/v1/projects",
        Some(json!({
            "name": "web-demo",
            "source": {"datasource": "shop", "server_id": 4321},
            "destination": {"datasource": "mq", "format": "oms"},
            "objects": {"include": ["shop.*"]},
        })),
    )?;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console/signin");
    let out = Command::new(repo_root().join("dev/services"))
        .arg("browser-python")
        .arg(repo_root().join("crates/sluice/tests/console/signin.py"))
        .arg(&server.url)
        .arg(&shots)
        .args(["web-demo", "shop", "adminpw"])
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains("console scenario passed"),
        "{said}\n{}",
        server.log()
    );
    for shot in ["projects.png", "datasources.png", "signed-out.png"] {
        assert!(std::fs::metadata(shots.join(shot))?.len() > 1000, "{shot}");
    }
    Ok(())
}
