//! The project file (YAML): parsed in two phases, raw then validated, each error naming the
//! file, the line and the field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sluice_core::{Op, SecretUrl, TableId};
use sluice_route::{Pattern, Router};

use std::sync::Arc;

use crate::connect::{Connectors, DestinationSpec, SourceSettings, SourceSpec};

pub use crate::error::ProjectError;

mod raw;
mod shardingsphere;

use raw::{OneOrMany, RawProject};

/// A validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Project name (key in the metadata store).
    pub name: String,
    /// Where the metadata store lives.
    pub data_dir: PathBuf,
    /// The source (for a sharded source: its first instance; each part reads its own).
    pub source: Arc<dyn SourceSpec>,
    /// Source description for messages.
    pub source_info: sluice_format::SourceInfo,
    /// The destination.
    pub destination: Arc<dyn DestinationSpec>,
    /// Routing.
    pub router: Router,
    /// Schema stage on.
    pub schema_stage: bool,
    /// Full stage on.
    pub full: bool,
    /// Parallel full-sync readers.
    pub full_readers: usize,
    /// Rows per full-sync chunk (one SELECT, one destination batch, one progress record).
    pub full_chunk_rows: usize,
    /// Unique columns to key tables without a primary key by (source `db.table`).
    pub keys: HashMap<TableId, Vec<String>>,
    /// Sharding (partition hash) columns per table (source `db.table`).
    pub sharding: HashMap<TableId, Vec<String>>,
    /// At most this many rows per second reach the destination.
    pub throttle_rows: Option<u64>,
    /// At most this many bytes per second reach the destination.
    pub throttle_bytes: Option<u64>,
    /// Where `/metrics` is served (`127.0.0.1:9464`), if anywhere.
    pub metrics_listen: Option<String>,
    /// A sharded source's instances (empty for a single source).
    pub shards: Vec<crate::shards::ShardInstance>,
    /// For one part of a sharded project: the project's name.
    pub parent: Option<String>,
    /// Incremental stage on.
    pub incremental: bool,
    /// Verify the destination once incremental sync has caught up (run by whoever runs the
    /// project: `sluice run`, the service; see the `sluice-verify` crate).
    pub verify_stage: bool,
    /// Changes per batch.
    pub batch_rows: usize,
    /// Batches in flight at most (sent, not yet acknowledged), in both stages.
    pub in_flight: usize,
    /// Heartbeat period asked of the source.
    pub heartbeat_secs: u32,
}

impl Project {
    /// Reads and validates a project file.
    pub fn load(path: &Path, connectors: &dyn Connectors) -> Result<Project, ProjectError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProjectError {
            file: file.clone(),
            line: None,
            field: String::new(),
            message: format!("cannot read the project file: {e}"),
        })?;
        Self::parse(
            &text,
            &file,
            path.parent().unwrap_or(Path::new(".")),
            connectors,
        )
    }

    /// Parses project YAML (`file` names it in errors; `base` resolves a relative data_dir).
    pub fn parse(
        text: &str,
        file: &str,
        base: &Path,
        connectors: &dyn Connectors,
    ) -> Result<Project, ProjectError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let raw: RawProject =
            serde_path_to_error::deserialize(de).map_err(|e| yaml_error(e, file, text))?;
        let bad = |field: &str, message: String| ProjectError {
            file: file.to_string(),
            line: line_of(text, field),
            field: format!("{field}: "),
            message,
        };
        validate(raw, text, file, base, connectors, &bad)
    }
}

/// A project file that does not deserialize, named by file, line and field.
pub fn yaml_error(
    e: serde_path_to_error::Error<serde_yaml_ng::Error>,
    file: &str,
    text: &str,
) -> ProjectError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    // The YAML error repeats the location and the parent key: keep the plain reason.
    let mut message = inner.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
    if let Some(rest) = message.strip_prefix(&format!("{parent}: ")) {
        message = rest.to_string();
    }
    ProjectError {
        file: file.to_string(),
        line: inner
            .location()
            .map(|l| l.line())
            .or_else(|| line_of(text, &path)),
        field: if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        },
        message,
    }
}

