//! What is compared: one job per destination table, with its columns, key and the source
//! tables that make it (one, or for a logical table one physical table per shard).

use sluice_core::verify::{Cell, ChunkQuery, VerifyColumn};
use sluice_core::TableId;
use sluice_pipeline::{Project, SourceSpec};

use crate::{Options, VerifyRunError};

/// A source the project reads: the one source, or one instance of a sharded source.
pub(crate) struct SourceRef {
    /// The instance name (sharded sources).
    pub shard: Option<String>,
    /// Its source.
    pub spec: std::sync::Arc<dyn SourceSpec>,
}

/// The sources of `p`, in order (a job's parts refer to them by index).
pub(crate) fn sources(p: &Project) -> Vec<SourceRef> {
    if p.shards.is_empty() {
        return vec![SourceRef {
            shard: None,
            spec: p.source.clone(),
        }];
    }
    p.shards
        .iter()
        .map(|s| SourceRef {
            shard: Some(s.name.clone()),
            spec: s.source.clone(),
        })
        .collect()
}

/// The sources of `p` opened, in order, each with its instance name.
pub(crate) type Opened = Vec<(Option<String>, Box<dyn sluice_core::source::Source>)>;

/// Opens every source of `p` ([`sources`]).
pub(crate) fn open_sources(p: &Project) -> Result<Opened, VerifyRunError> {
    sources(p)
        .into_iter()
        .map(|r| {
            r.spec
                .open()
                .map(|s| (r.shard, s))
                .map_err(|e| VerifyRunError::Source(e.to_string()))
        })
        .collect()
}

/// One source table of a job.
pub(crate) struct Part {
    /// Index into [`sources`].
    pub source: usize,
    /// The table there.
    pub table: TableId,
}

/// What the workers share about one destination table.
pub(crate) struct Job {
    /// The table as the project names it: the source table, or the logical table.
    pub table: TableId,
    /// Its name at the destination.
    pub to: TableId,
    /// Key columns first, then the delivered ones.
    pub columns: Vec<VerifyColumn>,
    /// How many of `columns` are the key.
    pub key_len: usize,
    /// The row filter the source side applies.
    pub filter: Option<String>,
    /// The source tables that make it.
    pub parts: Vec<Part>,
}

impl Job {
    /// The query of `(after, upto]` on `table` (a source part's, or the destination's).
    pub fn query<'a>(
        &'a self,
        table: &'a TableId,
        after: Option<&'a [Cell]>,
        upto: Option<&'a [Cell]>,
        source: bool,
    ) -> ChunkQuery<'a> {
        ChunkQuery {
            table,
            columns: &self.columns,
            key_len: self.key_len,
            after,
            upto,
            filter: if source { self.filter.as_deref() } else { None },
            utf8_text: false,
        }
    }
}

/// The jobs of the tables `p` selects (and `opts.tables` keeps), from the source's catalog
/// (for a logical table, its first shard's).
pub(crate) fn jobs(p: &Project, opts: &Options) -> Result<Vec<Job>, VerifyRunError> {
    let src = |e: &dyn std::fmt::Display| VerifyRunError::Source(e.to_string());
    // (the project's name for it, destination name, parts)
    let mut wanted: Vec<(TableId, TableId, Vec<Part>)> = Vec::new();
    if p.shards.is_empty() {
        for s in sluice_pipeline::selection(p).map_err(|e| src(&e))? {
            wanted.push((
                s.table.clone(),
                s.to,
                vec![Part {
                    source: 0,
                    table: s.table,
                }],
            ));
        }
    } else {
        for (i, shard) in p.shards.iter().enumerate() {
            for (phys, logical) in &shard.tables {
                let to = p
                    .router
                    .rename
                    .get(logical)
                    .cloned()
                    .unwrap_or_else(|| logical.clone());
                let part = Part {
                    source: i,
                    table: phys.clone(),
                };
                match wanted.iter_mut().find(|w| &w.0 == logical) {
                    Some(w) => w.2.push(part),
                    None => wanted.push((logical.clone(), to, vec![part])),
                }
            }
        }
    }
    // One catalog connection per source, for every table's definition.
    let opened = sources(p)
        .iter()
        .map(|r| r.spec.open().map_err(|e| src(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cats = opened
        .iter()
        .map(|s| s.catalog().map_err(|e| src(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (table, to, parts) in wanted {
        if !opts.tables.is_empty() && !opts.tables.iter().any(|pat| pat.matches(&table)) {
            continue;
        }
        let Some(first) = parts.first() else { continue };
        let cat = &mut cats[first.source];
        let def = cat.definition(&first.table).map_err(|e| src(&e))?;
        let key: Vec<String> = if !def.primary_key.is_empty() {
            def.primary_key.clone()
        } else if let Some(k) = p.keys.get(&table) {
            k.clone()
        } else {
            cat.unique_key(&first.table)
                .map_err(|e| src(&e))?
                .ok_or_else(|| {
                    VerifyRunError::Source(format!(
                        "{table} has no primary key and no NOT NULL unique key to compare it by \
                         chunks: name unique NOT NULL columns in objects.keys"
                    ))
                })?
        };
        let keep = p.router.columns.get(&table);
        let column = |name: &str| -> Result<VerifyColumn, VerifyRunError> {
            let c = def
                .columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| VerifyRunError::Source(format!("{table} has no column {name}")))?;
            Ok(VerifyColumn::new(
                &c.name,
                &c.column_type,
                c.charset.as_deref(),
            ))
        };
        let mut columns = key
            .iter()
            .map(|k| column(k))
            .collect::<Result<Vec<_>, _>>()?;
        for c in &def.columns {
            let is_key = key.iter().any(|k| k.eq_ignore_ascii_case(&c.name));
            let kept = keep.is_none_or(|k| k.iter().any(|x| x.eq_ignore_ascii_case(&c.name)));
            if !is_key && kept {
                columns.push(column(&c.name)?);
            }
        }
        out.push(Job {
            key_len: key.len(),
            filter: p.router.filter_for(&table).map(|f| f.text().to_string()),
            table,
            to,
            columns,
            parts,
        });
    }
    Ok(out)
}
