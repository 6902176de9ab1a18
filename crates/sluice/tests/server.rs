//! `sluice server` end to end, against real MariaDB, Kafka (tansu) and OceanBase seekdb:
//! projects created through the API from data sources, their whole lifecycle, tables added
//! and removed while running, kill -9 of the server, secrets, authentication, prechecks.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::{call, Api, Server};
use common::*;
use serde_json::json;
use sluice_testkit::{TempKafka, TempMariadb, OCEANBASE};

fn host_port(addr: &str) -> (String, u16) {
    let (h, p) = addr.rsplit_once(':').unwrap_or((addr, "3306"));
    (h.to_string(), p.parse().unwrap_or(3306))
}

/// A MariaDB user with a password (the secret the tests look for), granted what a source
/// needs (`all`) or only SELECT.
async fn source_user(
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

fn mariadb_source(api: &Api, name: &str, user: &str, password: &str) -> TestResult {
    let (host, port) = host_port(&MARIADB.get());
    let mut ds = json!({"name": name, "kind": "mariadb", "host": host, "port": port, "user": user});
    if !password.is_empty() {
        ds["password"] = json!(password);
    }
    api.ok("POST", "/api/v1/datasources", Some(ds))?;
    Ok(())
}

fn kafka_project(db: &str, source: &str, sid: u32, tables: &[&str]) -> Json {
    let include: Vec<String> = tables.iter().map(|t| format!("{db}.{t}")).collect();
    json!({
        "name": db,
        "source": {"datasource": source, "server_id": sid},
        "destination": {"datasource": "kafka", "format": "oms", "topic": "{db}.{table}", "partitions": 3, "partition_mode": "hash"},
        "objects": {"include": include},
        "stages": {"full": true},
        "options": {"heartbeat_secs": 1},
    })
}

/// Waits until what the topic holds rebuilds to the source table `db.table`.
async fn kafka_equals_source(
    kafka: &str,
    c: &mut mysql_async::Conn,
    db: &str,
    table: &str,
    secs: u64,
) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let want = table_rows(c, db, table).await?;
        let msgs = read_topic(kafka, &format!("{db}.{table}"))?;
        let got = rebuild_oms(&msgs)?;
        if got == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{db}.{table}: topic has {} keys, source {}",
                got.len(),
                want.len()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Every message of a topic. The harness broker can take more than the consumer's 10 s to
/// answer a metadata request while other tests load it: a timed-out read is tried again.
fn read_topic(kafka: &str, topic: &str) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match consume_from(kafka, topic, 0) {
            Ok(m) => return Ok(m),
            Err(e) if Instant::now() < deadline && e.to_string().contains("Timed out") => {
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

fn state_is(s: &'static str) -> impl Fn(&Json) -> bool {
    move |v: &Json| v["state"] == json!(s)
}

/// A refused action: 409, naming the states that allow it.
fn refused(api: &Api, name: &str, action: &str, allows: &str) -> TestResult {
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

/// Every byte of the server's store (the file and its write-ahead log).
fn store_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for f in ["meta.db", "meta.db-wal"] {
        all.extend(std::fs::read(dir.join(f)).unwrap_or_default());
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_from_data_sources_to_kafka_lives_its_whole_lifecycle_and_keeps_secrets(
) -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    // Its own broker, in memory: the shared one's file storage reads back slowly under load.
    let kafka = TempKafka::start_memory()?;
    let mut c = conn().await?;
    let db = unique_name("srvk");
    new_table(&mut c, &db).await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('r', seq), seq / 4 FROM {db}.seq_1_to_300"
    ))
    .await?;
    let user = unique_name("srvu");
    let password = source_user(&mut c, &user, true).await?;
    let dir = temp_dir(&db);
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    mariadb_source(&api, "src", &user, &password)?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "kafka", "kind": "kafka", "brokers": kafka.addr})),
    )?;
    let ds = api.ok("GET", "/api/v1/datasources/src", None)?;
    assert_eq!(ds["password_set"], json!(true));
    assert!(ds.get("password").is_none(), "{ds}");
    let test = api.ok("POST", "/api/v1/datasources/src/test", None)?;
    assert_eq!(test["ok"], json!(true), "{test}");
    // The source's tables, read live (what the console's object tree shows).
    let tree = api.ok("GET", "/api/v1/datasources/src/tables", None)?;
    let ours = tree
        .as_array()
        .and_then(|a| a.iter().find(|d| d["db"] == json!(db.clone())));
    assert_eq!(
        ours.map(|d| d["tables"].clone()),
        Some(json!(["t"])),
        "{tree}"
    );
    let (s, _) = api.call("GET", "/api/v1/datasources/kafka/tables", None)?;
    assert_eq!(s, 409);

    let sid = 3_600_000 + std::process::id() % 100_000;
    let created = api.ok(
        "POST",
        "/api/v1/projects",
        Some(kafka_project(&db, "src", sid, &["t"])),
    )?;
    assert_eq!(created["state"], json!("NotStarted"));
    for (action, allows) in [
        ("pause", "Running"),
        ("release", "Paused, Failed, Completed, Stopped"),
        ("resume", "Paused, Failed"),
    ] {
        refused(&api, &db, action, allows)?;
    }
    let (s, v) = api.call("GET", "/api/v1/datasources", None)?;
    assert_eq!((s, v[0]["used_by"].clone()), (200, json!([db.clone()])));
    let (s, v) = api.call("DELETE", "/api/v1/datasources/src", None)?;
    assert_eq!(s, 409, "a used data source is not deleted: {v}");
    assert!(v["error"].as_str().unwrap_or("").contains(&db), "{v}");

    let started = api.act(&db, "start")?;
    assert_eq!(started["state"], json!("Running"));
    assert_eq!(started["precheck"]["passed"], json!(true), "{started}");
    refused(&api, &db, "start", "NotStarted, Stopped")?;
    refused(&api, &db, "delete", "NotStarted, Released")?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = mixed_writer(db.clone(), 400, 17, stop.clone());
    api.wait_for(&db, 120, "incremental stage", |v| {
        v["stage"] == json!("incremental")
    })?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await??;
    kafka_equals_source(&kafka.addr, &mut c, &db, "t", 90).await?;

    // Paused: nothing is delivered until resumed.
    api.act(&db, "pause")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = || -> Result<Json, Box<dyn std::error::Error>> {
        Ok(api.project(&db)?["writer"]["rows"].clone())
    };
    let before = acked()?;
    c.query_drop(format!("INSERT INTO {db}.t VALUES (1001, 'paused', 1.00)"))
        .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(acked()?, before, "delivered while paused");
    assert_eq!(api.project(&db)?["state"], json!("Paused"));
    api.act(&db, "resume")?;
    kafka_equals_source(&kafka.addr, &mut c, &db, "t", 60).await?;

    // Stopped, then started again from its checkpoint.
    let stopped = api.act(&db, "stop")?;
    assert_eq!(stopped["state"], json!("Stopped"));
    c.query_drop(format!(
        "UPDATE {db}.t SET v = 'while stopped' WHERE id <= 20"
    ))
    .await?;
    api.act(&db, "start")?;
    kafka_equals_source(&kafka.addr, &mut c, &db, "t", 60).await?;
    let v = api.project(&db)?;
    assert!(v["latency_ms"].as_i64().is_some(), "{v}");
    assert!(v["writer"]["rows"].as_u64().is_some_and(|n| n > 0), "{v}");
    let figures = api.ok("GET", &format!("/api/v1/projects/{db}/figures"), None)?;
    assert!(
        figures.as_array().is_some_and(|a| !a.is_empty()),
        "{figures}"
    );
    let metrics = common::http_get(server.url.trim_start_matches("http://"), "/metrics")?;
    assert!(
        metrics.contains(&format!(
            "sluice_rows_total{{component=\"writer\",project=\"{db}\"}}"
        )),
        "{metrics}"
    );

    // The status through the CLI, as a script sees it.
    let out = sluice()
        .args(["project", "status", &db, "--server", &server.url])
        .env("SLUICE_TOKEN", &api.token)
        .output()?;
    let cli = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && cli.contains("\"state\": \"Running\""),
        "{cli}"
    );

    // As a project file: without secrets, and taken back as a new project.
    let (s, _) = api.call("GET", &format!("/api/v1/projects/{db}/yaml"), None)?;
    assert_eq!(s, 200);
    let file = common::server::text(
        &server.url,
        &api.token,
        &format!("/api/v1/projects/{db}/yaml"),
    )?;
    assert!(
        file.contains("datasource: src") && !file.contains(&password),
        "{file}"
    );
    let again = sluice()
        .args(["project", "create", "-f", "-", "--server", &server.url])
        .env("SLUICE_TOKEN", &api.token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(mut i) = child.stdin.take() {
                i.write_all(
                    file.replace(&format!("name: {db}"), &format!("name: {db}-y"))
                        .as_bytes(),
                )?;
            }
            child.wait_with_output()
        })?;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        api.project(&format!("{db}-y"))?["state"],
        json!("NotStarted")
    );
    let (s, _) = api.call("DELETE", &format!("/api/v1/projects/{db}-y"), None)?;
    assert_eq!(s, 204);
    // A clone: a new NotStarted project with the same settings and secrets.
    let clone = api.ok(
        "POST",
        &format!("/api/v1/projects/{db}/clone"),
        Some(json!({"name": format!("{db}-b")})),
    )?;
    assert_eq!(clone["state"], json!("NotStarted"));
    assert_eq!(clone["spec"]["source"], api.project(&db)?["spec"]["source"]);
    let (s, _) = api.call("DELETE", &format!("/api/v1/projects/{db}-b"), None)?;
    assert_eq!(s, 204);

    api.act(&db, "stop")?;
    let released = api.act(&db, "release")?;
    assert_eq!(released["state"], json!("Released"));
    // Released is for good: only delete (and clone, precheck-free viewing) remain.
    for (action, allows) in [
        ("start", "NotStarted, Stopped"),
        ("resume", "Paused, Failed"),
        ("pause", "Running"),
        ("stop", "Running, Paused, Failed, Modifying"),
        ("release", "Paused, Failed, Completed, Stopped"),
        (
            "precheck",
            "NotStarted, Running, Paused, Failed, Completed, Stopped, Modifying",
        ),
    ] {
        refused(&api, &db, action, allows)?;
    }
    let (s, v) = api.call(
        "POST",
        &format!("/api/v1/projects/{db}/objects"),
        Some(json!({"add": [format!("{db}.x")]})),
    )?;
    assert_eq!(s, 409, "{v}");
    let (s, _) = api.call("DELETE", &format!("/api/v1/projects/{db}"), None)?;
    assert_eq!(s, 204);
    let (s, _) = api.call("GET", &format!("/api/v1/projects/{db}"), None)?;
    assert_eq!(s, 404);

    // The password is nowhere: not in the store in clear, no answer, no log line, no status.
    let everything = format!("{}{}{}", api.seen.borrow(), server.log(), cli);
    assert!(
        !everything.contains(&password),
        "the password appeared in an answer or the log"
    );
    assert!(
        !contains(&store_bytes(&server.dir), &password),
        "the password is in meta.db in clear"
    );
    c.query_drop(format!("DROP USER '{user}'@'%'")).await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_into_a_database_runs_and_its_release_frees_the_destination_checkpoint(
) -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Oceanbase]);
    let mut c = conn().await?;
    let db = unique_name("srvd");
    new_table(&mut c, &db).await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('r', seq), seq / 4 FROM {db}.seq_1_to_500"
    ))
    .await?;
    let dir = temp_dir(&db);
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    mariadb_source(&api, "src", "root", "")?;
    let (h, p) = host_port(&OCEANBASE.get());
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "ob", "kind": "oceanbase", "host": h, "port": p, "user": "root"})),
    )?;
    let sid = 3_700_000 + std::process::id() % 100_000;
    api.ok(
        "POST",
        "/api/v1/projects",
        Some(json!({
            "name": db,
            "source": {"datasource": "src", "server_id": sid},
            "destination": {"datasource": "ob", "writers": 2},
            "objects": {"include": [format!("{db}.t")]},
            "stages": {"full": true},
            "options": {"heartbeat_secs": 1, "ddl": false},
        })),
    )?;
    api.act(&db, "start")?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = mixed_writer(db.clone(), 600, 5, stop.clone());
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await??;
    let mut d = common::dbdest::dest_conn(&OCEANBASE.get()).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let want = table_rows(&mut c, &db, "t").await?;
        let got = table_rows(&mut d, &db, "t").await.unwrap_or_default();
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "destination has {} rows, source {}",
            got.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let v = api.project(&db)?;
    assert_eq!(
        (v["state"].clone(), v["stage"].clone()),
        (json!("Running"), json!("incremental")),
        "{v}"
    );
    let q = format!("SELECT COUNT(*) FROM sluice.sluice_checkpoint WHERE project = '{db}'");
    let kept: Option<i64> = d.query_first(q.clone()).await?;
    assert!(
        kept.unwrap_or(0) > 0,
        "the destination keeps checkpoint rows"
    );
    api.act(&db, "pause")?;
    api.wait_for(&db, 10, "Paused", state_is("Paused"))?;
    api.act(&db, "release")?;
    let kept: Option<i64> = d.query_first(q).await?;
    assert_eq!(kept.unwrap_or(0), 0, "release frees the checkpoint rows");
    assert_eq!(api.project(&db)?["state"], json!("Released"));
    let (s, _) = api.call("DELETE", &format!("/api/v1/projects/{db}"), None)?;
    assert_eq!(s, 204);
    d.query_drop(format!("DROP DATABASE {db}")).await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_added_to_a_running_project_arrive_whole_and_removed_ones_stop() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    // Its own broker, in memory: the shared one's file storage reads back slowly under load.
    let kafka = TempKafka::start_memory()?;
    let mut c = conn().await?;
    let db = unique_name("srva");
    new_table(&mut c, &db).await?;
    c.query_drop(format!("CREATE TABLE {db}.b LIKE {db}.t"))
        .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, 't', 1 FROM {db}.seq_1_to_200"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.b SELECT seq, 'b', 2 FROM {db}.seq_1_to_3000"
    ))
    .await?;
    let dir = temp_dir(&db);
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    mariadb_source(&api, "src", "root", "")?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "kafka", "kind": "kafka", "brokers": kafka.addr})),
    )?;
    let sid = 3_800_000 + std::process::id() % 100_000;
    api.ok(
        "POST",
        "/api/v1/projects",
        Some(kafka_project(&db, "src", sid, &["t"])),
    )?;
    api.act(&db, "start")?;
    api.wait_for(&db, 120, "incremental stage", |v| {
        v["stage"] == json!("incremental")
    })?;
    // Both tables change throughout; b is not in the project yet.
    let stop = Arc::new(AtomicBool::new(false));
    let on_t = mixed_writer(db.clone(), 300, 3, stop.clone());
    let b = db.clone();
    let on_b = writer_loop(MARIADB.get(), 9, stop.clone(), move |rng, n| {
        let id = rng.next(3500) + 1;
        match rng.next(3) {
            0 => format!("REPLACE INTO {b}.b VALUES ({id}, 'w{n}', {n}.5)"),
            1 => format!("UPDATE {b}.b SET v = 'u{n}' WHERE id = {id}"),
            _ => format!("DELETE FROM {b}.b WHERE id = {id}"),
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = api.ok(
        "POST",
        &format!("/api/v1/projects/{db}/objects"),
        Some(json!({"add": [format!("{db}.b")]})),
    )?;
    assert_eq!(
        v["modifications"][0]["change"]["added"],
        json!([format!("{db}.b")]),
        "{v}"
    );
    api.wait_for(&db, 180, "the added table integrated", |v| {
        v["state"] == json!("Running") && v["modifications"][0]["state"] == json!("done")
    })?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    on_t.await??;
    on_b.await??;
    kafka_equals_source(&kafka.addr, &mut c, &db, "b", 120).await?;
    kafka_equals_source(&kafka.addr, &mut c, &db, "t", 60).await?;

    // Removed: its changes stop.
    api.ok(
        "POST",
        &format!("/api/v1/projects/{db}/objects"),
        Some(json!({"remove": [format!("{db}.t")]})),
    )?;
    let v = api.wait_for(&db, 60, "Running", state_is("Running"))?;
    assert_eq!(
        v["modifications"][1]["change"]["removed"],
        json!([format!("{db}.t")]),
        "{v}"
    );
    let before = read_topic(&kafka.addr, &format!("{db}.t"))?.len();
    c.query_drop(format!(
        "INSERT INTO {db}.t VALUES (5001, 'after removal', 1.00)"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.b VALUES (5001, 'after removal', 1.00)"
    ))
    .await?;
    kafka_equals_source(&kafka.addr, &mut c, &db, "b", 60).await?;
    assert_eq!(
        read_topic(&kafka.addr, &format!("{db}.t"))?.len(),
        before,
        "a removed table's change was delivered"
    );
    let spec = &api.project(&db)?["spec"]["objects"];
    assert_eq!(spec["include"], json!([format!("{db}.b")]), "{spec}");
    api.act(&db, "stop")?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn after_kill_9_of_the_server_both_running_projects_resume_from_their_checkpoints(
) -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    // Its own broker, in memory: the shared one's file storage reads back slowly under load.
    let kafka = TempKafka::start_memory()?;
    let mut c = conn().await?;
    let (d1, d2) = (unique_name("srv1"), unique_name("srv2"));
    for d in [&d1, &d2] {
        new_table(&mut c, d).await?;
        c.query_drop(format!(
            "INSERT INTO {d}.t SELECT seq, 'x', 1 FROM {d}.seq_1_to_1000"
        ))
        .await?;
    }
    let dir = temp_dir(&d1);
    let mut server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    mariadb_source(&api, "src", "root", "")?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "kafka", "kind": "kafka", "brokers": kafka.addr})),
    )?;
    let sid = 3_900_000 + std::process::id() % 50_000;
    for (i, d) in [&d1, &d2].iter().enumerate() {
        api.ok(
            "POST",
            "/api/v1/projects",
            Some(kafka_project(d, "src", sid + i as u32, &["t"])),
        )?;
        api.act(d, "start")?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let w1 = mixed_writer(d1.clone(), 1200, 1, stop.clone());
    let w2 = mixed_writer(d2.clone(), 1200, 2, stop.clone());
    for kill in 0..3 {
        tokio::time::sleep(Duration::from_millis(2500 + 700 * kill)).await;
        server.restart()?;
    }
    let api = server.admin()?;
    for d in [&d1, &d2] {
        let v = api.project(d)?;
        assert!(matches!(v["state"].as_str(), Some("Running")), "{v}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    w1.await??;
    w2.await??;
    for d in [&d1, &d2] {
        kafka_equals_source(&kafka.addr, &mut c, d, "t", 120).await?;
        api.act(d, "stop")?;
        c.query_drop(format!("DROP DATABASE {d}")).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_refuses_missing_wrong_revoked_and_expired_credentials_and_viewer_writes(
) -> TestResult {
    let dir = temp_dir(&unique_name("srvauth"));
    let server = Server::start(&dir.join("server"))?;
    let url = server.url.clone();
    let anon = |m: &str, p: &str| call(&url, None, m, p, Some(json!({}))).map(|(s, _)| s);
    for (m, p) in [
        ("GET", "/api/v1/projects"),
        ("GET", "/api/v1/datasources"),
        ("POST", "/api/v1/projects"),
        ("GET", "/api/v1/me"),
    ] {
        assert_eq!(anon(m, p)?, 401, "{m} {p}");
    }
    assert_eq!(anon("GET", "/health")?, 200);
    let (s, v) = call(
        &url,
        None,
        "POST",
        "/api/v1/login",
        Some(json!({"user": "admin", "password": "nope"})),
    )?;
    assert_eq!(s, 401, "{v}");
    let (s, _) = call(&url, Some("slu_madeup"), "GET", "/api/v1/me", None)?;
    assert_eq!(s, 401);
    let admin = server.admin()?;
    admin.ok(
        "POST",
        "/api/v1/users",
        Some(json!({"name": "vera", "password": "vera-pw", "role": "viewer"})),
    )?;
    let viewer = server.login("vera", "vera-pw")?;
    assert_eq!(viewer.call("GET", "/api/v1/projects", None)?.0, 200);
    for (m, p, b) in [
        (
            "POST",
            "/api/v1/datasources",
            json!({"name": "x", "kind": "kafka", "brokers": "b"}),
        ),
        ("POST", "/api/v1/projects", json!({})),
        (
            "POST",
            "/api/v1/users",
            json!({"name": "y", "password": "p"}),
        ),
    ] {
        let (s, v) = viewer.call(m, p, Some(b))?;
        assert_eq!(s, 403, "{m} {p}: {v}");
    }
    // API tokens: used, then revoked; one that expired.
    let t = admin.ok("POST", "/api/v1/tokens", Some(json!({"label": "ci"})))?;
    let token = t["token"].as_str().unwrap_or("").to_string();
    assert_eq!(call(&url, Some(&token), "GET", "/api/v1/me", None)?.0, 200);
    let (s, _) = admin.call(
        "DELETE",
        &format!("/api/v1/tokens/{}", t["id"].as_str().unwrap_or("")),
        None,
    )?;
    assert_eq!(s, 204);
    assert_eq!(call(&url, Some(&token), "GET", "/api/v1/me", None)?.0, 401);
    let short = admin.ok(
        "POST",
        "/api/v1/tokens",
        Some(json!({"label": "short", "expires_in_s": 1})),
    )?;
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        call(&url, short["token"].as_str(), "GET", "/api/v1/me", None)?.0,
        401
    );
    // A session ends at logout.
    let s2 = server.admin()?;
    assert_eq!(s2.call("POST", "/api/v1/logout", None)?.0, 200);
    assert_eq!(s2.call("GET", "/api/v1/me", None)?.0, 401);
    // The master key is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.dir.join("master.key"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "master.key mode {mode:o}");
    // Errors are JSON naming the field.
    let (s, v) = admin.call(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "k", "kind": "kafka", "brokerz": "b"})),
    )?;
    assert_eq!((s, v["field"].clone()), (400, json!("brokerz")), "{v}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_precheck_names_each_problem_and_its_fix_before_anything_is_copied() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let statement = TempMariadb::start(&["log_bin=bin", "binlog_format=STATEMENT", "server_id=1"])?;
    let mut s = conn_at(&statement.addr).await?;
    s.query_drop("CREATE DATABASE pc").await?;
    s.query_drop("CREATE TABLE pc.keyed (id INT PRIMARY KEY)")
        .await?;
    s.query_drop("CREATE TABLE pc.bag (v INT)").await?;
    s.query_drop("INSERT INTO pc.keyed VALUES (1), (2)").await?;
    let password = source_user(&mut s, "reader", false).await?;
    let dir = temp_dir(&unique_name("srvpre"));
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    let (h, p) = host_port(&statement.addr);
    api.ok("POST", "/api/v1/datasources", Some(json!({"name": "st", "kind": "mariadb", "host": h, "port": p, "user": "reader", "password": password})))?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "nokafka", "kind": "kafka", "brokers": "127.0.0.1:1"})),
    )?;
    api.ok(
        "POST",
        "/api/v1/projects",
        Some(json!({
            "name": "pre",
            "source": {"datasource": "st", "server_id": 77},
            "destination": {"datasource": "nokafka", "format": "oms", "topic": "pre-{table}"},
            "objects": {"include": ["pc.*"]},
            "stages": {"full": true},
        })),
    )?;
    let found = api.act("pre", "precheck")?;
    assert_eq!(found["passed"], json!(false), "{found}");
    let text = found.to_string();
    for want in [
        "binlog_format is STATEMENT",
        "REPLICATION SLAVE",
        "pc`.`bag` has no primary key",
        "no broker of 127.0.0.1:1 accepts a connection",
    ] {
        assert!(text.contains(want), "{want} missing: {text}");
    }
    for f in found["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(found["warnings"].as_array().into_iter().flatten())
    {
        assert!(
            !f["fix"].as_str().unwrap_or("").is_empty(),
            "a finding without a fix: {f}"
        );
    }
    // The start is refused, and nothing was copied or created.
    let (st, v) = api.call("POST", "/api/v1/projects/pre/start", Some(json!({})))?;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["precheck"]["passed"], json!(false));
    assert_eq!(api.project("pre")?["state"], json!("NotStarted"));
    let meta = sluice_meta::MetaStore::open(&server.dir)?;
    assert!(meta.checkpoint("pre")?.is_none() && meta.full_units("pre")?.is_empty());
    // Forced, it fails as the precheck said, and shows why; Failed allows resume and release.
    let v = api.ok(
        "POST",
        "/api/v1/projects/pre/start",
        Some(json!({"force": true})),
    )?;
    assert_eq!(v["precheck"]["passed"], json!(false), "{v}");
    let failed = api.wait_for("pre", 120, "Failed", state_is("Failed"))?;
    let why = failed["message"].as_str().unwrap_or("");
    assert!(!why.is_empty(), "{failed}");
    assert!(
        failed["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m == why),
        "{failed}"
    );
    refused(&api, "pre", "pause", "Running")?;
    api.act("pre", "release")?;
    let (st, _) = api.call("DELETE", "/api/v1/projects/pre", None)?;
    assert_eq!(st, 204);
    // The same through the command line, from a project file.
    let file = dir.join("pre.yaml");
    std::fs::write(&file, format!(
        "name: pre\nsource:\n  type: mariadb\n  url: mysql://root@{}\n  server_id: 77\ndestination:\n  type: kafka\n  brokers: 127.0.0.1:1\n  format: oms\nobjects:\n  include: [\"pc.*\"]\n",
        statement.addr))?;
    let out = sluice().args(["precheck", "-f"]).arg(&file).output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("binlog_format is STATEMENT")
            && said.contains("fix: run SET GLOBAL binlog_format"),
        "{said}"
    );
    assert!(!format!("{}{}", api.seen.borrow(), server.log()).contains(&password));
    Ok(())
}

#[test]
fn a_first_start_without_users_prints_a_generated_admin_password_once() -> TestResult {
    let dir = temp_dir(&unique_name("srvfirst")).join("server");
    let mut server = Server::start_with(&dir, &[])?;
    let log = server.log();
    let password = log
        .split("one-time password ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .ok_or(format!("no generated password in: {log}"))?
        .to_string();
    assert!(password.len() >= 16, "{password}");
    let api = server.login("admin", &password)?;
    assert_eq!(
        api.call("GET", "/api/v1/me", None)?.1["role"],
        json!("admin")
    );
    server.restart()?;
    assert_eq!(
        server.log().matches("one-time password").count(),
        1,
        "printed again"
    );
    server.login("admin", &password)?;
    Ok(())
}
