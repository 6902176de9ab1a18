//! Secured Kafka: TLS for real (Debian's stunnel in front of a broker, with certificates the
//! harness makes), mutual TLS, and SASL settings reaching the client (the harness broker has
//! no SASL listener; docs/KAFKA.md says what is not verified).

mod common;

use common::*;
use sluice_testkit::{free_port, Certs, TempKafka, TlsTerminator};

/// A project delivering `db.*` to `brokers`, its `destination.security` section as given.
fn secured_project(dir: &Path, db: &str, start: &str, brokers: &str, security: &str) -> String {
    let file = project(dir, db, db, "oms", start, "hash");
    let yaml = std::fs::read_to_string(&file).unwrap_or_default();
    let yaml = yaml.replace(
        &format!("  brokers: {}\n", KAFKA.get()),
        &format!("  brokers: {brokers}\n  security:\n{security}"),
    );
    let _ = std::fs::write(&file, yaml);
    file.display().to_string()
}

fn tls_security(ca: &Path, extra: &str) -> String {
    format!("    protocol: ssl\n    ca_file: {}\n{extra}", ca.display())
}

/// A broker of its own behind a TLS terminator (Debian's stunnel) with fresh certificates;
/// `mutual`: the terminator asks for a client certificate the test CA signed.
struct TlsBroker {
    certs: Certs,
    kafka: TempKafka,
    _tls: TlsTerminator,
    /// `localhost:PORT` of the terminator.
    brokers: String,
}

impl TlsBroker {
    fn start(mutual: bool) -> Result<Self, String> {
        ensure_up(&[Service::Mariadb, Service::Kafka]);
        let certs = Certs::generate()?;
        // The broker tells clients to come back through the terminator, by the name its
        // certificate carries.
        let tls_port = free_port()?;
        let kafka = TempKafka::start_advertising(&format!("localhost:{tls_port}"))?;
        let tls = TlsTerminator::start(
            tls_port,
            &kafka.addr,
            &certs.server_cert,
            &certs.server_key,
            mutual.then_some(certs.ca.as_path()),
        )?;
        Ok(Self {
            certs,
            kafka,
            _tls: tls,
            brokers: format!("localhost:{tls_port}"),
        })
    }
}

