//! `source.tls` for PostgreSQL: the control-plane sessions (tokio-postgres) go through OpenSSL
//! (`postgres-openssl`), the replication session through rustls (pgwire-replication's own TLS);
//! both take the same mode and files.
//!
//! Modes map to libpq's `sslmode`: disabled -> disable, preferred -> prefer, required ->
//! require (no certificate check), verify_ca -> verify-ca (chain only), verify_identity ->
//! verify-full (chain and host name).

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use sluice_core::source::SourceError;
use sluice_core::tls::{Tls, TlsMode};
use tokio_postgres::config::SslMode;

fn definite(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Definite(format!("source.tls: {what}: {e}"))
}

/// tokio-postgres's `sslmode` for a mode.
pub(crate) fn ssl_mode(mode: TlsMode) -> SslMode {
    match mode {
        TlsMode::Disabled => SslMode::Disable,
        TlsMode::Preferred => SslMode::Prefer,
        _ => SslMode::Require,
    }
}

/// The connector of the control-plane sessions.
pub(crate) fn connector(tls: &Tls) -> Result<MakeTlsConnector, SourceError> {
    let mut b =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| definite("OpenSSL", e))?;
    if let Some(ca) = &tls.ca_file {
        b.set_ca_file(ca)
            .map_err(|e| definite(&format!("ca_file {}", ca.display()), e))?;
    }
    if let (Some(c), Some(k)) = (&tls.cert_file, &tls.key_file) {
        b.set_certificate_chain_file(c)
            .map_err(|e| definite(&format!("cert_file {}", c.display()), e))?;
        b.set_private_key_file(k, SslFiletype::PEM)
            .map_err(|e| definite(&format!("key_file {}", k.display()), e))?;
    }
    if !tls.mode.verifies() {
        b.set_verify(SslVerifyMode::NONE);
    }
    let mut connector = MakeTlsConnector::new(b.build());
    if tls.mode != TlsMode::VerifyIdentity {
        connector.set_callback(|config, _domain| {
            config.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(connector)
}

/// Makes aws-lc-rs the process's rustls provider (once; one chosen before stays):
/// pgwire-replication compiles in ring as well, and rustls will not pick one of two by itself.
fn rustls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// The replication session's TLS settings.
pub(crate) fn replication(tls: Option<&Tls>) -> pgwire_replication::TlsConfig {
    use pgwire_replication::TlsConfig;
    let Some(tls) = tls else {
        return TlsConfig::disabled();
    };
    rustls_provider();
    let ca = tls.ca_file.clone();
    let mut cfg = match tls.mode {
        TlsMode::Disabled => TlsConfig::disabled(),
        TlsMode::Preferred => {
            let mut c = TlsConfig::require();
            c.mode = pgwire_replication::SslMode::Prefer;
            c
        }
        TlsMode::Required => TlsConfig::require(),
        TlsMode::VerifyCa => TlsConfig::verify_ca(ca),
        TlsMode::VerifyIdentity => TlsConfig::verify_full(ca),
    };
    if let (Some(c), Some(k)) = (&tls.cert_file, &tls.key_file) {
        cfg.client_cert_pem_path = Some(c.clone());
        cfg.client_key_pem_path = Some(k.clone());
    }
    cfg
}

/// What to check when a connection failed with `text`, or nothing when it is no TLS matter.
pub(crate) fn advice(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    if t.contains("no encryption") || t.contains("hostnossl") {
        "; the server accepts TLS connections only: set source.tls.mode (required, verify_ca or verify_identity)"
    } else if t.contains("does not support tls") || t.contains("server does not support ssl") {
        "; the server offers no TLS: enable ssl on it or set source.tls.mode to preferred or disabled"
    } else if t.contains("certificate") || t.contains("ssl") || t.contains("tls") {
        "; check source.tls: ca_file must hold the CA that signed the server's certificate \
         (verify_ca, verify_identity), the certificate must be within its validity dates, and \
         with verify_identity it must name the host of the URL"
    } else {
        ""
    }
}
