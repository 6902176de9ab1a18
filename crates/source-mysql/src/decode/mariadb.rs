//! MariaDB's own binlog events (types 160-163), which `mysql_common` does not know.
//! Layouts: MariaDB server `log_event.h` (Gtid_log_event, Gtid_list_log_event,
//! Binlog_checkpoint_log_event, Annotate_rows_log_event).

/// A MariaDB GTID event: the transaction's id and whether it stands alone (no BEGIN/COMMIT).
pub struct MariaGtid {
    /// `domain-server-sequence`.
    pub gtid: String,
    /// FL_STANDALONE: a statement outside a transaction (DDL).
    pub standalone: bool,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
}

/// Parses a GTID event body: sequence (8), domain (4), flags (1), then optional parts.
pub fn gtid(data: &[u8], server_id: u32) -> Result<MariaGtid, String> {
    let seq = u64_at(data, 0).ok_or("GTID event shorter than 13 bytes")?;
    let domain = u32_at(data, 8).ok_or("GTID event shorter than 13 bytes")?;
    let flags = *data.get(12).ok_or("GTID event shorter than 13 bytes")?;
    const FL_STANDALONE: u8 = 1;
    Ok(MariaGtid {
        gtid: format!("{domain}-{server_id}-{seq}"),
        standalone: flags & FL_STANDALONE != 0,
    })
}

/// Checks the layout of an annotate, checkpoint or GTID-list event.
pub fn validate(event_type: u8, data: &[u8]) -> Result<(), String> {
    match event_type {
        // Annotate rows: the statement text, any bytes.
        160 => Ok(()),
        // Binlog checkpoint: file name length (4) then the name.
        161 => {
            let len = u32_at(data, 0).ok_or("checkpoint event shorter than 4 bytes")? as usize;
            if data.len() < 4 + len {
                return Err(format!(
                    "checkpoint event names {len} bytes but holds {}",
                    data.len() - 4
                ));
            }
            Ok(())
        }
        // GTID list: count (low 28 bits) then count x (domain 4, server 4, sequence 8).
        163 => {
            let count =
                (u32_at(data, 0).ok_or("GTID list shorter than 4 bytes")? & 0x0fff_ffff) as usize;
            if data.len() < 4 + count * 16 {
                return Err(format!(
                    "GTID list of {count} entries holds only {} bytes",
                    data.len()
                ));
            }
            Ok(())
        }
        other => Err(format!("not a MariaDB event type: {other}")),
    }
}
