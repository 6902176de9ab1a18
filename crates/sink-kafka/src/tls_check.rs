//! Why a TLS handshake with a broker fails, in words: librdkafka says only "certificate
//! verify failed", so after such a failure the same handshake is made once more with OpenSSL
//! (the library librdkafka uses, with the same CA, client certificate and host-name rule) and
//! OpenSSL's verification result is reported: "certificate has expired", "hostname mismatch",
//! "unable to get local issuer certificate" (a CA that did not sign it), ...

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use openssl::ssl::{HandshakeError, SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509VerifyResult;
use sluice_core::Secret;

fn prop<'a>(props: &'a [(String, Secret)], key: &str) -> Option<&'a str> {
    props
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.expose())
}

/// The handshake with the first broker of `brokers` under the TLS settings in `props`: None
/// when it succeeds (or TLS is not in use), else what OpenSSL says is wrong.
pub(crate) fn diagnose(brokers: &str, props: &[(String, Secret)]) -> Option<String> {
    let protocol = prop(props, "security.protocol")?.to_ascii_lowercase();
    if !protocol.ends_with("ssl") {
        return None;
    }
    let broker = brokers.split(',').next()?.trim();
    let broker = broker.rsplit_once("://").map_or(broker, |(_, b)| b);
    let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h);
    let addr = broker.to_socket_addrs().ok()?.next()?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut b = SslConnector::builder(SslMethod::tls_client()).ok()?;
    b.set_verify(SslVerifyMode::PEER);
    if let Some(ca) = prop(props, "ssl.ca.location") {
        b.set_ca_file(ca).ok()?;
    }
    if let (Some(c), Some(k)) = (
        prop(props, "ssl.certificate.location"),
        prop(props, "ssl.key.location"),
    ) {
        b.set_certificate_chain_file(c).ok()?;
        b.set_private_key_file(k, SslFiletype::PEM).ok()?;
    }
    let mut cfg = b.build().configure().ok()?;
    if prop(props, "ssl.endpoint.identification.algorithm") == Some("none") {
        cfg.set_verify_hostname(false);
    }
    match cfg.connect(host, tcp) {
        Ok(mut s) => {
            // TLS 1.3: a server that wants a client certificate refuses it after the
            // handshake, at the first read.
            let mut buf = [0u8; 1];
            match std::io::Read::read(&mut s, &mut buf) {
                Err(e)
                    if e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut =>
                {
                    Some(format!("the broker ended the TLS session: {e}"))
                }
                _ => None,
            }
        }
        Err(e) => {
            let verify = match &e {
                HandshakeError::Failure(m) | HandshakeError::WouldBlock(m) => {
                    Some(m.ssl().verify_result())
                }
                HandshakeError::SetupFailure(_) => None,
            };
            Some(match verify {
                Some(v) if v != X509VerifyResult::OK => {
                    format!(
                        "the broker's certificate failed verification: {}",
                        v.error_string()
                    )
                }
                _ => format!("TLS handshake failed: {e}"),
            })
        }
    }
}
