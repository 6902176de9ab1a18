//! Event layouts of MySQL pre-releases that GA servers no longer write.

/// Database and statement of an EXECUTE_LOAD_QUERY body: the query post-header (thread id 4,
/// exec time 4, db length 1, error code 2, status-vars length 2), file id 4, start 4, end 4,
/// duplicate handling 1; then the status variables, the database and a NUL, the statement.
pub(super) fn pre_release_execute_load_query(data: &[u8]) -> Option<(String, String)> {
    let db_len = usize::from(*data.get(8)?);
    let vars_len = usize::from(u16::from_le_bytes([*data.get(11)?, *data.get(12)?]));
    let db_at = 26 + vars_len;
    let db = data.get(db_at..db_at + db_len)?;
    let sql = data.get(db_at + db_len + 1..)?;
    Some((
        String::from_utf8_lossy(db).into_owned(),
        String::from_utf8_lossy(sql).into_owned(),
    ))
}
