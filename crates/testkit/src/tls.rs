//! TLS for tests: certificates the harness makes itself (a CA, a second CA that signed
//! nothing the servers use, a server certificate for `localhost`/127.0.0.1, one that expired,
//! one for another host name, a client certificate), and a TLS terminator (Debian's stunnel)
//! in front of a plain TCP server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509NameBuilder, X509};

use crate::{free_port, unique_name};

fn ssl(e: openssl::error::ErrorStack) -> String {
    format!("openssl: {e}")
}

fn key() -> Result<PKey<Private>, String> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ssl)?;
    PKey::from_ec_key(EcKey::generate(&group).map_err(ssl)?).map_err(ssl)
}

/// What a certificate is for.
enum Kind<'a> {
    Ca,
    Server { names: &'a [&'a str] },
    Client,
}

/// A certificate for `cn`, signed by `issuer` (self-signed when None), valid from `from_days`
/// to `to_days` days from now.
fn cert(
    cn: &str,
    kind: Kind<'_>,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    from_days: i64,
    to_days: i64,
) -> Result<X509, String> {
    let mut name = X509NameBuilder::new().map_err(ssl)?;
    name.append_entry_by_text("CN", cn).map_err(ssl)?;
    let name = name.build();
    let mut b = X509::builder().map_err(ssl)?;
    b.set_version(2).map_err(ssl)?;
    let mut serial = BigNum::new().map_err(ssl)?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false).map_err(ssl)?;
    let serial = serial.to_asn1_integer().map_err(ssl)?;
    b.set_serial_number(&serial).map_err(ssl)?;
    b.set_subject_name(&name).map_err(ssl)?;
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
        .map_err(ssl)?;
    b.set_pubkey(key).map_err(ssl)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;
    let not_before = Asn1Time::from_unix(now + from_days * 86_400).map_err(ssl)?;
    let not_after = Asn1Time::from_unix(now + to_days * 86_400).map_err(ssl)?;
    b.set_not_before(&not_before).map_err(ssl)?;
    b.set_not_after(&not_after).map_err(ssl)?;
    match kind {
        Kind::Ca => {
            b.append_extension(
                BasicConstraints::new()
                    .critical()
                    .ca()
                    .build()
                    .map_err(ssl)?,
            )
            .map_err(ssl)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .map_err(ssl)?,
            )
            .map_err(ssl)?;
        }
        Kind::Server { names } => {
            let ctx = b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None);
            let mut san = SubjectAlternativeName::new();
            for n in names {
                if n.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(n);
                } else {
                    san.dns(n);
                }
            }
            let san = san.build(&ctx).map_err(ssl)?;
            b.append_extension(san).map_err(ssl)?;
            b.append_extension(ExtendedKeyUsage::new().server_auth().build().map_err(ssl)?)
                .map_err(ssl)?;
        }
        Kind::Client => {
            b.append_extension(ExtendedKeyUsage::new().client_auth().build().map_err(ssl)?)
                .map_err(ssl)?;
        }
    }
    let signer = issuer.map_or(key, |(_, k)| k);
    b.sign(signer, MessageDigest::sha256()).map_err(ssl)?;
    Ok(b.build())
}

