//! Destination sessions: connecting (with an error that names the address and the fix), the
//! settings every writer session runs with, and waiting until a session sees a table that was
//! just created.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::sink::SinkError;
use sluice_mysql_client::Endpoint;

use crate::unavailable;

/// A connection to the destination, or an error naming its address and the fix.
pub(crate) async fn connect(endpoint: &Endpoint) -> Result<Conn, SinkError> {
    endpoint.connect().await.map_err(|e| {
        SinkError::Unavailable(format!(
            "cannot connect to the destination {}: {e}{}; check destination.url and that the server runs",
            endpoint.address(),
            endpoint.tls_advice(&e, "destination.tls")
        ))
    })
}

/// How long a table created a moment ago may stay invisible to a session (seekdb shows other
/// sessions' new tables with a delay; MariaDB and MySQL at once).
const VISIBLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until this session sees `table` (quoted `db`.`t`), which exists: `ERROR 1146` is
/// then only the server's delay in showing it, not a missing table.
pub(crate) async fn wait_visible(c: &mut Conn, table: &str) -> Result<(), SinkError> {
    let deadline = std::time::Instant::now() + VISIBLE_WITHIN;
    loop {
        match c.query_drop(format!("SELECT 1 FROM {table} LIMIT 0")).await {
            Ok(()) => return Ok(()),
            Err(mysql_async::Error::Server(e))
                if e.code == 1146 && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(unavailable("see a table just created")(e));
            }
        }
    }
}

/// Settings of every writer session: UTC for TIMESTAMP, zero dates allowed, no implicit defaults
/// filled in, and READ COMMITTED. Under REPEATABLE READ, InnoDB's delete-by-key of keys not yet
/// there takes gap locks, and writers inserting interleaved keys into the same gaps deadlock
/// each other all the time (measured: a full sync into MariaDB fell to 2,600 rows/s, every
/// chunk retried). Writers own disjoint keys, so they need no gap locks. A destination logging
/// statements (`binlog_format=STATEMENT`) refuses writes under READ COMMITTED: it keeps the
/// default. Foreign-key checks are off unless `foreign_key_checks` (see
/// [`crate::MysqlConfig::foreign_key_checks`]).
pub(crate) async fn session_settings(
    c: &mut Conn,
    foreign_key_checks: bool,
) -> Result<(), SinkError> {
    c.query_drop(format!(
        "SET SESSION time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO', foreign_key_checks = {}",
        u8::from(foreign_key_checks)
    ))
        .await
        .map_err(unavailable("session settings"))?;
    let format: Option<String> = c.query_first("SELECT @@binlog_format").await.ok().flatten();
    if !format.is_some_and(|f| f.eq_ignore_ascii_case("STATEMENT")) {
        c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(unavailable("session isolation level"))?;
    }
    Ok(())
}
