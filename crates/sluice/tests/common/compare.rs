//! Equality of a destination table with the union of source tables: the servers compute a
//! checksum per primary-key range on every side (row count and XOR of each row's CRC32; XOR
//! combines across shards), and rows are fetched and compared one by one only in the ranges
//! whose checksums differ.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;

/// Tables on one server.
pub struct Side {
    /// `host:port`, reached as root.
    pub addr: String,
    /// `db.table` names.
    pub tables: Vec<String>,
}

impl Side {
    pub fn new(addr: impl Into<String>, tables: Vec<String>) -> Side {
        Side {
            addr: addr.into(),
            tables,
        }
    }
}

/// What to compare: an integer key, the row's columns as SQL expressions, the range width.
pub struct Shape<'a> {
    pub key: &'a str,
    pub columns: &'a [&'a str],
    pub width: i64,
}

/// Per range: (rows, XOR of row CRC32s).
type Sums = BTreeMap<i64, (i64, i64)>;

/// A row rendered by the server: every column as hex text (NULL stays NULL).
type Row = Vec<Option<String>>;

/// The result of a comparison.
#[derive(Debug)]
pub struct Compared {
    /// Ranges compared (the union of both sides').
    pub ranges: usize,
    /// Rows at the destination.
    pub rows: i64,
    /// Ranges whose checksums differed.
    pub differing: Vec<i64>,
    /// Rows only at the destination (first 10), hex-rendered.
    pub only_destination: Vec<Row>,
    /// Rows only in the sources (first 10), hex-rendered.
    pub only_sources: Vec<Row>,
}

impl Compared {
    /// Equal, or an error naming the ranges and rows that differ.
    pub fn equal(&self, what: &str) -> Result<(), String> {
        if self.differing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{what}: {} of {} key ranges differ ({:?}...); rows only at the destination: {:?}; \
             only in the sources: {:?} (columns hex-encoded)",
            self.differing.len(),
            self.ranges,
            &self.differing[..self.differing.len().min(10)],
            self.only_destination,
            self.only_sources
        ))
    }
}

async fn connect(addr: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&format!(
        "mysql://root@{addr}"
    ))?)
    .await
}

/// The row as one string: hex of each column (so no separator can occur inside one), `N` for
/// NULL (hex never contains it).
fn row_text(shape: &Shape<'_>) -> String {
    let cols: Vec<String> = shape
        .columns
        .iter()
        .map(|c| format!("IFNULL(HEX({c}), 'N')"))
        .collect();
    format!("CONCAT_WS(',', {})", cols.join(", "))
}

async fn sums(side: &Side, shape: &Shape<'_>) -> Result<Sums, mysql_async::Error> {
    let mut c = connect(&side.addr).await?;
    let mut out = Sums::new();
    for t in &side.tables {
        let rows: Vec<(i64, i64, i64)> = c
            .query(format!(
                "SELECT {k} DIV {w}, COUNT(*), CAST(BIT_XOR(CRC32({row})) AS SIGNED) FROM {t} \
                 GROUP BY {k} DIV {w}",
                k = shape.key,
                w = shape.width,
                row = row_text(shape)
            ))
            .await?;
        for (range, n, x) in rows {
            let e = out.entry(range).or_insert((0, 0));
            e.0 += n;
            e.1 ^= x;
        }
    }
    let _ = c.disconnect().await;
    Ok(out)
}

async fn rows_in(
    side: &Side,
    shape: &Shape<'_>,
    range: i64,
) -> Result<Vec<Row>, mysql_async::Error> {
    let mut c = connect(&side.addr).await?;
    let cols: Vec<String> = shape.columns.iter().map(|c| format!("HEX({c})")).collect();
    let mut out = Vec::new();
    for t in &side.tables {
        let rows: Vec<mysql_async::Row> = c
            .query(format!(
                "SELECT {} FROM {t} WHERE {k} DIV {w} = {range}",
                cols.join(", "),
                k = shape.key,
                w = shape.width
            ))
            .await?;
        for r in rows {
            out.push(
                (0..shape.columns.len())
                    .map(|i| r.get::<Option<String>, _>(i).flatten())
                    .collect(),
            );
        }
    }
    let _ = c.disconnect().await;
    out.sort();
    Ok(out)
}

/// Compares `destination` with the union of `sources`.
pub async fn compare(
    destination: &Side,
    sources: &[Side],
    shape: &Shape<'_>,
) -> Result<Compared, mysql_async::Error> {
    let dest = sums(destination, shape).await?;
    let mut src = Sums::new();
    for s in sources {
        for (range, (n, x)) in sums(s, shape).await? {
            let e = src.entry(range).or_insert((0, 0));
            e.0 += n;
            e.1 ^= x;
        }
    }
    let mut ranges: Vec<i64> = dest.keys().chain(src.keys()).copied().collect();
    ranges.sort_unstable();
    ranges.dedup();
    let differing: Vec<i64> = ranges
        .iter()
        .copied()
        .filter(|r| dest.get(r) != src.get(r))
        .collect();
    let (mut only_destination, mut only_sources) = (Vec::new(), Vec::new());
    for &range in &differing {
        let at_dest = rows_in(destination, shape, range).await?;
        let mut at_src = Vec::new();
        for s in sources {
            at_src.extend(rows_in(s, shape, range).await?);
        }
        at_src.sort();
        only_destination.extend(at_dest.iter().filter(|r| !at_src.contains(r)).cloned());
        only_sources.extend(at_src.iter().filter(|r| !at_dest.contains(r)).cloned());
    }
    only_destination.truncate(10);
    only_sources.truncate(10);
    Ok(Compared {
        ranges: ranges.len(),
        rows: dest.values().map(|(n, _)| n).sum(),
        differing,
        only_destination,
        only_sources,
    })
}
