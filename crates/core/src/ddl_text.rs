//! What a DDL statement's text alone says, for statements a SQL parser does not read.

/// Table options an `ALTER TABLE` may change without touching any column or key.
const TABLE_OPTIONS: &[&str] = &[
    "ALGORITHM",
    "AUTO_INCREMENT",
    "AVG_ROW_LENGTH",
    "CHARACTER",
    "CHARSET",
    "CHECKSUM",
    "COLLATE",
    "COMMENT",
    "COMPRESSION",
    "CONNECTION",
    "DEFAULT",
    "DELAY_KEY_WRITE",
    "ENCRYPTED",
    "ENCRYPTION",
    "ENCRYPTION_KEY_ID",
    "ENGINE",
    "FORCE",
    "IETF_QUOTES",
    "INSERT_METHOD",
    "KEY_BLOCK_SIZE",
    "LOCK",
    "MAX_ROWS",
    "MIN_ROWS",
    "PACK_KEYS",
    "PAGE_CHECKSUM",
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "ROW_FORMAT",
    "STATS_AUTO_RECALC",
    "STATS_PERSISTENT",
    "STATS_SAMPLE_PAGES",
    "TABLE_CHECKSUM",
    "TRANSACTIONAL",
];

/// Whether `sql` is an `ALTER TABLE` whose every clause sets a table option (`COMMENT = '...'`,
/// `ENGINE = InnoDB`, `AUTO_INCREMENT = 5`, a default character set, ...): no column, key or
/// row changes. `DEFAULT CHARSET` changes only the default of columns added later; `CONVERT
/// TO CHARACTER SET`, which converts columns, is not such a clause.
pub fn alters_only_table_options(sql: &str) -> bool {
    let text = sql.trim().trim_end_matches(';');
    let mut words = text.split_whitespace();
    if !words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("ALTER"))
    {
        return false;
    }
    let mut rest = text["ALTER".len()..].trim_start();
    for prefix in ["ONLINE", "IGNORE"] {
        if rest.len() >= prefix.len() && rest[..prefix.len()].eq_ignore_ascii_case(prefix) {
            rest = rest[prefix.len()..].trim_start();
        }
    }
    if rest.len() < 5 || !rest[..5].eq_ignore_ascii_case("TABLE") {
        return false;
    }
    let Some(after_name) = skip_name(rest[5..].trim_start()) else {
        return false;
    };
    let clauses = split_top_level(after_name);
    !clauses.is_empty()
        && clauses.iter().all(|c| {
            let word: String = c
                .trim()
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect::<String>()
                .to_ascii_uppercase();
            TABLE_OPTIONS.contains(&word.as_str())
        })
}

/// The text after a table name (`t`, `db.t`, `` `my db`.`t` ``), or None when there is none.
fn skip_name(s: &str) -> Option<&str> {
    let mut i = 0;
    let b = s.as_bytes();
    loop {
        if b.get(i) == Some(&b'`') {
            i += 1;
            loop {
                match b.get(i) {
                    Some(b'`') if b.get(i + 1) == Some(&b'`') => i += 2,
                    Some(b'`') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                    None => return None,
                }
            }
        } else {
            let start = i;
            while b.get(i).is_some_and(|c| {
                c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$' || *c >= 0x80
            }) {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            continue;
        }
        return s.get(i..);
    }
}

/// `a, b = 'x,y', c` -> its clauses, splitting at commas outside quotes and parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut depth, mut quote) = (Vec::new(), 0, 0i32, None::<char>);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(&s[start..]);
    }
    out.retain(|c| !c.trim().is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::alters_only_table_options as only;

    #[test]
    fn table_options_are_told_from_column_changes() {
        for sql in [
            "ALTER TABLE t COMMENT = 'a, b'",
            "alter table `my db`.`t` ENGINE=InnoDB, AUTO_INCREMENT = 10;",
            "ALTER ONLINE TABLE shop.t ROW_FORMAT=DYNAMIC, ALGORITHM=INPLACE, LOCK=NONE",
            "ALTER TABLE t DEFAULT CHARSET = utf8mb4",
            "ALTER TABLE t FORCE",
        ] {
            assert!(only(sql), "{sql}");
        }
        for sql in [
            "ALTER TABLE t ADD COLUMN c INT",
            "ALTER TABLE t COMMENT 'x', DROP COLUMN c",
            "ALTER TABLE t CONVERT TO CHARACTER SET latin1",
            "ALTER TABLE t",
            "CREATE TABLE t (id INT) COMMENT 'x'",
            "ALTER TABLE `open COMMENT 'x'",
        ] {
            assert!(!only(sql), "{sql}");
        }
    }
}
