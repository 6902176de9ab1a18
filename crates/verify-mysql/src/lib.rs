//! A [`VerifySide`] on a MySQL-family server, used by the MySQL source and by the database
//! destination alike, so both render values with the same SQL.
//!
//! Every value is rendered by the server in the canonical form of [`Cell`]: numbers and
//! temporals by `CAST(c AS CHAR)` (the session in UTC, so a TIMESTAMP is its instant), BIT as
//! its unsigned value, everything else as `HEX(c)` (the exact bytes). A row's checksum is
//! `CRC32` of `CONCAT_WS(',', ISNULL(c1)…, e1…)`: the NULL flags make a NULL differ from an empty
//! string, and no rendered value holds a comma. A chunk's digest is the row count with the sum
//! and the XOR of its rows' checksums, order-independent.
//!
//! Key ranges are `(k1, k2, …) > after AND <= upto` written out column by column, with string
//! keys given in their column's character set so that the server orders and compares them by
//! the column's collation, exactly as its `ORDER BY` does.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sluice_core::tls::Tls;
use sluice_core::verify::{
    Cell, CellKind, ChunkQuery, Digest, Fix, VerifyColumn, VerifyError, VerifySide,
};
use sluice_core::SecretUrl;
use sluice_mysql_client::Endpoint;

/// The dialect name of this side (digests compare between equal dialects).
pub const DIALECT: &str = "mysql";

/// `name` quoted as an identifier.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn table(t: &sluice_core::TableId) -> String {
    format!("{}.{}", ident(&t.db), ident(&t.table))
}

/// How the server renders column `col` (text as UTF-8 with `utf8_text`).
fn expr(col: &VerifyColumn, utf8_text: bool) -> String {
    let c = ident(&col.name);
    let text = col
        .charset
        .as_deref()
        .is_some_and(|cs| !cs.is_empty() && cs != "binary");
    match col.kind {
        // Messages carry a spatial value as its WKB, without the SRID the server stores.
        CellKind::Bytes if utf8_text && col.is_spatial() => format!("HEX(ST_AsWKB({c}))"),
        CellKind::Number | CellKind::Temporal => format!("CAST({c} AS CHAR)"),
        CellKind::Bits => format!("CAST({c} + 0 AS CHAR)"),
        CellKind::Bytes if utf8_text && text => format!("HEX(CONVERT({c} USING utf8mb4))"),
        CellKind::Bytes => format!("HEX({c})"),
    }
}

/// The literal of a key value for column `i` of `q` (strings in the column's character set).
fn key_literal(q: &ChunkQuery<'_>, i: usize, v: &Cell) -> String {
    let col = &q.columns[i];
    match (v, col.kind, &col.charset) {
        // Text read as UTF-8 (from messages) is converted to the column's character set.
        (Cell::Text(t), CellKind::Bytes, Some(cs))
            if !cs.is_empty() && cs != "binary" && q.utf8_text =>
        {
            format!("CONVERT(_utf8mb4 X'{t}' USING {cs})")
        }
        (Cell::Text(t), CellKind::Bytes, Some(cs)) if !cs.is_empty() && cs != "binary" => {
            format!("_{cs} X'{t}'")
        }
        _ => v.literal(col.kind),
    }
}

