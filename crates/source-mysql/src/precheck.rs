//! Precheck of a MySQL-family source before reading: everything that would make capture lose or
//! misread rows is found up front, each with the fix.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::TableId;

pub use sluice_core::source::Finding;

/// The result of a precheck: failures stop capture, warnings are reported.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Problems that make capture impossible or lossy.
    pub failures: Vec<Finding>,
    /// Problems the user should know about.
    pub warnings: Vec<Finding>,
}

impl Report {
    /// Whether capture may start.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

async fn global(conn: &mut Conn, name: &str) -> Result<Option<String>, mysql_async::Error> {
    // A variable the server does not know (older versions) reads as None, not as an error.
    match conn
        .query_first::<Option<String>, _>(format!("SELECT @@GLOBAL.{name}"))
        .await
    {
        Ok(v) => Ok(v.flatten()),
        Err(mysql_async::Error::Server(e)) if e.code == 1193 => Ok(None),
        Err(e) => Err(e),
    }
}

/// The privileges granted on `*.*` to the current user, upper case, one per entry.
async fn global_privileges(conn: &mut Conn) -> Result<(Vec<String>, bool), mysql_async::Error> {
    let grants: Vec<String> = conn.query("SHOW GRANTS FOR CURRENT_USER()").await?;
    let mut privs = Vec::new();
    let mut any_select = false;
    for g in grants {
        let upper = g.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((list, target)) = rest.split_once(" ON ") else {
            continue;
        };
        let items: Vec<String> = list.split(',').map(|p| p.trim().to_string()).collect();
        if items
            .iter()
            .any(|p| p == "SELECT" || p == "ALL PRIVILEGES" || p == "ALL")
        {
            any_select = true;
        }
        if target.trim_start().starts_with("*.*") {
            privs.extend(items);
        }
    }
    Ok((privs, any_select))
}

/// Checks the source's binlog settings, the user's privileges and (for the given tables) their
/// primary keys.
pub async fn check(conn: &mut Conn, tables: &[TableId]) -> Result<Report, mysql_async::Error> {
    let mut r = Report::default();
    let fail = |item: &str, problem: String, fix: &str| Finding {
        item: item.to_string(),
        problem,
        fix: fix.to_string(),
    };

    let log_bin = global(conn, "log_bin").await?.unwrap_or_default();
    if !matches!(log_bin.as_str(), "1" | "ON") {
        r.failures.push(fail(
            "log_bin",
            "binary logging is off on the source (log_bin)".into(),
            "set log_bin (and server_id) in the server's configuration and restart it",
        ));
    } else {
        let format = global(conn, "binlog_format").await?.unwrap_or_default();
        if !format.eq_ignore_ascii_case("ROW") {
            r.failures.push(fail(
                "binlog_format",
                format!("binlog_format is {format}, not ROW: changes are logged as SQL, not rows"),
                "run SET GLOBAL binlog_format = 'ROW' and set it in the server's configuration",
            ));
        }
        let image = global(conn, "binlog_row_image")
            .await?
            .unwrap_or_else(|| "FULL".into());
        if !image.eq_ignore_ascii_case("FULL") {
            r.failures.push(fail(
                "binlog_row_image",
                format!("binlog_row_image is {image}, not FULL: rows are logged without all their columns"),
                "run SET GLOBAL binlog_row_image = 'FULL' and set it in the server's configuration",
            ));
        }
        match global(conn, "binlog_row_metadata").await? {
            Some(m) if m.eq_ignore_ascii_case("FULL") => {}
            other => r.warnings.push(fail(
                "binlog_row_metadata",
                format!(
                    "binlog_row_metadata is {}: column names and character sets are not in the log",
                    other.unwrap_or_else(|| "not supported".into())
                ),
                "set binlog_row_metadata = FULL (MySQL 8.0.1+, MariaDB 10.5+) so every row carries its schema",
            )),
        }
    }

    let (privs, any_select) = global_privileges(conn).await?;
    let has = |p: &str| {
        privs
            .iter()
            .any(|x| x == p || x == "ALL PRIVILEGES" || x == "ALL")
    };
    let mut missing = Vec::new();
    if !has("REPLICATION SLAVE") {
        missing.push("REPLICATION SLAVE");
    }
    // MariaDB 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR; SUPER also covers it.
    if !(has("REPLICATION CLIENT") || has("BINLOG MONITOR") || has("SUPER")) {
        missing.push("REPLICATION CLIENT");
    }
    if !any_select {
        missing.push("SELECT");
    }
    if !missing.is_empty() {
        r.failures.push(Finding {
            item: "privileges".into(),
            problem: format!(
                "the source user lacks the privileges {}",
                missing.join(", ")
            ),
            fix: format!("run GRANT {} ON *.* TO the user", missing.join(", ")),
        });
    }

    for t in tables {
        let has_pk: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_TYPE = 'PRIMARY KEY'",
                (&t.db, &t.table),
            )
            .await?;
        if has_pk.unwrap_or(0) == 0 {
            r.warnings.push(Finding {
                item: "primary keys".into(),
                problem: format!(
                    "table {t} has no primary key: its changes cannot be keyed, so per-key order \
                                  and duplicate removal fall back to whole rows"
                ),
                fix: "add a primary key, or name unique columns for the table".into(),
            });
        }
    }
    Ok(r)
}

