//! `sluice server`: who may use it (credentials, roles, tokens, the first user) and what its
//! precheck and its dry run find, against real MariaDB servers.

mod common;

use std::time::Duration;

use common::server::{call, host_port, refused, source_user, state_is, Server};
use common::*;
use serde_json::json;
use sluice_testkit::TempMariadb;

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

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_checks_a_project_against_its_source_and_stores_nothing() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut c = conn().await?;
    let db = unique_name("srvdry");
    new_table(&mut c, &db).await?;
    c.query_drop(format!("CREATE TABLE {db}.t2 LIKE {db}.t"))
        .await?;
    let dir = temp_dir(&db);
    let server = Server::start(&dir.join("server"))?;
    let api = server.admin()?;
    let (host, port) = host_port(&MARIADB.get());
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(
            json!({"name": "shop", "kind": "mariadb", "host": host, "port": port, "user": "root"}),
        ),
    )?;
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(json!({"name": "mq", "kind": "kafka", "brokers": "127.0.0.1:1"})),
    )?;
    let spec = |objects: serde_json::Value| {
        json!({
            "name": "dry", "source": {"datasource": "shop"},
            "destination": {"datasource": "mq", "format": "oms"}, "objects": objects,
        })
    };
    let good = json!({
        "include": [format!("{db}.t*")],
        "rename": {format!("{db}.t"): "x.y"},
        "filters": {format!("{db}.t2"): "id < 5"},
    });
    let v = api.ok(
        "POST",
        "/api/v1/projects?dry_run=true",
        Some(spec(good.clone())),
    )?;
    assert_eq!(
        v["tables"],
        json!([
            {"table": {"db": db, "table": "t"}, "to": {"db": "x", "table": "y"}},
            {"table": {"db": db, "table": "t2"}, "to": {"db": db, "table": "t2"}},
        ]),
        "{v}"
    );
    assert!(v.get("precheck").is_none(), "{v}");
    assert_eq!(
        api.ok("GET", "/api/v1/projects", None)?,
        json!([]),
        "nothing stored"
    );

    // Each mistake is named at its field, with the table it is about.
    let t = format!("{db}.t");
    for (objects, field, says) in [
        (
            json!({"include": [&t], "columns": {&t: ["id", "nosuch"]}}),
            "objects.columns",
            "has no column nosuch",
        ),
        (
            json!({"include": [&t], "filters": {&t: "nosuch = 1"}}),
            "objects.filters",
            "reads column nosuch",
        ),
        (
            json!({"include": [&t], "rename": {&t: "no-dot"}}),
            "objects.rename",
            &*format!("{t}: "),
        ),
        (json!({"include": []}), "objects.include", "at least one"),
    ] {
        let (s, e) = api.call("POST", "/api/v1/projects?dry_run=true", Some(spec(objects)))?;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["field"], json!(field), "{e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains(says)), "{e}");
    }
    let (s, e) = api.call(
        "POST",
        "/api/v1/projects?precheck=true",
        Some(spec(good.clone())),
    )?;
    assert_eq!((s, e["field"].clone()), (400, json!("precheck")), "{e}");

    // With the precheck: the unreachable broker fails it, and still nothing is stored.
    let v = api.ok(
        "POST",
        "/api/v1/projects?dry_run=true&precheck=true",
        Some(spec(good.clone())),
    )?;
    assert_eq!(v["precheck"]["passed"], json!(false), "{v}");
    assert!(
        v["precheck"]["failures"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["item"] == json!("destination"))),
        "{v}"
    );
    assert_eq!(api.ok("GET", "/api/v1/projects", None)?, json!([]));

    // A name taken is said at the name.
    api.ok("POST", "/api/v1/projects", Some(spec(good.clone())))?;
    let (s, e) = api.call("POST", "/api/v1/projects?dry_run=true", Some(spec(good)))?;
    assert_eq!((s, e["field"].clone()), (409, json!("name")), "{e}");
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