/// The instances and logical tables of `source.shardingsphere`, when it names a rule file.
fn shardingsphere_topology(
    s: &raw::RawSource,
    base: &Path,
    bad: &dyn Fn(&str, String) -> ProjectError,
) -> Result<Option<shardingsphere::Imported>, ProjectError> {
    let Some(f) = &s.shardingsphere else {
        return Ok(None);
    };
    let field = "source.shardingsphere";
    if !s.instances.is_empty() || !s.logical_tables.is_empty() {
        return Err(bad(
            field,
            "give either a ShardingSphere rule file or instances and logical_tables, not both"
                .into(),
        ));
    }
    if s.kind != "sharded" {
        return Err(bad(
            field,
            "a ShardingSphere rule file describes a sharded source: set source.type: sharded"
                .into(),
        ));
    }
    let path = base.join(f);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad(field, format!("{}: {e}", path.display())))?;
    shardingsphere::import(&text, s.logical_database.as_deref())
        .map(Some)
        .map_err(|e| bad(field, format!("{}: {e}", path.display())))
}

/// The replica id a project (or a part of one) uses when none is set: from its name, so that
/// two projects reading one server do not take each other's binlog connection (a server keeps
/// one connection per replica id), and the same on every run. In 4,000,000,000 ..
/// 4,199,999,999, far from the small ids replicas usually have.
pub fn default_server_id(name: &str) -> u32 {
    4_000_000_000 + (sluice_core::hash::fnv1a(name.as_bytes()) % 200_000_000) as u32
}

/// The line of a dotted field path (`destination.url`, `source.instances[1].url`), found by
/// walking the YAML blocks: each key is looked for only inside the block of the key before it,
/// so `destination.url` never names the line of `source.url`. Flow style (`{a: 1}`) is not
/// followed: then the line of the deepest key found is given.
pub fn line_of(text: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    // A line's indentation and its content.
    fn shape(l: &str) -> (usize, &str) {
        let t = l.trim_start();
        (l.len() - t.len(), t)
    }
    let meaningful = |t: &str| !t.is_empty() && !t.starts_with('#');
    // The block being searched: lines from `start`, indented deeper than `outer`; the line at
    // `start` itself may be a list item holding the next key (`- name: a`).
    let (mut start, mut outer): (usize, Option<usize>) = (0, None);
    let mut found = None;
    for seg in field.split('.') {
        let (key, index) = match seg.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let mut hit = None;
        for (i, l) in lines.iter().enumerate().skip(start) {
            let (ind, t) = shape(l);
            if !meaningful(t) {
                continue;
            }
            if i > start && outer.is_some_and(|o| ind <= o) {
                break;
            }
            let body = t.strip_prefix("- ").unwrap_or(t);
            if body.starts_with(&format!("{key}:")) {
                hit = Some((i, ind));
                break;
            }
        }
        let Some((at, ind)) = hit else { break };
        found = Some(at);
        (start, outer) = (at + 1, Some(ind));
        if let Some(n) = index {
            // The n-th item of the list under this key.
            let mut items = lines
                .iter()
                .enumerate()
                .skip(at + 1)
                .filter(|(_, l)| meaningful(shape(l).1))
                .take_while(|(_, l)| shape(l).0 > ind || shape(l).1.starts_with("- "))
                .filter(|(_, l)| shape(l).1.starts_with("- "));
            let Some((item, l)) = items.nth(n) else { break };
            found = Some(item);
            (start, outer) = (item, Some(shape(l).0));
        }
    }
    found.map(|i| i + 1)
}

