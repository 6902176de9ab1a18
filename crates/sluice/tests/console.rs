//! The web console in a real browser: headless Chromium from Debian's packages, driven by
//! Playwright for Python (`dev/services browser-python`), against a `sluice server`. Each
//! scenario saves screenshots of its pages under `target/tmp/console/`.

mod common;

use common::server::Server;
use common::*;
use serde_json::json;
use sluice_testkit::TempKafka;

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

#[tokio::test(flavor = "multi_thread")]
async fn the_project_page_starts_watches_and_releases_a_running_project() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    let kafka = TempKafka::start_memory()?;
    let mut c = conn().await?;
    let db = unique_name("srvwebd");
    new_table(&mut c, &db).await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, 'r', 1 FROM {db}.seq_1_to_800"
    ))
    .await?;
    let dir = temp_dir(&db);
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
        Some(json!({"name": "mq", "kind": "kafka", "brokers": kafka.addr})),
    )?;
    api.ok(
        "POST",
        "/api/v1/projects",
        Some(json!({
            "name": db,
            "source": {"datasource": "shop", "server_id": 4_100_000 + std::process::id() % 100_000},
            "destination": {"datasource": "mq", "format": "oms"},
            "objects": {"include": [format!("{db}.t")]},
            "stages": {"full": true},
            "options": {"heartbeat_secs": 1},
        })),
    )?;
    // Changes keep coming while the page watches.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = mixed_writer(db.clone(), 900, 4, stop.clone());
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console/detail");
    let (url, shots2, db2) = (server.url.clone(), shots.clone(), db.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(repo_root().join("dev/services"))
            .arg("browser-python")
            .arg(repo_root().join("crates/sluice/tests/console/detail.py"))
            .arg(&url)
            .arg(&shots2)
            .args([db2.as_str(), &format!("{db2}.t"), "adminpw"])
            .output()
    })
    .await??;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await??;
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
    assert_eq!(api.project(&db)?["state"], json!("Released"));
    for shot in ["detail-running.png", "detail-released.png"] {
        assert!(std::fs::metadata(shots.join(shot))?.len() > 1000, "{shot}");
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[test]
fn data_sources_are_added_tested_and_deleted_from_their_page() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    let kafka = TempKafka::start_memory()?;
    let dir = temp_dir(&unique_name("srvwebs"));
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    let (host, port) = MARIADB
        .get()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap_or_default();
    api.ok("POST", "/api/v1/datasources", Some(json!({"name": "used", "kind": "mariadb", "host": host, "port": port.parse::<u16>()?, "user": "root"})))?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "mq", "kind": "kafka", "brokers": kafka.addr})),
    )?;
    api.ok(
        "POST",
        "/api/v1/projects",
        Some(json!({
            "name": "holder",
            "source": {"datasource": "used", "server_id": 4322},
            "destination": {"datasource": "mq", "format": "oms"},
            "objects": {"include": ["x.*"]},
        })),
    )?;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console/datasources");
    let out = Command::new(repo_root().join("dev/services"))
        .arg("browser-python")
        .arg(repo_root().join("crates/sluice/tests/console/datasources.py"))
        .arg(&server.url)
        .arg(&shots)
        .args([
            host.as_str(),
            port.as_str(),
            kafka.addr.as_str(),
            "used",
            "holder",
            "adminpw",
        ])
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
    let names: Vec<String> = api
        .ok("GET", "/api/v1/datasources", None)?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["mq", "mq2", "shop2", "used"], "what the page left");
    assert!(!server.log().contains("wrong-pw-7c1e"));
    Ok(())
}
