//! The web console in a real browser: headless Chromium from Debian's packages, driven by
//! Playwright for Python (`dev/services browser-python`), against a `sluice server`. Each
//! scenario saves screenshots of its pages under `target/tmp/console/`.

mod common;

use common::server::Server;
use common::*;
use serde_json::json;
use sluice_testkit::TempKafka;

/// The harness MariaDB's host and port.
fn mariadb_host_port() -> (String, u16) {
    MARIADB
        .get()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.parse().unwrap_or(3306)))
        .unwrap_or_default()
}

/// Adds a data source of the harness MariaDB (as root) and one of a Kafka broker.
fn two_datasources(api: &common::server::Api, db: &str, kafka: &str, brokers: &str) -> TestResult {
    let (host, port) = mariadb_host_port();
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": db, "kind": "mariadb", "host": host, "port": port, "user": "root"})),
    )?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": kafka, "kind": "kafka", "brokers": brokers})),
    )?;
    Ok(())
}

/// Runs a browser scenario (`tests/console/SCRIPT URL SHOTS ARGS...`); its screenshots go to
/// `target/tmp/console/NAME`. Fails with what the scenario and the server said.
fn scenario(
    server: &Server,
    script: &str,
    args: &[&str],
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console")
        .join(script.trim_end_matches(".py"));
    let out = Command::new(repo_root().join("dev/services"))
        .arg("browser-python")
        .arg(repo_root().join("crates/sluice/tests/console").join(script))
        .arg(&server.url)
        .arg(&shots)
        .args(args)
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
    Ok(shots)
}

#[test]
fn signing_in_shows_the_projects_and_data_sources_and_signing_out_ends_the_session() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let dir = temp_dir(&unique_name("srvweb"));
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    two_datasources(&api, "shop", "mq", "127.0.0.1:1")?;
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
    let shots = scenario(&server, "signin.py", &["web-demo", "shop", "adminpw"])?;
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
    two_datasources(&api, "shop", "mq", &kafka.addr)?;
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
    let table = format!("{db}.t");
    let shots =
        tokio::task::block_in_place(|| scenario(&server, "detail.py", &[&db, &table, "adminpw"]));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await??;
    let shots = shots?;
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
    two_datasources(&api, "used", "mq", &kafka.addr)?;
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
    let (host, port) = mariadb_host_port();
    let port = port.to_string();
    scenario(
        &server,
        "datasources.py",
        &[&host, &port, &kafka.addr, "used", "holder", "adminpw"],
    )?;
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

#[test]
fn an_api_token_made_in_the_console_works_until_it_is_revoked_there() -> TestResult {
    let dir = temp_dir(&unique_name("srvwebt"));
    let server = Server::start(&dir.join("server"))?;
    let shots = scenario(&server, "tokens.py", &["adminpw"])?;
    assert!(std::fs::metadata(shots.join("tokens-revoked.png"))?.len() > 1000);
    let tokens = server.admin()?.ok("GET", "/api/v1/tokens", None)?;
    assert_eq!(tokens[0]["label"], json!("ci-token"), "{tokens}");
    assert_eq!(tokens[0]["revoked"], json!(true), "{tokens}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_made_in_the_wizard_delivers_what_its_steps_chose() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    let kafka = TempKafka::start_memory()?;
    let mut c = conn().await?;
    let db = unique_name("srvwiz");
    new_table(&mut c, &db).await?;
    for (t, n) in [("t", 800), ("t2", 300), ("u", 50)] {
        if t != "t" {
            c.query_drop(format!("CREATE TABLE {db}.{t} LIKE {db}.t"))
                .await?;
        }
        c.query_drop(format!(
            "INSERT INTO {db}.{t} SELECT seq, 'r', seq / 100 FROM {db}.seq_1_to_{n}"
        ))
        .await?;
    }
    let dir = temp_dir(&db);
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    two_datasources(&api, "shop", "mq", &kafka.addr)?;
    let project = format!("{db}-wiz");
    let shots = tokio::task::block_in_place(|| {
        scenario(&server, "wizard.py", &[&project, &db, "adminpw"])
    })?;
    assert_eq!(api.project(&project)?["state"], json!("Released"));
    for shot in [
        "wizard-objects-error.png",
        "wizard-review.png",
        "wizard-project-running.png",
    ] {
        assert!(std::fs::metadata(shots.join(shot))?.len() > 1000, "{shot}");
    }
    // What reached Kafka is what the steps chose: t under its new name, t2 through its row
    // filter, u (added on the project page) whole.
    let ids = |topic: &str, n: usize| -> Result<Vec<i64>, Box<dyn std::error::Error>> {
        let state = rebuild_oms(&consume_from(&kafka.addr, topic, n)?)?;
        let mut ids: Vec<i64> = state
            .values()
            .filter_map(|r| r["id"].as_str().and_then(|s| s.parse().ok()))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    };
    assert_eq!(
        ids(&format!("{db}_r.orders"), 800)?,
        (1..=800).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&format!("{db}.t2"), 100)?,
        (1..=100).collect::<Vec<_>>()
    );
    assert_eq!(ids(&format!("{db}.u"), 50)?, (1..=50).collect::<Vec<_>>());
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verification_run_from_the_project_page_shows_what_differs() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let mut c = conn().await?;
    let db = unique_name("srvwebv");
    new_table(&mut c, &db).await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, 'r', 1 FROM {db}.seq_1_to_300"
    ))
    .await?;
    let dir = temp_dir(&db);
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    let (host, port) = mariadb_host_port();
    let (dh, dp) = common::server::host_port(&sluice_testkit::MARIADB_SHARD1.get());
    for (name, h, p) in [("shop", &host, port), ("copy", &dh, dp)] {
        api.ok(
            "POST",
            "/api/v1/datasources",
            Some(json!({"name": name, "kind": "mariadb", "host": h, "port": p, "user": "root"})),
        )?;
    }
    api.ok(
        "POST",
        "/api/v1/projects",
        Some(json!({
            "name": db,
            "source": {"datasource": "shop", "server_id": 4_300_000 + std::process::id() % 100_000},
            "destination": {"datasource": "copy"},
            "objects": {"include": [format!("{db}.t")], "rename": {format!("{db}.t"): format!("{db}_copy.t")}},
            "stages": {"full": true},
            "options": {"heartbeat_secs": 1, "ddl": false},
        })),
    )?;
    api.act(&db, "start")?;
    api.wait_for(&db, 120, "incremental", |v| {
        v["stage"] == json!("incremental")
    })?;
    let mut d = common::dbdest::dest_conn(&sluice_testkit::MARIADB_SHARD1.get()).await?;
    d.query_drop(format!("DELETE FROM {db}_copy.t WHERE id = 17"))
        .await?;
    let table = format!("{db}.t");
    let shots = tokio::task::block_in_place(|| {
        scenario(&server, "verify.py", &[&db, &table, "17", "adminpw"])
    })?;
    assert!(std::fs::metadata(shots.join("verify.png"))?.len() > 1000);
    api.act(&db, "stop")?;
    d.query_drop(format!("DROP DATABASE {db}_copy")).await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