fn validate(
    raw: RawProject,
    text: &str,
    file: &str,
    base: &Path,
    connectors: &dyn Connectors,
    bad: &dyn Fn(&str, String) -> ProjectError,
) -> Result<Project, ProjectError> {
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(bad(
            "name",
            format!("{:?}: use letters, digits, '-', '_' or '.'", raw.name),
        ));
    }
    let kind = raw.source.kind.as_str();
    if kind != "sharded" && !connectors.source_types().contains(&kind) {
        return Err(bad(
            "source.type",
            format!(
                "{kind:?} is not a source type; use {}, or sharded",
                connectors.source_types().join(", ")
            ),
        ));
    }
    // A field error of a source's settings, at its field's line.
    let field = |e: sluice_core::config::FieldError| bad(&e.field, e.message);
    let heartbeat_secs = raw.options.heartbeat_secs.max(1);
    let s = &raw.source;
    let extra = crate::connect::SourceExtra {
        slot: s.slot.clone(),
        publication: s.publication.clone(),
        create_publication: s.create_publication,
    };
    let tls = match s.tls.clone() {
        Some(t) => Some(
            t.check()
                .map_err(|e| bad(&format!("source.tls.{}", e.field), e.message))?,
        ),
        None => None,
    };
    let mut shards = Vec::new();
    let imported = shardingsphere_topology(s, base, bad)?;
    let (instances, logical_tables) = match &imported {
        Some(i) => (&i.instances, &i.logical_tables),
        None => (&s.instances, &s.logical_tables),
    };
    if s.kind == "sharded" {
        if instances.is_empty() || logical_tables.is_empty() {
            return Err(bad(
                "source.instances",
                "a sharded source lists instances (name, url) and logical_tables (name, shards), \
                 or names a ShardingSphere rule file (shardingsphere: rules.yaml)"
                    .into(),
            ));
        }
        for inst in instances {
            let server_id = inst
                .server_id
                .unwrap_or_else(|| default_server_id(&format!("{}.{}", raw.name, inst.name)));
            let source = connectors
                .source(&SourceSettings {
                    kind: "mysql",
                    url: &inst.url,
                    server_id,
                    start: &raw.stages.start,
                    heartbeat_secs,
                    project: &raw.name,
                    extra: &extra,
                    tls: tls.as_ref(),
                })
                .map_err(|e| match e.field.as_str() {
                    "source.url" => {
                        bad("source.instances", format!("{}: {}", inst.name, e.message))
                    }
                    _ => field(e),
                })?;
            shards.push(crate::shards::ShardInstance {
                name: inst.name.clone(),
                source,
                server_id,
                tables: Vec::new(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for l in logical_tables {
            let logical = sluice_route::parse_table(&l.name)
                .map_err(|e| bad("source.logical_tables", e.to_string()))?;
            for (inst, pats) in &l.shards {
                let pats = match pats {
                    OneOrMany::One(p) => vec![p.clone()],
                    OneOrMany::Many(v) => v.clone(),
                };
                let shard = shards.iter_mut().find(|x| &x.name == inst).ok_or_else(|| {
                    bad(
                        "source.logical_tables",
                        format!("{}: no instance named {inst}", l.name),
                    )
                })?;
                for pat in pats {
                    for t in crate::shards::expand_tables(&pat)
                        .map_err(|e| bad("source.logical_tables", e))?
                    {
                        if !seen.insert((inst.clone(), t.clone())) {
                            return Err(bad(
                                "source.logical_tables",
                                format!("{t} of instance {inst} belongs to two logical tables"),
                            ));
                        }
                        shard.tables.push((t, logical.clone()));
                    }
                }
            }
        }
    }
    let password = match (&s.password, &s.password_env) {
        (Some(p), _) => Some(p.expose().to_string()),
        (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
            bad(
                "source.password_env",
                format!("environment variable {var} is not set"),
            )
        })?),
        (None, None) => None,
    };
    if kind == "postgres" && s.server_id.is_some() {
        return Err(bad(
            "source.server_id",
            "a postgres source has no replica id (it reads through its replication slot, source.slot)".into(),
        ));
    }
    if s.database.is_some() && (kind != "postgres" || s.url.is_some()) {
        return Err(bad(
            "source.database",
            "only a postgres source given by host names its database this way (a URL ends in /DATABASE)".into(),
        ));
    }
    let source_url = match (&s.url, &s.host) {
        _ if !shards.is_empty() => SecretUrl::new(""),
        (Some(u), None) => u.clone(),
        (None, Some(h)) => {
            let user = s.user.clone().unwrap_or_else(|| {
                if kind == "postgres" {
                    "postgres"
                } else {
                    "root"
                }
                .into()
            });
            let auth = match &password {
                Some(p) => format!("{user}:{}", url_escape(p)),
                None => user,
            };
            if kind == "postgres" {
                let db = s.database.as_deref().unwrap_or("postgres");
                SecretUrl::new(format!(
                    "postgres://{auth}@{h}:{}/{}",
                    s.port.unwrap_or(5432),
                    url_escape(db)
                ))
            } else {
                SecretUrl::new(format!("mysql://{auth}@{h}:{}", s.port.unwrap_or(3306)))
            }
        }
        _ => {
            return Err(bad(
                "source",
                "give either url or host (with port, user, password)".into(),
            ))
        }
    };
    let server_id = raw
        .source
        .server_id
        .unwrap_or_else(|| default_server_id(&raw.name));
    let source = match shards.first() {
        Some(first) => first.source.clone(),
        None => connectors
            .source(&SourceSettings {
                kind,
                url: &source_url,
                server_id,
                start: &raw.stages.start,
                heartbeat_secs,
                project: &raw.name,
                extra: &extra,
                tls: tls.as_ref(),
            })
            .map_err(field)?,
    };
    let mut include = Vec::new();
    for p in &raw.objects.include {
        include.push(Pattern::parse(p).map_err(|e| bad("objects.include", e.to_string()))?);
    }
    if include.is_empty() {
        return Err(bad(
            "objects.include",
            "list at least one db.table pattern (`*.*` for everything)".into(),
        ));
    }
    let mut exclude = Vec::new();
    for p in &raw.objects.exclude {
        exclude.push(Pattern::parse(p).map_err(|e| bad("objects.exclude", e.to_string()))?);
    }
    let mut rename = HashMap::new();
    for (from, to) in &raw.objects.rename {
        // The message starts with the entry's key, whichever side is wrong.
        let split = |s: &str| {
            sluice_route::parse_table(s).map_err(|e| bad("objects.rename", format!("{from}: {e}")))
        };
        rename.insert(split(from)?, split(to)?);
    }
    let mut columns = HashMap::new();
    for (table, cols) in &raw.objects.columns {
        let id = sluice_route::parse_table(table)
            .map_err(|e| bad("objects.columns", format!("{table}: {e}")))?;
        if cols.is_empty() {
            return Err(bad(
                "objects.columns",
                format!("{table}: list at least one column"),
            ));
        }
        columns.insert(id, cols.clone());
    }
    let mut ops = Vec::new();
    for o in &raw.options.dml {
        ops.push(match o.as_str() {
            "insert" => Op::Insert,
            "update" => Op::Update,
            "delete" => Op::Delete,
            other => {
                return Err(bad(
                    "options.dml",
                    format!("{other:?}: use insert, update, delete"),
                ))
            }
        });
    }
    if raw.stages.full && raw.stages.start.trim() != "now" {
        return Err(bad(
            "stages.start",
            "with full: true, incremental sync starts where full sync began; remove start \
             (or set full: false to start from a position)"
                .into(),
        ));
    }
    if raw.options.full_readers == 0 || raw.options.full_chunk_rows == 0 {
        return Err(bad(
            "options.full_readers",
            "full_readers and full_chunk_rows must be at least 1".into(),
        ));
    }
    let mut filters = Vec::new();
    for (pattern, cond) in &raw.objects.filters {
        let pat = Pattern::parse(pattern).map_err(|e| bad("objects.filters", e.to_string()))?;
        let f = sluice_route::RowFilter::parse(cond)
            .map_err(|e| bad("objects.filters", format!("{pattern}: {e}")))?;
        filters.push((pat, f));
    }
    let mut sharding = HashMap::new();
    for (table, cols) in &raw.objects.sharding {
        let id =
            sluice_route::parse_table(table).map_err(|e| bad("objects.sharding", e.to_string()))?;
        if cols.is_empty() {
            return Err(bad(
                "objects.sharding",
                format!("{table}: list the sharding columns"),
            ));
        }
        sharding.insert(id, cols.clone());
    }
    if raw.options.throttle_rows == Some(0) || raw.options.throttle_bytes == Some(0) {
        return Err(bad(
            "options.throttle_rows",
            "a throttle must be at least 1 (leave it out for none)".into(),
        ));
    }
    if let Some(l) = &raw.options.metrics_listen {
        if l.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "options.metrics_listen",
                format!("{l:?} is not an address like 127.0.0.1:9464"),
            ));
        }
    }
    let mut keys = HashMap::new();
    for (table, cols) in &raw.objects.keys {
        let id =
            sluice_route::parse_table(table).map_err(|e| bad("objects.keys", e.to_string()))?;
        if cols.is_empty() {
            return Err(bad(
                "objects.keys",
                format!("{table}: list the unique columns"),
            ));
        }
        keys.insert(id, cols.clone());
    }
    if raw.options.batch_rows == 0 {
        return Err(bad("options.batch_rows", "must be at least 1".into()));
    }
    if raw.options.in_flight_batches == 0 {
        return Err(bad(
            "options.in_flight_batches",
            "must be at least 1 (1: each batch is acknowledged before the next is sent)".into(),
        ));
    }
    // The destination sees destination names: the sharding columns go by the renamed table.
    let dest_sharding = sharding
        .iter()
        .map(|(t, c)| {
            (
                rename.get(t).cloned().unwrap_or_else(|| t.clone()),
                c.clone(),
            )
        })
        .collect();
    let destination =
        connectors.destination(&raw.destination.kind, text, file, &raw.name, dest_sharding)?;
    if raw.stages.verify && !destination.verifiable() {
        return Err(bad(
            "stages.verify",
            format!(
                "verification of this destination is not built yet: {}; remove stages.verify",
                crate::VERIFIABLE
            ),
        ));
    }
    let data_dir = match raw.data_dir {
        Some(d) if d.is_absolute() => d,
        Some(d) => base.join(d),
        None => base.join("sluice-data"),
    };
    Ok(Project {
        source_info: sluice_format::SourceInfo {
            name: raw.source.name.clone().unwrap_or_else(|| raw.name.clone()),
            db_type: source.db_type(),
            server_id: 0,
        },
        name: raw.name,
        data_dir,
        source,
        destination,
        router: Router {
            include,
            exclude,
            rename,
            columns,
            filters,
            keys: keys.clone(),
            ops,
            ddl: raw.options.ddl,
            shapes: Default::default(),
        },
        schema_stage: raw.stages.schema,
        verify_stage: raw.stages.verify,
        full: raw.stages.full,
        full_readers: raw.options.full_readers,
        full_chunk_rows: raw.options.full_chunk_rows,
        keys,
        sharding,
        throttle_rows: raw.options.throttle_rows,
        throttle_bytes: raw.options.throttle_bytes,
        metrics_listen: raw.options.metrics_listen,
        shards,
        parent: None,
        incremental: raw.stages.incremental,
        batch_rows: raw.options.batch_rows,
        in_flight: raw.options.in_flight_batches,
        heartbeat_secs: raw.options.heartbeat_secs.max(1),
    })
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
