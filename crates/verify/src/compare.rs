//! Row-by-row comparison of one chunk: the source's rows (what the project promises) against
//! the destination's, matched by key. Rows are canonical cells, so equality is exact.

use std::collections::HashMap;

use sluice_core::verify::Cell;

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The source has it, the destination does not.
    Missing,
    /// The destination has it, the source does not.
    Extra,
    /// Both have it, with different values.
    Different,
}

impl Kind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Different => "different",
        }
    }
}

/// One row that differs: its key, and for [`Kind::Different`] the columns that differ
/// (indexes into the chunk's columns) with the source's row to correct from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// How.
    pub kind: Kind,
    /// The key cells.
    pub key: Vec<Cell>,
    /// Differing columns (Different only).
    pub columns: Vec<usize>,
    /// The source row (Missing and Different).
    pub source: Option<Vec<Cell>>,
}

/// The differences between `source` and `dest` rows whose first `key_len` cells are the key.
pub fn compare(source: &[Vec<Cell>], dest: &[Vec<Cell>], key_len: usize) -> Vec<Diff> {
    let key = |r: &[Cell]| r[..key_len.min(r.len())].to_vec();
    let mut at: HashMap<Vec<Cell>, &Vec<Cell>> = dest.iter().map(|r| (key(r), r)).collect();
    let mut out = Vec::new();
    for s in source {
        let k = key(s);
        match at.remove(&k) {
            None => out.push(Diff {
                kind: Kind::Missing,
                key: k,
                columns: Vec::new(),
                source: Some(s.clone()),
            }),
            Some(d) if d != s => out.push(Diff {
                kind: Kind::Different,
                key: k,
                columns: (0..s.len()).filter(|&i| s.get(i) != d.get(i)).collect(),
                source: Some(s.clone()),
            }),
            Some(_) => {}
        }
    }
    // What is left at the destination has no source row; in the destination's key order.
    for d in dest {
        let k = key(d);
        if at.remove(&k).is_some() {
            out.push(Diff {
                kind: Kind::Extra,
                key: k,
                columns: Vec::new(),
                source: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[Option<&str>]) -> Vec<Cell> {
        cells
            .iter()
            .map(|c| match c {
                None => Cell::Null,
                Some(t) => Cell::Text((*t).into()),
            })
            .collect()
    }

    #[test]
    fn missing_extra_and_different_rows_are_told_apart_by_key() {
        let src = vec![
            row(&[Some("1"), Some("61")]),
            row(&[Some("2"), Some("62")]),
            row(&[Some("3"), None]),
            row(&[Some("4"), Some("")]),
        ];
        let dst = vec![
            row(&[Some("1"), Some("61")]),
            row(&[Some("3"), Some("")]),
            row(&[Some("4"), Some("")]),
            row(&[Some("9"), Some("69")]),
        ];
        let d = compare(&src, &dst, 1);
        let kinds: Vec<(Kind, String)> = d
            .iter()
            .map(|x| {
                (
                    x.kind,
                    x.key[0].shown(sluice_core::verify::CellKind::Number),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::Missing, "2".to_string()),
                (Kind::Different, "3".to_string()),
                (Kind::Extra, "9".to_string()),
            ]
        );
        // NULL is not the empty string.
        assert_eq!(d[1].columns, [1]);
    }

    #[test]
    fn equal_chunks_have_no_difference() {
        let rows = vec![row(&[Some("1"), Some("a")]), row(&[Some("2"), None])];
        assert!(compare(&rows, &rows, 1).is_empty());
        assert!(compare(&[], &[], 1).is_empty());
    }
}
