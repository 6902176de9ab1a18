//! Precheck of a MySQL-family source before reading: everything that would make capture lose or
//! misread rows is found up front, each with the fix.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::TableId;

/// One finding: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.problem, self.fix)
    }
}

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
    let fail = |problem: String, fix: &str| Finding {
        problem,
        fix: fix.to_string(),
    };

    let log_bin = global(conn, "log_bin").await?.unwrap_or_default();
    if !matches!(log_bin.as_str(), "1" | "ON") {
        r.failures.push(fail(
            "binary logging is off on the source (log_bin)".into(),
            "set log_bin (and server_id) in the server's configuration and restart it",
        ));
    } else {
        let format = global(conn, "binlog_format").await?.unwrap_or_default();
        if !format.eq_ignore_ascii_case("ROW") {
            r.failures.push(fail(
                format!("binlog_format is {format}, not ROW: changes are logged as SQL, not rows"),
                "run SET GLOBAL binlog_format = 'ROW' and set it in the server's configuration",
            ));
        }
        let image = global(conn, "binlog_row_image")
            .await?
            .unwrap_or_else(|| "FULL".into());
        if !image.eq_ignore_ascii_case("FULL") {
            r.failures.push(fail(
                format!("binlog_row_image is {image}, not FULL: rows are logged without all their columns"),
                "run SET GLOBAL binlog_row_image = 'FULL' and set it in the server's configuration",
            ));
        }
        match global(conn, "binlog_row_metadata").await? {
            Some(m) if m.eq_ignore_ascii_case("FULL") => {}
            other => r.warnings.push(fail(
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