/// Rows per second full sync is assumed to copy when the binlog retention is weighed against
/// it: a cautious figure, well under what docs/BENCHMARKS.md measured for one reader.
pub const ASSUMED_FULL_ROWS_PER_S: u64 = 10_000;

/// The checks that only matter before a project starts (`sluice precheck`, the service's
/// precheck action): our replica id is free, and the binlogs are kept long enough for full
/// sync to copy `rows` rows before incremental sync replays from the hand-over position.
pub async fn before_start(
    conn: &mut Conn,
    server_id: u32,
    rows: u64,
) -> Result<Vec<Finding>, mysql_async::Error> {
    let mut out = Vec::new();
    let own: Option<u32> = conn.query_first("SELECT @@server_id").await?;
    if own == Some(server_id) {
        out.push(Finding {
            item: "server_id".into(),
            problem: format!("server_id {server_id} is the source server's own id"),
            fix: "give source.server_id a number no server or replica of this source uses".into(),
        });
    }
    // Replicas that registered themselves (our reader does not, so this finds other tools and
    // real replicas).
    if let Ok(rows) = conn.query::<mysql_async::Row, _>("SHOW SLAVE HOSTS").await {
        let taken = rows.iter().any(|r| {
            r.get_opt::<u32, _>("Server_id")
                .and_then(Result::ok)
                .is_some_and(|id| id == server_id)
        });
        if taken {
            out.push(Finding {
                item: "server_id".into(),
                problem: format!("a replica with server_id {server_id} is connected to the source"),
                fix: "give source.server_id a number no other replica uses (SHOW SLAVE HOSTS lists them)".into(),
            });
        }
    }
    if rows > 0 {
        // Seconds the server keeps a binlog: MySQL 8's binlog_expire_logs_seconds, else
        // expire_logs_days (MariaDB's days may be fractional); 0 means kept until purged by hand.
        let seconds = global(conn, "binlog_expire_logs_seconds")
            .await?
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s > 0.0);
        let days = global(conn, "expire_logs_days")
            .await?
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|d| *d > 0.0);
        if let Some(keep) = seconds.or(days.map(|d| d * 86_400.0)) {
            let need = rows as f64 / ASSUMED_FULL_ROWS_PER_S as f64;
            if keep < need * 2.0 {
                out.push(Finding {
                    item: "binlog retention".into(),
                    problem: format!(
                        "binlogs are kept {keep:.0} s, and full sync of about {rows} rows may take {need:.0} s at {ASSUMED_FULL_ROWS_PER_S} rows/s: the hand-over position could be purged before incremental sync replays from it"
                    ),
                    fix: format!(
                        "keep binlogs at least {:.0} s (SET GLOBAL binlog_expire_logs_seconds or expire_logs_days)",
                        need * 2.0
                    ),
                });
            }
        }
    }
    Ok(out)
}
