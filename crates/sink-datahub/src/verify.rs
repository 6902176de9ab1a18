//! The DataHub destination's side of a verification: the latest state per key of a table,
//! rebuilt from its topic. Every shard of the topic (closed parents before their children, as
//! their ids order them) is read from its oldest record to the last one there when it is read.
//! The rule of which record is a key's state is `sluice_mq::state`'s: the source sequence (the
//! `sluice_sequence` field of a TUPLE record, the `sluice.sequence` attribute of a BLOB one),
//! then the shard and the record's place in it.
//!
//! TUPLE records are read by the type map (docs/DATAHUB.md) back to the source's canonical
//! text: an `A` image puts the row, a `delete` removes it, a `B` image of an update changes
//! nothing (its `A` follows). BLOB records are read in the formats of `sluice_mq::state::READABLE`.

use std::collections::HashMap;

use sluice_core::verify::{Cell, CellKind, Latest, StateSide, VerifyColumn, VerifyError};
use sluice_core::{TableId, Value};
use sluice_format::text::{value_text, BytesAs};
use sluice_mq::state::{hex, image, is_text, readable, Image};

use base64::Engine;

use crate::client::{schema_of, CallError, Client};
use crate::{DatahubSettings, RecordType};

/// A DataHub topic's state, read with a client of its own.
pub struct DatahubState {
    settings: DatahubSettings,
    client: Client,
    /// Per table, the record each shard's next read starts at.
    next: HashMap<TableId, HashMap<String, i64>>,
}

impl DatahubState {
    /// The side for `settings` (a BLOB topic's format must be one of `sluice_mq::state::READABLE`).
    pub fn new(settings: &DatahubSettings) -> Result<Self, VerifyError> {
        let c = &settings.config;
        if let (RecordType::Blob, Some(f)) = (c.record_type, &c.format) {
            readable("DataHub BLOB", &f.name).map_err(VerifyError::Definite)?;
        }
        Ok(Self {
            client: Client::new(c.account.clone(), c.protocol, c.compression, c.timeout),
            settings: settings.clone(),
            next: HashMap::new(),
        })
    }
}

fn call_err(what: String) -> impl Fn(CallError) -> VerifyError {
    move |e| {
        if e.is_transient() {
            VerifyError::Unavailable(format!("datahub: {what}: {e}"))
        } else {
            VerifyError::Definite(format!("datahub: {what}: {e}"))
        }
    }
}

/// A TUPLE field's text as the cell of `col` (docs/DATAHUB.md, the type map, read back).
pub fn tuple_cell(v: Option<&[u8]>, col: &VerifyColumn) -> Result<Cell, String> {
    let Some(v) = v else { return Ok(Cell::Null) };
    let text = std::str::from_utf8(v).map_err(|e| format!("column {}: {e}", col.name))?;
    Ok(Cell::Text(match col.kind {
        CellKind::Temporal if col.base_type() == "timestamp" => {
            let us: i64 = text
                .parse()
                .map_err(|e| format!("column {}: {text:?} is not microseconds: {e}", col.name))?;
            let fsp = col
                .column_type
                .split_once('(')
                .and_then(|(_, r)| r.trim_end_matches(')').parse::<u8>().ok())
                .unwrap_or(0);
            let ts = Value::Timestamp {
                seconds: us.div_euclid(1_000_000),
                micros: us.rem_euclid(1_000_000) as u32,
                fsp,
            };
            value_text(&ts, BytesAs::Base64).unwrap_or_default()
        }
        CellKind::Bytes if is_text(col) => hex(text.as_bytes()),
        CellKind::Bytes => hex(&base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("column {}: not base64: {e}", col.name))?),
        _ => text.to_string(),
    }))
}

