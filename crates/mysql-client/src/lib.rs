//! How Sluice connects to a MySQL-family server (the MySQL source, the database destination,
//! verification): a connection URL and `tls` settings become one [`Endpoint`], whose
//! [`Endpoint::connect`] every connection goes through.
//!
//! TLS modes, as MySQL's `--ssl-mode` names them, over native-tls (the system's OpenSSL):
//! - `disabled`: plain TCP;
//! - `preferred`: TLS when the server offers it, else plain TCP (the server's answer decides,
//!   per connection); the certificate is not checked;
//! - `required`: TLS or no connection; the certificate is not checked;
//! - `verify_ca`: the certificate must chain to `ca_file` (or the built-in roots);
//! - `verify_identity`: and it must name the host of the URL.
//!
//! Invariant: the password stays inside the options; errors name the host and port only.
#![deny(missing_docs)]

use mysql_async::{ClientIdentity, Conn, Opts, OptsBuilder, SslOpts};
use sluice_core::secret::URL_PASSWORD_HINT;
use sluice_core::tls::{Tls, TlsMode};
use sluice_core::SecretUrl;

/// A server to connect to, with its TLS settings.
#[derive(Clone)]
pub struct Endpoint {
    opts: Opts,
    /// `preferred`: the same options without TLS, for a server that offers none.
    plain: Option<Opts>,
    mode: TlsMode,
}

impl std::fmt::Debug for Endpoint {
    // By hand: the client options hold the password in the clear.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address())
            .field("tls", &self.mode)
            .finish()
    }
}

/// The PKCS#12 archive (no password) of a PEM certificate chain and key, which native-tls takes
/// as a client identity.
fn pkcs12(cert: &std::path::Path, key: &std::path::Path) -> Result<Vec<u8>, String> {
    use openssl::pkey::PKey;
    use openssl::x509::X509;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut chain = X509::stack_from_pem(&read(cert)?)
        .map_err(|e| {
            format!(
                "tls.cert_file {}: not a PEM certificate: {e}",
                cert.display()
            )
        })?
        .into_iter();
    let first = chain
        .next()
        .ok_or_else(|| format!("tls.cert_file {}: holds no certificate", cert.display()))?;
    let pkey = PKey::private_key_from_pem(&read(key)?)
        .map_err(|e| format!("tls.key_file {}: not a PEM private key: {e}", key.display()))?;
    let mut rest = openssl::stack::Stack::new().map_err(|e| e.to_string())?;
    for c in chain {
        rest.push(c).map_err(|e| e.to_string())?;
    }
    openssl::pkcs12::Pkcs12::builder()
        .name("sluice")
        .pkey(&pkey)
        .cert(&first)
        .ca(rest)
        .build2("")
        .and_then(|p| p.to_der())
        .map_err(|e| format!("tls.cert_file/key_file: {e}"))
}

fn ssl_opts(tls: &Tls) -> Result<SslOpts, String> {
    let mut s = SslOpts::default();
    if let Some(ca) = &tls.ca_file {
        s = s.with_root_certs(vec![ca.clone().into()]);
    }
    if let (Some(c), Some(k)) = (&tls.cert_file, &tls.key_file) {
        let archive = pkcs12(c, k)?;
        s = s.with_client_identity(Some(ClientIdentity::new(archive.into()).with_password("")));
    }
    Ok(match tls.mode {
        TlsMode::Preferred | TlsMode::Required => s
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true),
        TlsMode::VerifyCa => s.with_danger_skip_domain_validation(true),
        TlsMode::VerifyIdentity | TlsMode::Disabled => s,
    })
}

impl Endpoint {
    /// The server at `url` (`mysql://user:pass@host:port[/db]`) with `tls` (None: as the URL
    /// says, e.g. `?require_ssl=true`); an error says what is wrong with the URL (without its
    /// password).
    pub fn new(url: &SecretUrl, tls: Option<&Tls>) -> Result<Self, String> {
        let base = Opts::from_url(url.expose()).map_err(|_| {
            format!("{url} is not a mysql://user:pass@host:port URL{URL_PASSWORD_HINT}")
        })?;
        Self::with_tls(base, tls)
    }

