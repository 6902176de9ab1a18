//! Routing: which changes of the source reach the destination, and under which names.
//!
//! Invariant: a change is routed by the rules alone (no state), so a replay after a restart
//! routes exactly as the first pass did.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;

use sluice_core::{Event, Op, TableId, TableSchema};

pub mod filter;
pub use filter::RowFilter;

/// A `db.table` pattern with `*` wildcards (`shop*.order_*`, `*.*`, `shop.orders`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    db: String,
    table: String,
}

fn wild(pattern: &str, s: &str) -> bool {
    // Classic two-pointer glob with `*` only.
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while si < s.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Pattern {
    /// Parses `db.table` (`db` alone means every table of it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (db, table) = match text.split_once('.') {
            Some((d, t)) => (d, t),
            None => (text, "*"),
        };
        if db.is_empty() || table.is_empty() {
            return Err(format!("{text:?} is not a db.table pattern"));
        }
        Ok(Self {
            db: db.to_string(),
            table: table.to_string(),
        })
    }

    /// Whether the table matches.
    pub fn matches(&self, t: &TableId) -> bool {
        wild(&self.db, &t.db) && wild(&self.table, &t.table)
    }

    /// The database part, when it has no wildcard (to list a database's tables).
    pub fn db(&self) -> &str {
        &self.db
    }
}

/// The routing rules of a project.
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// Tables included (any match).
    pub include: Vec<Pattern>,
    /// Tables excluded (any match wins over include).
    pub exclude: Vec<Pattern>,
    /// `db.table` -> new `db.table` at the destination.
    pub rename: HashMap<TableId, TableId>,
    /// Per table (source name): the columns to deliver, in the given order of the table.
    /// Key columns must be among them (checked when the project is loaded).
    pub columns: HashMap<TableId, Vec<String>>,
    /// Row filters: the first pattern that matches a table gives its condition.
    pub filters: Vec<(Pattern, RowFilter)>,
    /// Row operations to deliver.
    pub ops: Vec<Op>,
    /// Deliver DDL.
    pub ddl: bool,
}

impl Router {
    /// Whether a table is selected.
    pub fn selects(&self, t: &TableId) -> bool {
        self.include.iter().any(|p| p.matches(t)) && !self.exclude.iter().any(|p| p.matches(t))
    }

    fn renamed(&self, schema: &Arc<TableSchema>) -> Arc<TableSchema> {
        match self.rename.get(&schema.id) {
            None => schema.clone(),
            Some(to) => {
                let mut s = (**schema).clone();
                s.id = to.clone();
                Arc::new(s)
            }
        }
    }

    /// The row filter of a table, if any.
    pub fn filter_for(&self, t: &TableId) -> Option<&RowFilter> {
        self.filters
            .iter()
            .find(|(p, _)| p.matches(t))
            .map(|(_, f)| f)
    }

    /// The event as the destination should see it, or `None` when it is not delivered.
    /// Begin/Commit/Heartbeat pass through untouched. An error means a row filter cannot be
    /// evaluated on this row (it names a column the table does not have).
    ///
    /// With a row filter, an update is judged on both images: both pass -> the update; only
    /// the after image -> an insert of it (the row enters the selection); only the before
    /// image -> a delete of it (the row leaves); neither -> nothing. So a destination rebuilt
    /// from the messages holds exactly the source rows that pass.
    pub fn route(&self, e: Event) -> Result<Option<Event>, String> {
        Ok(match e {
            Event::Row(mut r) => {
                if !self.selects(&r.table.id) {
                    return Ok(None);
                }
                if let Some(f) = self.filter_for(&r.table.id) {
                    let judge = |img: &Option<Vec<sluice_core::Value>>| match img {
                        Some(v) => f.passes(&r.table, v),
                        None => Ok(false),
                    };
                    let (before, after) = (judge(&r.before)?, judge(&r.after)?);
                    match (r.op, before, after) {
                        (Op::Insert, _, false) | (Op::Delete, false, _) => return Ok(None),
                        (Op::Update, false, false) => return Ok(None),
                        (Op::Update, false, true) => {
                            r.op = Op::Insert;
                            r.before = None;
                        }
                        (Op::Update, true, false) => {
                            r.op = Op::Delete;
                            r.after = None;
                        }
                        _ => {}
                    }
                }
                if !self.ops.contains(&r.op) {
                    return Ok(None);
                }
                if let Some(keep) = self.columns.get(&r.table.id) {
                    project(&mut r, keep);
                }
                r.table = self.renamed(&r.table);
                Some(Event::Row(r))
            }
            Event::Ddl(mut d) => {
                if !self.ddl {
                    return Ok(None);
                }
                match &d.table {
                    Some(t) if self.selects(t) => {
                        d.table = Some(self.rename.get(t).cloned().unwrap_or_else(|| t.clone()));
                        Some(Event::Ddl(d))
                    }
                    _ => None,
                }
            }
            other => Some(other),
        })
    }
}

/// Keeps only the `keep` columns (by name, case-insensitive) of a row and its schema.
fn project(r: &mut sluice_core::RowChange, keep: &[String]) {
    let idx: Vec<usize> = r
        .table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| keep.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
        .map(|(i, _)| i)
        .collect();
    let mut schema = (*r.table).clone();
    schema.columns = idx
        .iter()
        .filter_map(|&i| r.table.columns.get(i).cloned())
        .collect();
    schema.primary_key = r
        .table
        .primary_key
        .iter()
        .filter_map(|k| idx.iter().position(|i| i == k))
        .collect();
    let pick = |img: &mut Option<Vec<sluice_core::Value>>| {
        if let Some(values) = img.take() {
            *img = Some(idx.iter().filter_map(|&i| values.get(i).cloned()).collect());
        }
    };
    pick(&mut r.before);
    pick(&mut r.after);
    r.table = Arc::new(schema);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_include_and_exclude() {
        let r = Router {
            include: vec![
                Pattern::parse("shop*.order_*").expect("p"),
                Pattern::parse("crm").expect("p"),
            ],
            exclude: vec![Pattern::parse("shop_test.*").expect("p")],
            ..Router::default()
        };
        let t = TableId::new;
        assert!(r.selects(&t("shop", "order_1")));
        assert!(r.selects(&t("shop_eu", "order_")));
        assert!(!r.selects(&t("shop", "orders")));
        assert!(!r.selects(&t("shop_test", "order_1")));
        assert!(r.selects(&t("crm", "anything")));
        assert!(!r.selects(&t("crmx", "a")));
        assert!(wild("a*b*c", "aXXbYc") && !wild("a*b*c", "aXXbY"));
    }
}