impl StateSide for DatahubState {
    fn read(
        &mut self,
        to: &TableId,
        columns: &[VerifyColumn],
        key_len: usize,
        latest: &mut Latest,
    ) -> Result<(), VerifyError> {
        let c = &self.settings.config;
        let topic = c.routing.topics.topic(to);
        let what = format!("topic {}/{topic} (of {}.{})", c.project, to.db, to.table);
        let t = self
            .client
            .topic(&c.project, &topic)
            .map_err(call_err(what.clone()))?
            .ok_or_else(|| VerifyError::Definite(format!("datahub: {what} does not exist")))?;
        let tuple = matches!(c.record_type, RecordType::Tuple);
        let format = c.format.as_ref().map_or("oms", |f| f.name.as_str());
        // Where each TUPLE field is (names compared as DataHub does, without case).
        let fields: Vec<String> = if tuple {
            schema_of(&t)
                .ok_or_else(|| VerifyError::Definite(format!("datahub: {what} has no schema")))?
                .fields
                .into_iter()
                .map(|f| f.name.to_ascii_lowercase())
                .collect()
        } else {
            Vec::new()
        };
        let at = |name: &str| -> Result<usize, VerifyError> {
            let n = name.to_ascii_lowercase();
            fields.iter().position(|f| *f == n).ok_or_else(|| {
                VerifyError::Definite(format!("datahub: {what} has no field {name}"))
            })
        };
        let (op_at, seq_at, image_at, col_at) = if tuple {
            (
                at(&c.meta.op)?,
                at(&c.meta.sequence)?,
                at(&c.meta.image)?,
                columns
                    .iter()
                    .map(|col| at(&col.name))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else {
            (0, 0, 0, Vec::new())
        };
        let mut shards = self
            .client
            .shards(&c.project, &topic)
            .map_err(call_err(what.clone()))?;
        shards.sort_by_key(|s| s.shard_id.parse::<u64>().unwrap_or(u64::MAX));
        let next = self.next.entry(to.clone()).or_default();
        for (n, shard) in shards.iter().enumerate() {
            let from = next.get(&shard.shard_id).copied();
            let records = self
                .client
                .records(&c.project, &topic, &shard.shard_id, from)
                .map_err(call_err(format!("{what} shard {}", shard.shard_id)))?;
            for (i, r) in records.iter().enumerate() {
                let place = (n as i64, r.sequence.unwrap_or(from.unwrap_or(0) + i as i64));
                next.insert(shard.shard_id.clone(), place.1 + 1);
                let bad = |e: String| {
                    VerifyError::Definite(format!(
                        "datahub: {what} shard {} record {}: {e}",
                        shard.shard_id, place.1
                    ))
                };
                let field = |i: usize| r.data.data.get(i).and_then(|f| f.value.as_deref());
                let (seq, image) = if tuple {
                    let text = |i| field(i).map(|v| String::from_utf8_lossy(v).into_owned());
                    let op = text(op_at).unwrap_or_default();
                    let image = text(image_at).unwrap_or_default();
                    let row = col_at
                        .iter()
                        .zip(columns)
                        .map(|(&i, col)| tuple_cell(field(i), col))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(bad)?;
                    let image = match (op.as_str(), image.as_str()) {
                        ("delete", _) => Image::Delete(row),
                        (_, "A") => Image::Put(row),
                        _ => continue,
                    };
                    (text(seq_at).and_then(|s| s.parse().ok()), image)
                } else {
                    let attr = |k: &str| {
                        r.attributes
                            .as_ref()
                            .and_then(|a| a.attributes.iter().find(|p| p.key == k))
                            .map(|p| p.value.as_str())
                    };
                    if matches!(c.routing.topics, sluice_mq::TopicMap::Single(_))
                        && (attr("sluice.db") != Some(&to.db)
                            || attr("sluice.table") != Some(&to.table))
                    {
                        continue;
                    }
                    let Some(image) =
                        image(format, field(0).unwrap_or_default(), columns).map_err(bad)?
                    else {
                        continue;
                    };
                    (attr("sluice.sequence").and_then(|s| s.parse().ok()), image)
                };
                latest.offer(seq, place, image, key_len);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_fields_read_back_as_the_sources_text() {
        let ts = VerifyColumn::new("t", "timestamp(3)", None);
        assert_eq!(
            tuple_cell(Some(b"1714550400250000"), &ts),
            Ok(Cell::Text("2024-05-01 08:00:00.250".into()))
        );
        let s = VerifyColumn::new("s", "varchar(5)", Some("utf8mb4"));
        assert_eq!(
            tuple_cell(Some("é".as_bytes()), &s),
            Ok(Cell::Text("C3A9".into()))
        );
        let b = VerifyColumn::new("b", "varbinary(5)", Some("binary"));
        assert_eq!(tuple_cell(Some(b"AP8="), &b), Ok(Cell::Text("00FF".into())));
        let d = VerifyColumn::new("d", "decimal(10,2)", None);
        assert_eq!(tuple_cell(Some(b"1.50"), &d), Ok(Cell::Text("1.50".into())));
        assert_eq!(tuple_cell(None, &d), Ok(Cell::Null));
    }
}