/// A condition true for the rows whose key (the key columns of `q`) is one of `keys`.
pub fn keys_condition(q: &ChunkQuery<'_>, keys: &[Vec<Cell>]) -> String {
    if keys.is_empty() {
        return "1 = 0".into();
    }
    keys.iter()
        .map(|k| format!("({})", key_eq(q, k)))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// `key > after` (`strict`) or `key <= upto`, column by column.
fn compare(q: &ChunkQuery<'_>, key: &[Cell], after: bool) -> String {
    let n = q.key_len.min(key.len());
    let mut ors = Vec::new();
    for i in 0..n {
        let mut ands: Vec<String> = (0..i)
            .map(|j| {
                let c = ident(&q.columns[j].name);
                match &key[j] {
                    Cell::Null => format!("{c} IS NULL"),
                    v => format!("{c} = {}", key_literal(q, j, v)),
                }
            })
            .collect();
        let c = ident(&q.columns[i].name);
        let lit = key_literal(q, i, &key[i]);
        ands.push(format!("{c} {} {lit}", if after { ">" } else { "<" }));
        ors.push(format!("({})", ands.join(" AND ")));
    }
    if !after {
        // <= upto: < on some prefix, or equal on all.
        let all: Vec<String> = (0..n)
            .map(|j| {
                format!(
                    "{} = {}",
                    ident(&q.columns[j].name),
                    key_literal(q, j, &key[j])
                )
            })
            .collect();
        ors.push(format!("({})", all.join(" AND ")));
    }
    format!("({})", ors.join(" OR "))
}

fn range(q: &ChunkQuery<'_>, with_filter: bool) -> String {
    let mut w = vec!["1 = 1".to_string()];
    if let Some(a) = q.after {
        w.push(compare(q, a, true));
    }
    if let Some(u) = q.upto {
        w.push(compare(q, u, false));
    }
    if let (true, Some(f)) = (with_filter, q.filter) {
        w.push(format!("({f})"));
    }
    w.join(" AND ")
}

fn order(q: &ChunkQuery<'_>) -> String {
    q.columns[..q.key_len]
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn select_list(q: &ChunkQuery<'_>) -> String {
    q.columns
        .iter()
        .map(|c| expr(c, q.utf8_text))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key equality of one row.
fn key_eq(q: &ChunkQuery<'_>, key: &[Cell]) -> String {
    (0..q.key_len.min(key.len()))
        .map(|j| {
            let c = ident(&q.columns[j].name);
            match &key[j] {
                Cell::Null => format!("{c} IS NULL"),
                v => format!("{c} = {}", key_literal(q, j, v)),
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The statement that makes the destination's row equal to the source's.
pub fn correction(q: &ChunkQuery<'_>, fix: Fix<'_>) -> String {
    let t = table(q.table);
    match fix {
        Fix::Insert(row) => format!(
            "INSERT INTO {t} ({}) VALUES ({})",
            q.columns
                .iter()
                .map(|c| ident(&c.name))
                .collect::<Vec<_>>()
                .join(", "),
            row.iter()
                .enumerate()
                .map(|(i, v)| key_literal(q, i, v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Fix::Delete(key) => format!("DELETE FROM {t} WHERE {}", key_eq(q, key)),
        Fix::Update(row, cols) => format!(
            "UPDATE {t} SET {} WHERE {}",
            cols.iter()
                .filter_map(|&i| Some(format!(
                    "{} = {}",
                    ident(&q.columns.get(i)?.name),
                    key_literal(q, i, row.get(i)?)
                )))
                .collect::<Vec<_>>()
                .join(", "),
            key_eq(q, row)
        ),
    }
}

/// A connection to one server, in UTC.
pub struct MysqlSide {
    rt: tokio::runtime::Runtime,
    conn: Conn,
    /// Where it connects (for messages; prints without the password).
    url: SecretUrl,
}

impl std::fmt::Debug for MysqlSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSide").field("url", &self.url).finish()
    }
}

fn classify(what: &str, e: mysql_async::Error) -> VerifyError {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => {
            VerifyError::Unavailable(format!("{what}: {e}"))
        }
        e => VerifyError::Definite(format!("{what}: {e}")),
    }
}

impl MysqlSide {
    /// Connects to `url` (`mysql://user:pass@host:port`) with `tls` (None: as the URL says).
    pub fn connect(url: &SecretUrl, tls: Option<&Tls>) -> Result<Self, VerifyError> {
        let endpoint = Endpoint::new(url, tls).map_err(VerifyError::Definite)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| VerifyError::Definite(format!("start a runtime: {e}")))?;
        let conn = rt
            .block_on(async {
                let mut c = endpoint.connect().await?;
                // UTC, so a TIMESTAMP renders as its instant; group_concat is not used.
                c.query_drop("SET time_zone = '+00:00'").await?;
                Ok::<_, mysql_async::Error>(c)
            })
            .map_err(|e| classify(&format!("cannot connect to {url} to verify"), e))?;
        Ok(Self {
            rt,
            conn,
            url: url.clone(),
        })
    }

    fn query(&mut self, sql: &str) -> Result<Vec<Row>, VerifyError> {
        let conn = &mut self.conn;
        self.rt
            .block_on(conn.query::<Row, _>(sql))
            .map_err(|e| classify(&format!("verify on {}", self.url), e))
    }
}

/// A row's cells (every column a string or NULL, as the select list renders them).
fn cells(row: Row) -> Vec<Cell> {
    row.unwrap()
        .into_iter()
        .map(|v| match v {
            mysql_async::Value::NULL => Cell::Null,
            mysql_async::Value::Bytes(b) => Cell::Text(String::from_utf8_lossy(&b).into_owned()),
            other => Cell::Text(other.as_sql(true).trim_matches('\'').to_string()),
        })
        .collect()
}

fn number(row: &Row, i: usize) -> u64 {
    match row.as_ref(i) {
        Some(mysql_async::Value::Bytes(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.split('.').next()?.parse().ok())
            .unwrap_or(0),
        Some(mysql_async::Value::UInt(u)) => *u,
        Some(mysql_async::Value::Int(i)) => u64::try_from(*i).unwrap_or(0),
        _ => 0,
    }
}

impl VerifySide for MysqlSide {
    fn dialect(&self) -> &'static str {
        DIALECT
    }

    fn boundary(&mut self, q: &ChunkQuery<'_>, n: usize) -> Result<Option<Vec<Cell>>, VerifyError> {
        let keys = q.columns[..q.key_len]
            .iter()
            .map(|c| expr(c, q.utf8_text))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {keys} FROM {} WHERE {} ORDER BY {} LIMIT 1 OFFSET {}",
            table(q.table),
            range(
                &ChunkQuery {
                    upto: None,
                    ..q.clone()
                },
                false
            ),
            order(q),
            n.saturating_sub(1)
        );
        Ok(self.query(&sql)?.into_iter().next().map(cells))
    }

    fn digest(&mut self, q: &ChunkQuery<'_>) -> Result<Digest, VerifyError> {
        let flags = q
            .columns
            .iter()
            .map(|c| format!("ISNULL({})", ident(&c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM(h), 0), COALESCE(BIT_XOR(h), 0) FROM \
             (SELECT CRC32(CONCAT_WS(',', {flags}, {})) AS h FROM {} WHERE {}) AS x",
            select_list(q),
            table(q.table),
            range(q, true)
        );
        let rows = self.query(&sql)?;
        let row = rows
            .first()
            .ok_or_else(|| VerifyError::Definite("a digest query returned no row".into()))?;
        Ok(Digest {
            rows: number(row, 0),
            sum: number(row, 1),
            xor: number(row, 2),
        })
    }

    fn rows(&mut self, q: &ChunkQuery<'_>) -> Result<Vec<Vec<Cell>>, VerifyError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {}",
            select_list(q),
            table(q.table),
            range(q, true),
            order(q)
        );
        Ok(self.query(&sql)?.into_iter().map(cells).collect())
    }

    fn rows_by_key(
        &mut self,
        q: &ChunkQuery<'_>,
        keys: &[Vec<Cell>],
    ) -> Result<Vec<Vec<Cell>>, VerifyError> {
        let mut out = Vec::new();
        for part in keys.chunks(500) {
            let any = keys_condition(q, part);
            let filter = q.filter.map(|f| format!(" AND ({f})")).unwrap_or_default();
            let sql = format!(
                "SELECT {} FROM {} WHERE ({any}){filter} ORDER BY {}",
                select_list(q),
                table(q.table),
                order(q)
            );
            out.extend(self.query(&sql)?.into_iter().map(cells));
        }
        Ok(out)
    }

    fn correction(&self, q: &ChunkQuery<'_>, fix: Fix<'_>) -> String {
        correction(q, fix)
    }

    fn apply(&mut self, statements: &[String]) -> Result<(), VerifyError> {
        let conn = &mut self.conn;
        let url = self.url.clone();
        self.rt.block_on(async {
            let mut tx = conn
                .start_transaction(mysql_async::TxOpts::default())
                .await
                .map_err(|e| classify(&format!("correct {url}"), e))?;
            for s in statements {
                tx.query_drop(s)
                    .await
                    .map_err(|e| classify(&format!("correct {url} ({s})"), e))?;
            }
            tx.commit()
                .await
                .map_err(|e| classify(&format!("correct {url}"), e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::TableId;

    fn q<'a>(t: &'a TableId, cols: &'a [VerifyColumn]) -> ChunkQuery<'a> {
        ChunkQuery {
            table: t,
            columns: cols,
            key_len: 2,
            after: None,
            upto: None,
            filter: Some("a > 1"),
            utf8_text: false,
        }
    }

    #[test]
    fn a_two_column_key_range_is_written_column_by_column_in_the_columns_charset() {
        let t = TableId::new("d", "t`x");
        let cols = [
            VerifyColumn::new("a", "int", None),
            VerifyColumn::new("s", "varchar(10)", Some("latin1")),
            VerifyColumn::new("v", "datetime", None),
        ];
        let after = [Cell::Text("1".into()), Cell::Text("6162".into())];
        let upto = [Cell::Text("3".into()), Cell::Text("7A".into())];
        let q = ChunkQuery {
            after: Some(&after),
            upto: Some(&upto),
            ..q(&t, &cols)
        };
        assert_eq!(
            range(&q, true),
            "1 = 1 AND ((`a` > 1) OR (`a` = 1 AND `s` > _latin1 X'6162')) AND \
             ((`a` < 3) OR (`a` = 3 AND `s` < _latin1 X'7A') OR (`a` = 3 AND `s` = _latin1 X'7A')) AND (a > 1)"
        );
        assert_eq!(
            correction(
                &q,
                Fix::Update(
                    &[
                        Cell::Text("3".into()),
                        Cell::Text("7A".into()),
                        Cell::Text("2024-01-01".into())
                    ],
                    &[2]
                )
            ),
            "UPDATE `d`.`t``x` SET `v` = '2024-01-01' WHERE `a` = 3 AND `s` = _latin1 X'7A'"
        );
        assert_eq!(
            correction(
                &q,
                Fix::Insert(&[Cell::Text("3".into()), Cell::Null, Cell::Null])
            ),
            "INSERT INTO `d`.`t``x` (`a`, `s`, `v`) VALUES (3, NULL, NULL)"
        );
    }
}
