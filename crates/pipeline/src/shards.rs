//! Logical tables: one table whose rows live in many physical tables over several MySQL-family
//! instances (`db_{00..15}.orders_{0000..0127}`), synchronized into one destination table.
//!
//! This module reads the topology (instances, their physical tables and the logical table of
//! each). Each physical instance runs as a part of the project (plan.rs; `PROJECT.INSTANCE` in
//! the metadata store) with its own reader and full sync; the project's checkpoint is the
//! vector of the parts' positions, stored as one row that each part updates in place. All parts
//! write through the database destination into the same destination tables, which record each
//! row's shard so a primary key found in two shards is reported instead of silently merged.

use sluice_core::TableId;

/// One physical instance of a sharded source.
#[derive(Debug, Clone)]
pub struct ShardInstance {
    /// Name (unique in the project).
    pub name: String,
    /// The instance as a source.
    pub source: std::sync::Arc<dyn crate::connect::SourceSpec>,
    /// Our replica id on this instance.
    pub server_id: u32,
    /// Its physical tables and the logical table each belongs to.
    pub tables: Vec<(TableId, TableId)>,
}

/// Expands one name pattern: `orders_{0000..0127}` (zero padding from the first bound's
/// digits), or ShardingSphere's inline forms `t_order_${0..3}` and `ds_${['a', 'b']}`;
/// several ranges multiply.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(b) = pattern.find('{') else {
        return Ok(vec![pattern.to_string()]);
    };
    // `${` is ShardingSphere's spelling of the same thing.
    let (start, inner) = if b > 0 && pattern.as_bytes()[b - 1] == b'$' {
        (b - 1, b + 1)
    } else {
        (b, b + 1)
    };
    let close = pattern[inner..]
        .find('}')
        .map(|c| inner + c)
        .ok_or_else(|| format!("{pattern:?}: a range is not closed with }}"))?;
    let range = pattern[inner..close].trim();
    let rest = expand(&pattern[close + 1..])?;
    if let Some(list) = range.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        // A list of names or numbers: `['a', 'b']`, `[0, 1]`.
        let mut out = Vec::new();
        for item in list.split(',') {
            let item = item.trim().trim_matches(|c| c == '\'' || c == '"');
            if item.is_empty() {
                return Err(format!("{pattern:?}: an empty item in a list"));
            }
            for r in &rest {
                out.push(format!("{}{item}{r}", &pattern[..start]));
            }
        }
        return Ok(out);
    }
    let (lo, hi) = range.split_once("..").ok_or_else(|| {
        format!("{pattern:?}: a range is written {{FROM..TO}} (or ${{['a', 'b']}}, a list)")
    })?;
    let width = lo.len();
    let (a, b): (u64, u64) = (
        lo.parse()
            .map_err(|_| format!("{pattern:?}: {lo:?} is not a number"))?,
        hi.parse()
            .map_err(|_| format!("{pattern:?}: {hi:?} is not a number"))?,
    );
    if a > b || b - a > 100_000 {
        return Err(format!(
            "{pattern:?}: the range {a}..{b} is empty or too large"
        ));
    }
    let mut out = Vec::new();
    for n in a..=b {
        // Padding only when the bound was written with leading zeros (`{0000..0127}`).
        let num = if lo.starts_with('0') && width > 1 {
            format!("{n:0width$}")
        } else {
            n.to_string()
        };
        for r in &rest {
            out.push(format!("{}{num}{r}", &pattern[..start]));
        }
    }
    Ok(out)
}

/// Expands `db_pattern.table_pattern` into physical tables.
pub fn expand_tables(pattern: &str) -> Result<Vec<TableId>, String> {
    // The dot between database and table is the first one outside braces.
    let mut depth = 0;
    let mut split = None;
    for (i, c) in pattern.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '.' if depth == 0 => {
                split = Some(i);
                break;
            }
            _ => {}
        }
    }
    let at = split.ok_or_else(|| format!("{pattern:?} must be db_pattern.table_pattern"))?;
    let (dbs, tables) = (expand(&pattern[..at])?, expand(&pattern[at + 1..])?);
    Ok(dbs
        .iter()
        .flat_map(|d| {
            tables
                .iter()
                .map(move |t| TableId::new(d.clone(), t.clone()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_with_padding_and_shardingsphere_syntax() {
        assert_eq!(
            expand("orders_{0000..0002}").expect("ok"),
            vec!["orders_0000", "orders_0001", "orders_0002"]
        );
        assert_eq!(
            expand("t_order_${0..1}").expect("ok"),
            vec!["t_order_0", "t_order_1"]
        );
        assert_eq!(
            expand("a{0..1}b{8..9}").expect("ok"),
            vec!["a0b8", "a0b9", "a1b8", "a1b9"]
        );
        let t = expand_tables("db_{00..15}.orders_{0000..0127}").expect("ok");
        assert_eq!(t.len(), 16 * 128);
        assert_eq!(t[0], TableId::new("db_00", "orders_0000"));
        assert_eq!(t[t.len() - 1], TableId::new("db_15", "orders_0127"));
        let ss = expand_tables("ds_${0..1}.t_order_${0..3}").expect("ok");
        assert_eq!(ss.len(), 8);
        assert_eq!(
            expand("ds_${['a', \"b\"]}_${[0,1]}").expect("ok"),
            vec!["ds_a_0", "ds_a_1", "ds_b_0", "ds_b_1"]
        );
        assert!(expand("x${[a,,b]}").is_err());
        assert!(expand("x{3..1}").is_err());
        assert!(expand("x{1..").is_err());
        assert!(expand_tables("nodot").is_err());
    }
}
