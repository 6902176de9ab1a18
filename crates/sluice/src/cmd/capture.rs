//! `sluice capture`: the Store on its own, printing change events as JSON lines.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use sluice_core::render::event_to_json;
use sluice_core::Event;
use sluice_source_mysql::decode::SchemaHistory;
use sluice_source_mysql::live::{self, LiveConfig, StartAt};

/// Arguments of `sluice capture`.
#[derive(Debug, Clone, Args)]
pub struct CaptureArgs {
    /// Live source: mysql://USER[:PASS]@HOST:PORT
    #[arg(
        long,
        conflicts_with = "binlog_file",
        required_unless_present = "binlog_file"
    )]
    source: Option<String>,
    /// Where to start: now, earliest, FILE:OFFSET, gtid:D-S-N (MariaDB) or time:RFC3339.
    #[arg(long, default_value = "now")]
    start: String,
    /// Only these tables: db.table or db.prefix* (comma separated).
    #[arg(long, value_delimiter = ',')]
    tables: Vec<String>,
    /// Stop after this many row and DDL events.
    #[arg(long)]
    limit: Option<u64>,
    /// Replica server id used on the source.
    #[arg(long, default_value_t = 4_012_345)]
    server_id: u32,
    /// Heartbeat period asked of the server, seconds.
    #[arg(long, default_value_t = 5)]
    heartbeat_secs: u64,
    /// Schema history file: loaded if it exists, saved when capture ends, so table schemas
    /// learned from DDL carry over between runs.
    #[arg(long)]
    schema_history: Option<PathBuf>,
    /// Decode recorded binlog files instead of a live server.
    #[arg(long, num_args = 1..)]
    binlog_file: Vec<PathBuf>,
}

/// `db.table` or `db.prefix*` patterns.
struct TableFilter(Vec<(String, String)>);

impl TableFilter {
    fn parse(items: &[String]) -> anyhow::Result<Self> {
        let mut out = Vec::new();
        for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let Some((db, table)) = item.split_once('.') else {
                bail!("--tables entry {item:?} must be db.table or db.prefix*");
            };
            out.push((db.to_string(), table.to_string()));
        }
        Ok(Self(out))
    }

    fn matches(&self, db: &str, table: &str) -> bool {
        let one = |pat: &str, name: &str| match pat.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pat == name,
        };
        self.0.is_empty() || self.0.iter().any(|(d, t)| one(d, db) && one(t, table))
    }

    /// The tables named without wildcards (their primary keys are prechecked).
    fn exact_tables(&self) -> Vec<sluice_core::TableId> {
        self.0
            .iter()
            .filter(|(d, t)| !d.ends_with('*') && !t.ends_with('*'))
            .map(|(d, t)| sluice_core::TableId::new(d.clone(), t.clone()))
            .collect()
    }

    fn keeps(&self, e: &Event) -> bool {
        match e {
            Event::Row(r) => self.matches(&r.table.id.db, &r.table.id.table),
            Event::Ddl(d) => {
                self.0.is_empty() || self.0.iter().any(|(db, _)| db == &d.db || db == "*")
            }
            _ => false,
        }
    }
}

fn parse_start(s: &str) -> anyhow::Result<StartAt> {
    StartAt::parse(s).map_err(|e| anyhow::anyhow!("--start {e}"))
}

/// Prints events that pass the filter, counting toward the limit; `Break` once it is reached.
struct Printer {
    filter: TableFilter,
    limit: Option<u64>,
    printed: u64,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Printer {
    fn print(&mut self, e: &Event) -> Result<ControlFlow<()>, sluice_source_mysql::EmitError> {
        if let Some(json) = event_to_json(e).filter(|_| self.filter.keeps(e)) {
            writeln!(self.out, "{json}").map_err(|e| format!("stdout: {e}"))?;
            self.printed += 1;
            if self.limit.is_some_and(|l| self.printed >= l) {
                self.out.flush().map_err(|e| format!("stdout: {e}"))?;
                return Ok(ControlFlow::Break(()));
            }
        }
        if matches!(e, Event::Commit { .. } | Event::Heartbeat { .. }) {
            self.out.flush().map_err(|e| format!("stdout: {e}"))?;
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// Runs `sluice capture`.
pub fn run(args: CaptureArgs) -> anyhow::Result<()> {
    let mut printer = Printer {
        filter: TableFilter::parse(&args.tables)?,
        limit: args.limit,
        printed: 0,
        out: std::io::BufWriter::new(std::io::stdout()),
    };
    let mut history = match &args.schema_history {
        Some(p) if p.exists() => SchemaHistory::load(p)?,
        _ => SchemaHistory::new(),
    };
    let result = run_with(args.clone(), &mut printer, &mut history);
    if let Some(p) = &args.schema_history {
        history.save(p).context("saving the schema history")?;
    }
    result
}

fn run_with(
    args: CaptureArgs,
    printer: &mut Printer,
    history: &mut SchemaHistory,
) -> anyhow::Result<()> {
    if !args.binlog_file.is_empty() {
        for path in &args.binlog_file {
            let mut done = false;
            let r = sluice_source_mysql::file::decode_file(path, history, |e| {
                if done {
                    return Ok(());
                }
                match printer.print(&e)? {
                    ControlFlow::Break(()) => done = true,
                    ControlFlow::Continue(()) => {}
                }
                Ok(())
            });
            printer.out.flush().context("stdout")?;
            r?;
            if done {
                break;
            }
        }
        return Ok(());
    }
    let url = args
        .source
        .context("--source or --binlog-file is required")?;
    let opts = mysql_async::Opts::from_url(&url)
        .with_context(|| format!("--source {url:?} is not a mysql:// URL"))?;
    let cfg = LiveConfig {
        endpoint: sluice_mysql_client::Endpoint::from_opts(opts),
        server_id: args.server_id,
        start: parse_start(&args.start)?,
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        reconnect_for: Duration::from_secs(300),
        precheck_tables: printer.filter.exact_tables(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(live::read(&cfg, history, |e| match printer.print(&e) {
        Ok(ControlFlow::Break(())) => ControlFlow::Break(()),
        Ok(ControlFlow::Continue(())) => ControlFlow::Continue(Ok(())),
        Err(e) => ControlFlow::Continue(Err(e)),
    }))?;
    printer.out.flush().context("stdout")?;
    Ok(())
}
