//! How a batch is shared among the writer connections, and what each writer has applied.

use sluice_core::sink::{DeliveryItem, SinkError};
use sluice_core::{Event, Position, RowChange};

use crate::apply::{action_key, actions, Action};

/// One writer's part of a batch.
#[derive(Default)]
pub(crate) struct Share<'a> {
    /// Its actions on tables with a key, in source order, with their key text.
    pub(crate) acts: Vec<(String, Action<'a>)>,
    /// Rows of tables without a key (writer 0 only; see keyless.rs).
    pub(crate) raw: Vec<&'a RowChange>,
    /// The highest source sequence among them and that change's position.
    pub(crate) top: Option<(u64, &'a Position)>,
}

impl<'a> Share<'a> {
    fn reaches(&mut self, sequence: Option<u64>, pos: &'a Position) {
        if let Some(seq) = sequence {
            if self.top.is_none_or(|(s, _)| seq > s) {
                self.top = Some((seq, pos));
            }
        }
    }
}

/// The row changes of `items` shared over `applied.len()` writers by [`writer_for`] of each
/// key's text (made once: it picks the writer and merges the key's changes), leaving out what
/// each writer applied (`applied`, per writer); rows of tables without a key go to writer 0,
/// in order, skipped by its exact sequence `keyless_applied`.
pub(crate) fn split<'a>(
    items: &'a [DeliveryItem],
    applied: &[u64],
    keyless_applied: u64,
) -> Vec<Share<'a>> {
    let writers = applied.len().max(1);
    let mut shares: Vec<Share<'a>> = (0..writers).map(|_| Share::default()).collect();
    for item in items {
        let Event::Row(r) = &item.event else { continue };
        if r.table.primary_key.is_empty() {
            if item.sequence.is_some_and(|seq| seq <= keyless_applied) {
                continue;
            }
            shares[0].raw.push(r);
            shares[0].reaches(item.sequence, &r.pos);
            continue;
        }
        for a in actions(r) {
            let key = action_key(&a);
            let w = writer_for(&key, writers);
            if item
                .sequence
                .is_some_and(|seq| applied.get(w).is_some_and(|&done| seq <= done))
            {
                continue;
            }
            shares[w].acts.push((key, a));
            shares[w].reaches(item.sequence, &r.pos);
        }
    }
    shares
}

/// Whether parallel writers of one batch failed because of each other, which applying the
/// batch on one connection in source order cannot: a unique key collided (1062: writers
/// reordered changes of different keys, or two shards wrote one key at once), a deadlock
/// (1213), or a lock wait timeout (1205). A DELETE of many keys can scan a table whose
/// statistics are stale (a young table, a server just restarted) and lock rows of every
/// other writer; those writers then deadlock each other on every parallel attempt.
pub(crate) fn writers_collided(e: &SinkError) -> bool {
    let text = e.to_string();
    ["ERROR 1062 ", "ERROR 1213 ", "ERROR 1205 "]
        .iter()
        .any(|code| text.contains(code))
}

/// The writer of a key: FNV-1a of its text, so that the mapping is the same in every build
/// and run (the destination's per-writer checkpoint rows rely on it).
pub(crate) fn writer_for(key: &str, writers: usize) -> usize {
    (sluice_core::hash::fnv1a(key.as_bytes()) % writers.max(1) as u64) as usize
}

/// What each of `writers` writers has applied, from the destination's checkpoint rows
/// `(writer, sequence)`. Exact per writer only when every writer of this count has a row and
/// no other writer does. Otherwise every writer gets a floor: with another writer count a key
/// may now go to another writer, so only what all of them applied is skipped; and a writer
/// without a row has applied nothing (a crash can land between the writers' commits of one
/// batch), so then the floor is 0 and everything from the checkpoint is applied again,
/// idempotently.
pub(crate) fn applied_from_rows(rows: &[(u32, u64)], writers: usize) -> Vec<u64> {
    let writers = writers.max(1);
    let mut applied: Vec<Option<u64>> = vec![None; writers];
    let mut other_count = false;
    for &(w, seq) in rows {
        match applied.get_mut(w as usize) {
            Some(a) => *a = Some(seq),
            None => other_count = true,
        }
    }
    if !other_count {
        if let Some(exact) = applied.iter().copied().collect::<Option<Vec<u64>>>() {
            return exact;
        }
    }
    let floor = if applied.iter().any(Option::is_none) {
        0
    } else {
        rows.iter().map(|(_, s)| *s).min().unwrap_or(0)
    };
    vec![floor; writers]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_of_a_key_is_fnv1a_and_the_same_in_every_build() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the published test vector).
        assert_eq!(writer_for("a", 3), (0xaf63_dc4c_8601_ec8c_u64 % 3) as usize);
        assert_eq!(writer_for("", 3), (0xcbf2_9ce4_8422_2325_u64 % 3) as usize);
        assert_eq!(writer_for("anything", 1), 0);
    }

    #[test]
    fn applied_sequences_are_exact_only_when_every_writer_has_a_row() {
        // Every writer committed: exact.
        assert_eq!(applied_from_rows(&[(0, 9), (1, 7), (2, 8)], 3), [9, 7, 8]);
        // A crash after writer 0's commit, before the others' first: they applied nothing.
        assert_eq!(applied_from_rows(&[(0, 197)], 3), [0, 0, 0]);
        assert_eq!(applied_from_rows(&[(0, 5), (2, 6)], 3), [0, 0, 0]);
        // Fewer writers than before: only what every old writer applied.
        assert_eq!(applied_from_rows(&[(0, 9), (1, 7), (2, 8)], 2), [7, 7]);
        // More writers than before: the new one has no row, everything is applied again.
        assert_eq!(applied_from_rows(&[(0, 9), (1, 7)], 3), [0, 0, 0]);
        // A new project.
        assert_eq!(applied_from_rows(&[], 2), [0, 0]);
    }
}