/// `sluice precheck` of a project: fails, and says `want` and the fix.
fn precheck_fails_saying(file: &str, want: &str) -> TestResult {
    let (code, out) = sluice_said(["precheck", "-f", file])?;
    assert_ne!(code, 0, "precheck passed: {out}");
    assert!(out.contains(want), "no {want:?} in: {out}");
    assert!(out.contains("destination.security"), "no fix in: {out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_delivers_with_the_ca_and_each_bad_certificate_fails_clearly() -> TestResult {
    let TlsBroker {
        certs,
        kafka,
        _tls,
        brokers,
    } = TlsBroker::start(false)?;
    let db = unique_name("ktls");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    write_range(&mut c, &db, 1, 40).await?;
    let want = source_rows(&mut c, &db).await?;

    let dir = temp_dir(&db);
    let file = secured_project(&dir, &db, &start, &brokers, &tls_security(&certs.ca, ""));
    let (code, out) = sluice_said(["precheck", "-f", &file])?;
    assert_eq!(code, 0, "{out}");
    run_until_caught_up(Path::new(&file))?;
    // An independent consumer reads it back through the same TLS terminator.
    let ca = certs.ca.display().to_string();
    let msgs = consume_with(
        &brokers,
        &[("security.protocol", "ssl"), ("ssl.ca.location", &ca)],
        &format!("{db}.t"),
        0,
    )?;
    assert_eq!(rebuild_oms(&msgs)?, want);

    // A CA that did not sign the broker's certificate.
    let wrong = temp_dir(&format!("{db}-wrongca"));
    let file = secured_project(
        &wrong,
        &db,
        &start,
        &brokers,
        &tls_security(&certs.other_ca, ""),
    );
    precheck_fails_saying(&file, "unable to get local issuer certificate")?;

    // An expired certificate, and one for another host, in front of the same broker.
    for (name, cert, want) in [
        ("expired", &certs.expired_cert, "certificate has expired"),
        ("wronghost", &certs.wrong_host_cert, "hostname mismatch"),
    ] {
        let t = TlsTerminator::start(0, &kafka.addr, cert, &certs.broken_key, None)?;
        let d = temp_dir(&format!("{db}-{name}"));
        let brokers = format!("localhost:{}", t.port);
        let file = secured_project(&d, &db, &start, &brokers, &tls_security(&certs.ca, ""));
        precheck_fails_saying(&file, want).map_err(|e| format!("{name}: {e}"))?;
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_delivers_with_a_client_certificate_only() -> TestResult {
    let TlsBroker {
        certs,
        kafka: _kafka,
        _tls,
        brokers,
    } = TlsBroker::start(true)?;
    let db = unique_name("kmtls");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    write_range(&mut c, &db, 1, 25).await?;
    let want = source_rows(&mut c, &db).await?;

    // Without a client certificate the terminator ends the handshake.
    let bare = temp_dir(&format!("{db}-bare"));
    let file = secured_project(&bare, &db, &start, &brokers, &tls_security(&certs.ca, ""));
    let (code, out) = sluice_said(["precheck", "-f", &file])?;
    assert_ne!(
        code, 0,
        "precheck passed without a client certificate: {out}"
    );
    assert!(out.contains("destination.security"), "no fix in: {out}");

    let dir = temp_dir(&db);
    let client = format!(
        "    cert_file: {}\n    key_file: {}\n",
        certs.client_cert.display(),
        certs.client_key.display()
    );
    let file = secured_project(
        &dir,
        &db,
        &start,
        &brokers,
        &tls_security(&certs.ca, &client),
    );
    run_until_caught_up(Path::new(&file))?;
    let ca = certs.ca.display().to_string();
    let (cert, key) = (
        certs.client_cert.display().to_string(),
        certs.client_key.display().to_string(),
    );
    let msgs = consume_with(
        &brokers,
        &[
            ("security.protocol", "ssl"),
            ("ssl.ca.location", &ca),
            ("ssl.certificate.location", &cert),
            ("ssl.key.location", &key),
        ],
        &format!("{db}.t"),
        0,
    )?;
    assert_eq!(rebuild_oms(&msgs)?, want);
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// SASL cannot be completed against the harness broker (no SASL listener), but the settings
/// must reach the client: it attempts the SASL handshake, fails saying so, and the password
/// from the environment never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_settings_reach_the_client_and_the_password_never_shows() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let kafka = TempKafka::start_memory()?;
    let db = unique_name("ksasl");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let secret = "s3cret-sasl-Pa55";
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let dir = temp_dir(&format!("{db}-{mechanism}"));
        let security = format!(
            "    protocol: sasl_plaintext\n    sasl_mechanism: {mechanism}\n    username: sluice\n    password_env: SLUICE_TEST_SASL_PASSWORD\n"
        );
        let file = secured_project(&dir, &db, &start, &kafka.addr, &security);
        let out = sluice()
            .args(["precheck", "-f", &file])
            .env("SLUICE_TEST_SASL_PASSWORD", secret)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "{mechanism}: precheck passed: {text}"
        );
        assert!(
            text.contains("SASL"),
            "{mechanism}: no SASL attempt in: {text}"
        );
        assert!(
            !text.contains(secret),
            "{mechanism}: the password shows: {text}"
        );
    }
    // A variable that is not set is an error naming the field, before any connection.
    let dir = temp_dir(&format!("{db}-unset"));
    let security = "    protocol: sasl_ssl\n    sasl_mechanism: PLAIN\n    username: u\n    password_env: SLUICE_TEST_UNSET_VARIABLE\n";
    let file = secured_project(&dir, &db, &start, &kafka.addr, security);
    let (code, out) = sluice_said(["precheck", "-f", &file])?;
    assert_ne!(code, 0);
    assert!(
        out.contains("destination.security.password_env")
            && out.contains("SLUICE_TEST_UNSET_VARIABLE"),
        "{out}"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
