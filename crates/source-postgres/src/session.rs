//! A control-plane connection (tokio-postgres, simple queries, text results) on a runtime of
//! its own, and how its errors are classified.

use sluice_core::source::SourceError;
use sluice_core::tls::TlsMode;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::Target;

/// Settings every session of ours runs with, so that every value's text is the one
/// types.rs reads: ISO dates, UTC, hex bytea, the shortest exact float text, standard strings.
pub(crate) const SESSION_OPTIONS: &str = "-c DateStyle=ISO,YMD -c TimeZone=UTC \
     -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=1 \
     -c standard_conforming_strings=on -c client_encoding=UTF8";

/// SQLSTATEs that trying again later can cure: the connection classes (08), the server
/// shutting down or starting (57P01..57P03), too many connections (53300), serialization
/// failures and deadlocks (40001, 40P01), an object in use (55006: a replication slot still
/// held by a connection that is closing).
fn transient_state(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" | "55006"
        )
}

/// A client error as a source error, by its SQLSTATE (or, without one, by whether the
/// network failed).
pub(crate) fn classify(what: &str, e: &tokio_postgres::Error) -> SourceError {
    let transient = match e.code() {
        Some(code) => transient_state(code.code()),
        None => {
            e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        }
    };
    let text = match e.as_db_error() {
        Some(db) => format!("{what}: {} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            // The causes too: "error performing TLS handshake" alone does not say why.
            let mut text = format!("{what}: {e}");
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            text
        }
    };
    if transient {
        SourceError::Unavailable(text)
    } else {
        SourceError::Definite(text)
    }
}

/// A replication-client error as a source error: the network and a server that is going
/// away are transient; the SQLSTATE the server gave decides the rest.
pub(crate) fn classify_wire(what: &str, e: &pgwire_replication::PgWireError) -> SourceError {
    use pgwire_replication::PgWireError as W;
    let text = format!("{what}: {e}");
    match e {
        W::Io(_) | W::Task(_) => SourceError::Unavailable(text),
        W::Server(m) => {
            let code = m
                .split_once("SQLSTATE ")
                .map(|(_, c)| c.chars().take(5).collect::<String>());
            if code.as_deref().is_some_and(transient_state) {
                SourceError::Unavailable(text)
            } else {
                SourceError::Definite(text)
            }
        }
        _ => SourceError::Definite(text),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, SourceError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Definite(format!("start a runtime: {e}")))
}

/// Opens a client on the current runtime (its connection task spawned there), over TLS as
/// `source.tls` says.
pub(crate) async fn connect(target: &Target) -> Result<Client, SourceError> {
    let failed = |e: tokio_postgres::Error| {
        let what = format!(
            "connect to the source{}",
            crate::tls::advice(&format!("{e:?}"))
        );
        classify(&what, &e)
    };
    // The connection task differs in type with and without TLS; both run the same way.
    fn drive<F>(conn: F)
    where
        F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("source connection ended: {e}");
            }
        });
    }
    match &target.tls {
        Some(t) if t.mode != TlsMode::Disabled => {
            let (client, conn) = target
                .cfg
                .connect(crate::tls::connector(t)?)
                .await
                .map_err(failed)?;
            drive(conn);
            Ok(client)
        }
        _ => {
            let (client, conn) = target.cfg.connect(NoTls).await.map_err(failed)?;
            drive(conn);
            Ok(client)
        }
    }
}

/// Rows of a simple query, each column as its text (None: NULL).
pub(crate) async fn rows(
    client: &Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, SourceError> {
    let out = client
        .simple_query(sql)
        .await
        .map_err(|e| classify("read the source", &e))?;
    Ok(out
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// A blocking session: a runtime and a client on it.
pub(crate) struct Session {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Session {
    pub(crate) fn open(target: &Target) -> Result<Self, SourceError> {
        let rt = runtime()?;
        let client = rt.block_on(connect(target))?;
        Ok(Self { rt, client })
    }

    pub(crate) fn rt(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Rows of a simple query (text columns).
    pub(crate) fn rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, SourceError> {
        self.rt.block_on(rows(&self.client, sql))
    }

    /// Runs statements whose results are not needed.
    pub(crate) fn run(&self, sql: &str) -> Result<(), SourceError> {
        self.rows(sql).map(|_| ())
    }
}

/// `'text'` as an SQL literal (standard_conforming_strings is on in our sessions).
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"name"` as an SQL identifier.
pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One cell of a row read by [`rows`], for catalog reads where NULL is not expected.
pub(crate) fn cell(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}