/// Certificate files in a temporary folder (removed on drop). Each `*_cert` has its key beside
/// it (`*_key`); servers present `server` unless a test wants a broken one.
pub struct Certs {
    /// The folder.
    pub dir: PathBuf,
    /// The CA that signed every certificate below (PEM).
    pub ca: PathBuf,
    /// A CA that signed none of them.
    pub other_ca: PathBuf,
    /// A server certificate for `localhost` and 127.0.0.1, valid now.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// A server certificate for `localhost` and 127.0.0.1 that expired yesterday.
    pub expired_cert: PathBuf,
    /// A server certificate for `wrong.example` only.
    pub wrong_host_cert: PathBuf,
    /// The key of the expired and wrong-host certificates.
    pub broken_key: PathBuf,
    /// A client certificate (for mutual TLS).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl Certs {
    /// Makes a fresh set.
    pub fn generate() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(unique_name("sluice-certs"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, pem: Vec<u8>| -> Result<PathBuf, String> {
            let p = dir.join(name);
            std::fs::write(&p, pem).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(p)
        };
        let cert_pem = |c: &X509| c.to_pem().map_err(ssl);
        let key_pem = |k: &PKey<Private>| k.private_key_to_pem_pkcs8().map_err(ssl);

        let ca_key = key()?;
        let ca = cert("Sluice test CA", Kind::Ca, &ca_key, None, -1, 30)?;
        let other_key = key()?;
        let other = cert("Another CA", Kind::Ca, &other_key, None, -1, 30)?;
        let local: &[&str] = &["localhost", "127.0.0.1"];
        let server_key = key()?;
        let server = cert(
            "localhost",
            Kind::Server { names: local },
            &server_key,
            Some((&ca, &ca_key)),
            -1,
            30,
        )?;
        let broken_key = key()?;
        let expired = cert(
            "localhost",
            Kind::Server { names: local },
            &broken_key,
            Some((&ca, &ca_key)),
            -30,
            -1,
        )?;
        let wrong_host = cert(
            "wrong.example",
            Kind::Server {
                names: &["wrong.example"],
            },
            &broken_key,
            Some((&ca, &ca_key)),
            -1,
            30,
        )?;
        let client_key = key()?;
        let client = cert(
            "sluice-client",
            Kind::Client,
            &client_key,
            Some((&ca, &ca_key)),
            -1,
            30,
        )?;
        Ok(Self {
            ca: write("ca.pem", cert_pem(&ca)?)?,
            other_ca: write("other-ca.pem", cert_pem(&other)?)?,
            server_cert: write("server.pem", cert_pem(&server)?)?,
            server_key: write("server.key", key_pem(&server_key)?)?,
            expired_cert: write("expired.pem", cert_pem(&expired)?)?,
            wrong_host_cert: write("wrong-host.pem", cert_pem(&wrong_host)?)?,
            broken_key: write("broken.key", key_pem(&broken_key)?)?,
            client_cert: write("client.pem", cert_pem(&client)?)?,
            client_key: write("client.key", key_pem(&client_key)?)?,
            dir,
        })
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// stunnel accepting TLS on a free loopback port and forwarding the plain bytes to a TCP
/// server; killed on drop.
pub struct TlsTerminator {
    child: Child,
    dir: PathBuf,
    /// The TLS port.
    pub port: u16,
}

impl TlsTerminator {
    /// Listens on `port` (0: a free one) with `cert`/`key`, forwarding to `to` (`host:port`).
    /// With `client_ca`, a client must present a certificate that CA signed (mutual TLS).
    pub fn start(
        port: u16,
        to: &str,
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, String> {
        crate::ensure_up(&[crate::Service::Kafka]); // installs stunnel with the broker
        let port = if port == 0 { free_port()? } else { port };
        let dir = std::env::temp_dir().join(unique_name("sluice-stunnel"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut conf = format!(
            "foreground = yes\npid =\n[tls]\naccept = 127.0.0.1:{port}\nconnect = {to}\ncert = {}\nkey = {}\n",
            cert.display(),
            key.display()
        );
        if let Some(ca) = client_ca {
            conf.push_str(&format!(
                "CAfile = {}\nverifyChain = yes\nrequireCert = yes\n",
                ca.display()
            ));
        }
        let conf_path = dir.join("stunnel.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("stunnel.log")).map_err(|e| e.to_string())?;
        let child = Command::new("stunnel4")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("stunnel4 (Debian package stunnel4): {e}"))?;
        let mut t = Self { child, dir, port };
        crate::wait_listening(&mut t.child, port, 20)
            .map_err(|e| format!("stunnel: {e}: {}", t.log()))?;
        Ok(t)
    }

    /// What stunnel logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stunnel.log")).unwrap_or_default()
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