    /// `base` as it is (its own TLS settings, if any).
    pub fn from_opts(base: Opts) -> Self {
        let mode = match base.ssl_opts() {
            None => TlsMode::Disabled,
            Some(_) => TlsMode::Required,
        };
        Self {
            opts: base,
            plain: None,
            mode,
        }
    }

    /// `base` with `tls` (replacing its own TLS settings; None keeps them); an error names a
    /// client certificate or key that cannot be used.
    pub fn with_tls(base: Opts, tls: Option<&Tls>) -> Result<Self, String> {
        let Some(tls) = tls else {
            return Ok(Self::from_opts(base));
        };
        // A server on this machine is otherwise reached over its Unix socket once its address
        // answered (mysql_async's prefer_socket), without TLS: settings that ask for TLS keep
        // every session on TCP.
        let builder = OptsBuilder::from_opts(base).prefer_socket(tls.mode == TlsMode::Disabled);
        let (opts, plain) = match tls.mode {
            TlsMode::Disabled => (Opts::from(builder.ssl_opts(None)), None),
            TlsMode::Preferred => (
                Opts::from(builder.clone().ssl_opts(Some(ssl_opts(tls)?))),
                Some(Opts::from(builder.ssl_opts(None))),
            ),
            _ => (Opts::from(builder.ssl_opts(Some(ssl_opts(tls)?))), None),
        };
        Ok(Self {
            opts,
            plain,
            mode: tls.mode,
        })
    }

    /// The options connections are made with (TLS as configured).
    pub fn opts(&self) -> &Opts {
        &self.opts
    }

    /// The same endpoint with options changed by `f` (pool settings, a database, ...), applied
    /// to both the TLS and the plain options.
    pub fn map_opts(&self, f: impl Fn(OptsBuilder) -> OptsBuilder) -> Self {
        Self {
            opts: f(OptsBuilder::from_opts(self.opts.clone())).into(),
            plain: self
                .plain
                .as_ref()
                .map(|p| f(OptsBuilder::from_opts(p.clone())).into()),
            mode: self.mode,
        }
    }

    /// The TLS mode.
    pub fn tls_mode(&self) -> TlsMode {
        self.mode
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.opts.ip_or_hostname(), self.opts.tcp_port())
    }

    /// A connection; with `preferred`, over plain TCP when the server offers no TLS.
    pub async fn connect(&self) -> Result<Conn, mysql_async::Error> {
        match Conn::new(self.opts.clone()).await {
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) if self.plain.is_some() => {
                Conn::new(self.plain.clone().unwrap_or_else(|| self.opts.clone())).await
            }
            other => other,
        }
    }

    /// What to check when a connection failed with `e`: for TLS failures, the TLS settings of
    /// `section` (`source.tls`, `destination.tls`); else nothing.
    pub fn tls_advice(&self, e: &mysql_async::Error, section: &str) -> String {
        let text = e.to_string();
        // MariaDB answers a plain connection to a server with require_secure_transport=ON with
        // "access denied", as it answers a wrong password.
        if matches!(e, mysql_async::Error::Server(s) if s.code == 1045)
            && self.opts.ssl_opts().is_none()
        {
            return format!(
                "; over a plain connection: if the password is right, the server may accept TLS connections only (require_secure_transport): set {section}.mode"
            );
        }
        let tls_failure = matches!(
            e,
            mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
        ) || text.contains("certificate")
            || text.contains("TLS")
            || text.contains("tls")
            || text.contains("handshake")
            || text.contains("secure transport");
        if !tls_failure {
            return String::new();
        }
        if text.contains("secure transport") {
            return format!(
                "; the server accepts TLS connections only: set {section}.mode (required, verify_ca or verify_identity)"
            );
        }
        if matches!(
            e,
            mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
        ) {
            return format!(
                "; the server offers no TLS: enable TLS on it (ssl_cert, ssl_key) or set {section}.mode to preferred or disabled"
            );
        }
        format!(
            "; check {section}: ca_file must hold the CA that signed the server's certificate \
             (verify_ca, verify_identity), the certificate must be within its validity dates, and \
             with verify_identity it must name the host of the URL ({})",
            self.opts.ip_or_hostname()
        )
    }
}
