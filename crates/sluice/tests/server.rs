//! `sluice server` end to end, against real MariaDB, Kafka (tansu) and OceanBase seekdb:
//! projects created through the API from data sources, their whole lifecycle, tables added
//! and removed while running, kill -9 of the server, secrets. Access and prechecks:
//! `server_access.rs`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::{host_port, refused, source_user, state_is, Api, Server};
use common::*;
use serde_json::json;
use sluice_testkit::{TempKafka, OCEANBASE};

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
    // The verify action, while it runs: equal; then a row removed at the destination is found.
    let verified = |at: i64| {
        move |v: &Json| {
            v["verifying"] == json!(false)
                && v["verification"][0]["at_ms"]
                    .as_i64()
                    .is_some_and(|t| t > at)
        }
    };
    let (s, v) = api.call(
        "POST",
        &format!("/api/v1/projects/{db}/verify"),
        Some(json!({})),
    )?;
    assert_eq!(s, 202, "{v}");
    let v = api.wait_for(&db, 60, "verified", verified(0))?;
    let first = &v["verification"][0];
    assert!(first["rows"].as_u64().is_some_and(|n| n > 100), "{v}");
    assert_eq!(
        (
            first["missing"].clone(),
            first["extra"].clone(),
            first["different"].clone()
        ),
        (json!(0), json!(0), json!(0)),
        "{v}"
    );
    let at = first["at_ms"].as_i64().unwrap_or(0);
    let gone: Option<i64> = d.query_first(format!("SELECT MIN(id) FROM {db}.t")).await?;
    d.query_drop(format!(
        "DELETE FROM {db}.t WHERE id = {}",
        gone.unwrap_or(0)
    ))
    .await?;
    api.ok(
        "POST",
        &format!("/api/v1/projects/{db}/verify"),
        Some(json!({})),
    )?;
    let v = api.wait_for(&db, 60, "verified again", verified(at))?;
    assert_eq!(v["verification"][0]["missing"], json!(1), "{v}");
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
