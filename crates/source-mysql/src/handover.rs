//! The hand-over position of a full sync: a binlog position to replay from after copying rows,
//! such that every transaction the log holds before it is visible to a read started after it.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::live::current_position;

/// A binlog position to replay from after copying rows: every transaction the log holds before
/// it is visible to any read that starts after this call returns.
///
/// `SHOW MASTER STATUS` alone does not promise that: a server writes a transaction to the binlog
/// before the storage engine makes it visible, so the end of the log can already be past a
/// transaction a fresh read does not yet see. A copy made after such a position misses the
/// change and the replay skips it: the row stays old for good (a real race under concurrent
/// writers; `tests/handover.rs` catches it within seconds). So:
/// - MariaDB (and Percona Server): a consistent snapshot reports the binlog position that
///   matches it exactly (`binlog_snapshot_file` / `binlog_snapshot_position`); no lock.
///   Except at a binlog rotation: when a commit group fills a file, MariaDB moves the snapshot
///   position to the start of the new file before that group is visible (`tests/handover.rs`
///   with 64 KB files sees it every run). A snapshot position before the first transaction of
///   its file is therefore not trusted: the read lock below decides instead, or, without
///   RELOAD, the snapshot is taken again until it is past the file's start or stays put.
/// - Otherwise (MySQL): the position is read under `FLUSH TABLES WITH READ LOCK`, held only for
///   that read, which waits for commits in flight (as Debezium's minimal snapshot lock does).
///   It needs the RELOAD privilege; without it the full sync is refused with that fix.
pub async fn snapshot_position(conn: &mut Conn) -> Result<(String, u64), SnapshotPositionError> {
    let mut last: Option<(String, u64)> = None;
    for _ in 0..20 {
        let Some(at) = consistent_snapshot_position(conn).await? else {
            return position_under_read_lock(conn).await;
        };
        if !before_first_transaction(conn, &at.0, at.1).await {
            return Ok(at);
        }
        match position_under_read_lock(conn).await {
            Err(SnapshotPositionError::NeedsReload(_)) => {}
            other => return other,
        }
        // No lock allowed: an idle server stays at the new file's start; once the same start
        // is reported twice, 100 ms apart, the group that filled the old file is long visible.
        if last.as_ref() == Some(&at) {
            return Ok(at);
        }
        last = Some(at);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(SnapshotPositionError::Server {
        what: "take a snapshot position past a binlog file's start",
        source: mysql_async::Error::Other(
            "the binlog rotated at every attempt for 2 s; try again, or grant RELOAD".into(),
        ),
    })
}

/// Opens a consistent snapshot on `conn` and returns the binlog position it matches exactly:
/// every transaction before the position is visible to the session's reads, none after it.
/// The transaction stays open; the caller reads, then commits. A table without a key is copied
/// this way, so that replaying the log from the position neither misses a change nor applies
/// one twice (there is no key to make a replay idempotent).
///
/// MariaDB reports its snapshot's position (except at a rotation, see [`snapshot_position`]);
/// otherwise the snapshot is started under `FLUSH TABLES WITH READ LOCK`, held only while the
/// snapshot starts and the position is read (RELOAD privilege).
pub async fn open_snapshot(conn: &mut Conn) -> Result<(String, u64), SnapshotPositionError> {
    let sql = |what: &'static str| move |source| SnapshotPositionError::Server { what, source };
    let mut last: Option<(String, u64)> = None;
    for _ in 0..20 {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(sql("START TRANSACTION WITH CONSISTENT SNAPSHOT"))?;
        let reported = snapshot_status(conn).await?;
        if let Some(at) = &reported {
            if !before_first_transaction(conn, &at.0, at.1).await || last.as_ref() == Some(at) {
                return Ok(at.clone());
            }
        }
        conn.query_drop("COMMIT").await.map_err(sql("COMMIT"))?;
        let locked = under_read_lock(conn, |c| {
            Box::pin(async move {
                c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                    .await
                    .map_err(sql("START TRANSACTION WITH CONSISTENT SNAPSHOT"))
            })
        })
        .await;
        match locked {
            Err(SnapshotPositionError::NeedsReload(m)) if reported.is_none() => {
                return Err(SnapshotPositionError::NeedsReload(m))
            }
            Err(SnapshotPositionError::NeedsReload(_)) => {}
            other => return other,
        }
        last = reported;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(SnapshotPositionError::Server {
        what: "open a snapshot past a binlog file's start",
        source: mysql_async::Error::Other(
            "the binlog rotated at every attempt for 2 s; try again, or grant RELOAD".into(),
        ),
    })
}

/// Whether only the header events of `file` (format description, GTID list, checkpoint) lie
/// before `offset`. When the events cannot be listed (no BINLOG MONITOR / REPLICATION CLIENT),
/// an offset within the first KiB counts as the start: headers are a few hundred bytes.
async fn before_first_transaction(conn: &mut Conn, file: &str, offset: u64) -> bool {
    let rows: Result<Vec<mysql_async::Row>, _> = conn
        .query(format!(
            "SHOW BINLOG EVENTS IN '{}' LIMIT 8",
            file.replace('\'', "''")
        ))
        .await;
    let Ok(rows) = rows else {
        return offset < 1024;
    };
    for r in rows {
        let ty: String = r.get("Event_type").unwrap_or_default();
        let end: u64 = r.get("End_log_pos").unwrap_or(u64::MAX);
        if end > offset {
            break;
        }
        let header = [
            "Format_desc",
            "Gtid_list",
            "Binlog_checkpoint",
            "Start_encryption",
            "Previous_gtids",
            "Rotate",
        ];
        if !header.contains(&ty.as_str()) {
            return false;
        }
    }
    true
}

/// The binlog position of a consistent snapshot, where the server reports one (MariaDB,
/// Percona Server).
async fn consistent_snapshot_position(
    conn: &mut Conn,
) -> Result<Option<(String, u64)>, SnapshotPositionError> {
    let sql = |what: &'static str| move |source| SnapshotPositionError::Server { what, source };
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(sql("START TRANSACTION WITH CONSISTENT SNAPSHOT"))?;
    let status = snapshot_status(conn).await;
    conn.query_drop("COMMIT").await.map_err(sql("COMMIT"))?;
    status
}

/// The binlog position the open consistent snapshot matches, as MariaDB (and Percona Server)
/// report it; None where the server does not.
async fn snapshot_status(conn: &mut Conn) -> Result<Option<(String, u64)>, SnapshotPositionError> {
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(|source| SnapshotPositionError::Server {
            what: "SHOW STATUS LIKE 'binlog_snapshot_%'",
            source,
        })?;
    let get = |name: &str| {
        status
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    match (get("binlog_snapshot_file"), get("binlog_snapshot_position")) {
        (Some(file), Some(offset)) if !file.is_empty() => {
            let offset = offset.parse().map_err(|_| SnapshotPositionError::Server {
                what: "read binlog_snapshot_position",
                source: mysql_async::Error::Other(format!("{offset:?} is not an offset").into()),
            })?;
            Ok(Some((file, offset)))
        }
        _ => Ok(None),
    }
}

/// The end of the binlog read while `FLUSH TABLES WITH READ LOCK` holds back new commits (and
/// has waited for those in flight), released at once.
pub async fn position_under_read_lock(
    conn: &mut Conn,
) -> Result<(String, u64), SnapshotPositionError> {
    under_read_lock(conn, |_| Box::pin(async { Ok(()) })).await
}

/// Runs `first` and reads the end of the log while `FLUSH TABLES WITH READ LOCK` holds every
/// commit back, then unlocks: the position is exact for whatever `first` started.
async fn under_read_lock<F>(
    conn: &mut Conn,
    first: F,
) -> Result<(String, u64), SnapshotPositionError>
where
    F: for<'c> FnOnce(
        &'c mut Conn,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), SnapshotPositionError>> + Send + 'c>,
    >,
{
    // Wait briefly for the lock rather than stall every writer behind a long query.
    let _ = conn.query_drop("SET SESSION lock_wait_timeout = 10").await;
    if let Err(e) = conn.query_drop("FLUSH TABLES WITH READ LOCK").await {
        return Err(match &e {
            mysql_async::Error::Server(s) if s.code == 1227 || s.code == 1045 => {
                SnapshotPositionError::NeedsReload(s.message.clone())
            }
            _ => SnapshotPositionError::Server {
                what: "FLUSH TABLES WITH READ LOCK",
                source: e,
            },
        });
    }
    let started = first(conn).await;
    let position = current_position(conn).await;
    let unlocked = conn.query_drop("UNLOCK TABLES").await;
    started?;
    let position = position.map_err(|source| SnapshotPositionError::Server {
        what: "SHOW MASTER STATUS",
        source,
    })?;
    unlocked.map_err(|source| SnapshotPositionError::Server {
        what: "UNLOCK TABLES",
        source,
    })?;
    Ok(position)
}

/// Why the hand-over position could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotPositionError {
    /// A statement failed.
    #[error("{what}: {source}")]
    Server {
        /// The statement.
        what: &'static str,
        /// The server's error.
        source: mysql_async::Error,
    },
    /// The server has no snapshot binlog position and the user may not take the brief lock.
    #[error(
        "this server reports no binlog position for a consistent snapshot, so the full sync \
         needs `FLUSH TABLES WITH READ LOCK` for a moment to take its hand-over position, and \
         it was refused ({0}); grant it with `GRANT RELOAD ON *.* TO <user>`, or turn the full \
         stage off"
    )]
    NeedsReload(String),
}
