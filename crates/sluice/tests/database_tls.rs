//! TLS to MySQL-family servers for real: a MariaDB started with certificates the test makes
//! and `require_secure_transport=ON` is the source and the destination of a project (full and
//! incremental sync through TLS), and each wrong setting fails the precheck with its cause and
//! its fix.

mod common;

use common::dbdest::dest_conn;
use common::pg::*;
use common::server::{host_port, Server};
use common::*;
use mysql_async::{Opts, OptsBuilder, SslOpts};
use sluice_testkit::{Certs, TempMariadb, TempPostgres, MARIADB_SHARD1};

/// A MariaDB with binary logging that accepts TLS connections only, presenting `cert`.
fn tls_server(certs: &Certs, cert: &Path, key: &Path) -> Result<TempMariadb, String> {
    let settings = [
        "server_id=91".to_string(),
        "log_bin=mariadb-bin".into(),
        "binlog_format=ROW".into(),
        "binlog_row_image=FULL".into(),
        "binlog_row_metadata=FULL".into(),
        format!("ssl_ca={}", certs.ca.display()),
        format!("ssl_cert={}", cert.display()),
        format!("ssl_key={}", key.display()),
        "require_secure_transport=ON".into(),
    ];
    TempMariadb::start(&settings.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A test connection to it, over TLS checked against the test CA.
async fn tls_conn(addr: &str, ca: &Path) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = OptsBuilder::from_opts(Opts::from_url(&format!("mysql://root@{addr}"))?).ssl_opts(
        Some(SslOpts::default().with_root_certs(vec![ca.to_path_buf().into()])),
    );
    mysql_async::Conn::new(opts).await
}

fn tls_section(mode: &str, ca: &Path) -> String {
    format!("  tls:\n    mode: {mode}\n    ca_file: {}\n", ca.display())
}

/// A project from `db.t` to `dest_db.t` on the server at `addr`; `source_tls` and `dest_tls`
/// are the sections' `tls` parts (empty: none).
fn tls_project(
    dir: &Path,
    db: &str,
    dest_db: &str,
    addr: &str,
    source_tls: &str,
    dest_tls: &str,
) -> PathBuf {
    let yaml = format!(
        "name: {db}
source:
  type: mariadb
  url: mysql://root@{addr}
  server_id: {sid}
{source_tls}destination:
  type: mariadb
  url: mysql://root@{addr}
{dest_tls}objects:
  include: [\"{db}.*\"]
  rename:
    {db}.t: {dest_db}.t
stages:
  full: true
options:
  heartbeat_secs: 1
",
        // One replica id per project: a run's binlog connection may linger a moment after it
        // ends, and a second project's precheck would see its id in use.
        sid = 3_200_000
            + dir
                .display()
                .to_string()
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 1_000_000,
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

async fn rows(
    c: &mut mysql_async::Conn,
    db: &str,
) -> Result<Vec<(i64, String)>, mysql_async::Error> {
    c.query(format!("SELECT id, v FROM {db}.t ORDER BY id"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_reads_and_writes_through_tls_and_each_wrong_setting_fails_clearly() -> TestResult
{
    let certs = Certs::generate()?;
    let server = tls_server(&certs, &certs.server_cert, &certs.server_key)?;
    let addr = server.addr.clone();
    let (db, dest_db) = (unique_name("tlssrc"), unique_name("tlsdst"));
    let mut c = tls_conn(&addr, &certs.ca).await?;
    let cipher: Option<(String, String)> = c
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await?;
    assert!(
        cipher.is_some_and(|(_, v)| !v.is_empty()),
        "the test's own connection is not TLS"
    );
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!("CREATE DATABASE {dest_db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await?;
    for i in 1..=50 {
        c.query_drop(format!("INSERT INTO {db}.t VALUES ({i}, 'v{i}')"))
            .await?;
    }

    let dir = temp_dir(&db);
    let verify = tls_section("verify_identity", &certs.ca);
    let file = tls_project(&dir, &db, &dest_db, &addr, &verify, &verify);
    let path = file.display().to_string();
    let (code, out) = sluice_said(["precheck", "-f", &path])?;
    assert_eq!(code, 0, "{out}");
    run_until_caught_up(&file)?;
    // Incremental sync through TLS as well.
    c.query_drop(format!("UPDATE {db}.t SET v = 'again' WHERE id % 7 = 0"))
        .await?;
    c.query_drop(format!("DELETE FROM {db}.t WHERE id % 11 = 0"))
        .await?;
    c.query_drop(format!("INSERT INTO {db}.t VALUES (100, 'late')"))
        .await?;
    run_until_caught_up(&file)?;
    assert_eq!(rows(&mut c, &dest_db).await?, rows(&mut c, &db).await?);
    assert_eq!(rows(&mut c, &db).await?.len(), 47);

    // Without TLS the server refuses, and the precheck says what to set.
    let d = temp_dir(&format!("{db}-plain"));
    let file = tls_project(&d, &db, &dest_db, &addr, "", &verify);
    let (code, out) = sluice_said(["precheck", "-f", &file.display().to_string()])?;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("source.tls.mode"), "{out}");
    // A CA that did not sign the server's certificate.
    let d = temp_dir(&format!("{db}-wrongca"));
    let wrong = tls_section("verify_ca", &certs.other_ca);
    let file = tls_project(&d, &db, &dest_db, &addr, &verify, &wrong);
    let (code, out) = sluice_said(["precheck", "-f", &file.display().to_string()])?;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("certificate verify failed") && out.contains("destination.tls"),
        "{out}"
    );
    // `required` encrypts without checking, so the wrong CA does not matter there.
    let d = temp_dir(&format!("{db}-required"));
    let required = "  tls:\n    mode: required\n";
    let file = tls_project(&d, &db, &dest_db, &addr, required, required);
    let (code, out) = sluice_said(["precheck", "-f", &file.display().to_string()])?;
    assert_eq!(code, 0, "{out}");
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    c.query_drop(format!("DROP DATABASE {dest_db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_fails_verify_identity_only() -> TestResult {
    let certs = Certs::generate()?;
    let server = tls_server(&certs, &certs.wrong_host_cert, &certs.broken_key)?;
    let addr = server.addr.clone();
    let db = unique_name("tlshost");
    let dir = temp_dir(&db);
    let identity = tls_section("verify_identity", &certs.ca);
    let file = tls_project(&dir, &db, &db, &addr, &identity, "");
    let (code, out) = sluice_said(["precheck", "-f", &file.display().to_string()])?;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.to_lowercase().contains("mismatch") && out.contains("source.tls"),
        "{out}"
    );
    // The chain is good: verify_ca accepts it (the name is not checked in that mode).
    let d = temp_dir(&format!("{db}-ca"));
    let ca = tls_section("verify_ca", &certs.ca);
    let file = tls_project(&d, &db, &db, &addr, &ca, &ca);
    let (code, out) = sluice_said(["precheck", "-f", &file.display().to_string()])?;
    assert!(
        !out.to_lowercase().contains("mismatch") && !out.contains("source.tls"),
        "{code}: {out}"
    );
    Ok(())
}

/// A client of `db` on the server's Unix socket (trusted without TLS).
async fn pg_local(
    server: &TempPostgres,
    db: &str,
) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(server.socket_dir())
        .port(server.port())
        .user("postgres")
        .dbname(db);
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_source_reads_through_tls_and_each_wrong_setting_fails_clearly() -> TestResult {
    ensure_up(&[Service::MariadbShards]);
    let certs = Certs::generate()?;
    let server = TempPostgres::start_with_tls(&certs.server_cert, &certs.server_key, &certs.ca)?;
    let db = unique_name("pgtls");
    pg_local(&server, "postgres")
        .await?
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let p = pg_local(&server, &db).await?;
    p.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text); \
         INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 30) i",
    )
    .await?;
    let dest = MARIADB_SHARD1.get();
    let project = |name: &str, tls: &str| {
        let dir = temp_dir(&format!("{db}-{name}"));
        // A host name: verify_identity checks it against the certificate (which names
        // localhost and 127.0.0.1; the replication client checks names only).
        let file = pg_project_at(
            &format!("localhost:{}", server.port()),
            &dir,
            &format!("{db}_{name}"),
            &db,
            &format!("  type: mariadb\n  url: mysql://root@{dest}"),
            &format!("  include: [\"public.t\"]\n  rename:\n    public.t: {db}.t"),
        );
        let yaml = std::fs::read_to_string(&file).unwrap_or_default().replace(
            "  create_publication: true\n",
            &format!("  create_publication: true\n{tls}"),
        );
        let _ = std::fs::write(&file, yaml);
        file
    };
    let file = project("ok", &tls_section("verify_identity", &certs.ca));
    let path = file.display().to_string();
    let (code, out) = sluice_said(["precheck", "-f", &path])?;
    assert_eq!(code, 0, "{out}");
    run_until_caught_up(&file)?;
    p.batch_execute("UPDATE t SET v = 'again' WHERE id % 4 = 0; DELETE FROM t WHERE id = 3; INSERT INTO t VALUES (99, 'late')")
        .await?;
    run_until_caught_up(&file)?;
    let mut d = dest_conn(&dest).await?;
    let got = dest_text(&mut d, &format!("SELECT id, v FROM {db}.t")).await?;
    let mut want: Vec<String> = p
        .query("SELECT id, v FROM t", &[])
        .await?
        .iter()
        .map(|r| format!("{}|{}", r.get::<_, i32>(0), r.get::<_, String>(1)))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(got.len(), 30);

    // Without TLS the server's pg_hba refuses, and the precheck says what to set.
    let (code, out) = sluice_said([
        "precheck",
        "-f",
        &project("plain", "").display().to_string(),
    ])?;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("source.tls.mode"), "{out}");
    // A CA that did not sign the server's certificate.
    let wrong = project("wrongca", &tls_section("verify_ca", &certs.other_ca));
    let (code, out) = sluice_said(["precheck", "-f", &wrong.display().to_string()])?;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("certificate verify failed") && out.contains("source.tls"),
        "{out}"
    );
    d.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// The service's data sources carry the same TLS settings (`tls_mode`, `tls_ca_file`, ...):
/// one with them connects to a TLS-only server, one without is told what to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_source_of_the_service_connects_over_tls() -> TestResult {
    let certs = Certs::generate()?;
    let server = tls_server(&certs, &certs.server_cert, &certs.server_key)?;
    let (host, port) = host_port(&server.addr);
    let dir = temp_dir(&unique_name("tlssrv"));
    let service = Server::start(&dir.join("server"))?;
    let api = service.admin()?;
    let ca = certs.ca.display().to_string();
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(
            serde_json::json!({"name": "tls", "kind": "mariadb", "host": host, "port": port,
            "user": "root", "tls_mode": "verify_identity", "tls_ca_file": ca}),
        ),
    )?;
    let test = api.ok("POST", "/api/v1/datasources/tls/test", None)?;
    assert_eq!(test["ok"], serde_json::json!(true), "{test}");
    let tables = api.ok("GET", "/api/v1/datasources/tls/tables", None)?;
    assert!(tables.is_array(), "{tables}");
    api.ok(
        "POST",
        "/api/v1/datasources",
        Some(
            serde_json::json!({"name": "plain", "kind": "mariadb", "host": host, "port": port,
            "user": "root"}),
        ),
    )?;
    let test = api.ok("POST", "/api/v1/datasources/plain/test", None)?;
    assert_eq!(test["ok"], serde_json::json!(false), "{test}");
    assert!(
        test["message"]
            .as_str()
            .is_some_and(|m| m.contains("the data source's tls_mode")),
        "{test}"
    );
    Ok(())
}
