//! `sluice verify -f project.yaml`: compares the destination with what the project promises of
//! the source (docs/VERIFY.md), prints each table's counts and first differences, writes the
//! correction statements to a file, and applies them with `--apply` (then verifies the tables
//! that differed again). Exit status: 0 equal, 3 differences remain, 1 the verification could
//! not run.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sluice_verify::{Options, TableReport};

/// `sluice verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The project file.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Only the selected tables matching these `db.table` patterns (`*` wildcards).
    #[arg(long = "tables", num_args = 1..)]
    tables: Vec<String>,
    /// Write the correction statements (SQL taking the source as the truth) to this file.
    #[arg(long)]
    correction: Option<PathBuf>,
    /// Apply the corrections at the destination (one transaction per chunk), then verify the
    /// tables that differed again.
    #[arg(long)]
    apply: bool,
    /// Source rows per chunk.
    #[arg(long, default_value_t = 20_000)]
    chunk_rows: usize,
    /// Chunks compared at once (of any table).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Seconds to wait for a running project's checkpoint to pass a differing chunk before
    /// the second look.
    #[arg(long, default_value_t = 30)]
    settle_secs: u64,
    /// At most this many source rows per second.
    #[arg(long)]
    throttle_rows: Option<u64>,
}

fn line(r: &TableReport) -> String {
    format!(
        "{}.{} -> {}.{}: {} rows, {} equal, {} missing, {} extra, {} different ({:.1} s){}",
        r.table.db,
        r.table.table,
        r.to.db,
        r.to.table,
        r.rows,
        r.equal,
        r.missing,
        r.extra,
        r.different,
        r.took.as_secs_f64(),
        if r.behind {
            "; the project's checkpoint is behind the source and it is not running: run it, then verify again"
        } else {
            ""
        }
    )
}

fn print(reports: &[TableReport]) {
    for r in reports {
        if let Some(e) = &r.error {
            println!(
                "{}.{} -> {}.{}: could not be verified: {e}",
                r.table.db, r.table.table, r.to.db, r.to.table
            );
            continue;
        }
        println!("{}", line(r));
        for d in &r.examples {
            let key: Vec<String> = d.key.iter().map(|(c, v)| format!("{c}={v}")).collect();
            let cols = if d.columns.is_empty() {
                String::new()
            } else {
                format!(": {}", d.columns.join(", "))
            };
            let from = d
                .shard
                .as_ref()
                .map(|s| format!(" (instance {s})"))
                .unwrap_or_default();
            println!("  {:<9} {}{cols}{from}", d.kind.name(), key.join(", "));
        }
        let shown = r.examples.len() as u64;
        let all = r.missing + r.extra + r.different;
        if all > shown {
            println!("  ... and {} more", all - shown);
        }
    }
}

fn run(args: VerifyArgs) -> anyhow::Result<bool> {
    let project = sluice_registry::load(&args.file)?;
    let mut opts = Options {
        chunk_rows: args.chunk_rows.max(1),
        threads: args.threads.max(1),
        apply: args.apply,
        corrections: args.correction.is_some(),
        settle: Duration::from_secs(args.settle_secs),
        throttle_rows: args.throttle_rows,
        ..Options::default()
    };
    for t in &args.tables {
        opts.tables
            .push(sluice_route::Pattern::parse(t).with_context(|| format!("--tables {t}"))?);
    }
    // Progress on stderr, at most every 2 s per table.
    let last = Mutex::new(Instant::now());
    let progress = |r: &TableReport| {
        if let Ok(mut l) = last.lock() {
            if l.elapsed() >= Duration::from_secs(2) {
                *l = Instant::now();
                eprintln!(
                    "  {}.{}: {} rows compared so far",
                    r.table.db, r.table.table, r.rows
                );
            }
        }
    };
    let reports = sluice_verify::verify(&project, &opts, &progress)
        .with_context(|| format!("verify project {}", project.name))?;
    print(&reports);
    let statements: Vec<&String> = reports.iter().flat_map(|r| &r.corrections).collect();
    if let Some(path) = &args.correction {
        let mut f =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        writeln!(
            f,
            "-- Corrections of project {} by sluice verify: the source is the truth.",
            project.name
        )?;
        for s in &statements {
            writeln!(f, "{s};")?;
        }
        println!(
            "corrections: {} statement(s) written to {}",
            statements.len(),
            path.display()
        );
    }
    let differ: Vec<&TableReport> = reports.iter().filter(|r| !r.is_equal()).collect();
    if args.apply && !differ.is_empty() {
        let redelivered: u64 = reports.iter().map(|r| r.redelivered).sum();
        if redelivered > 0 {
            println!("re-delivered {redelivered} key(s); verifying those tables again");
        } else {
            println!(
                "applied {} statement(s); verifying those tables again",
                statements.len()
            );
        }
        opts.apply = false;
        opts.tables = differ
            .iter()
            .filter_map(|r| {
                sluice_route::Pattern::parse(&format!(
                    "`{}`.`{}`",
                    r.table.db.replace('`', "``"),
                    r.table.table.replace('`', "``")
                ))
                .ok()
            })
            .collect();
        let again = sluice_verify::verify(&project, &opts, &progress)
            .with_context(|| format!("verify project {} again", project.name))?;
        print(&again);
        let left = again.iter().filter(|r| !r.is_equal()).count();
        println!(
            "result: {} of {} table(s) differ after the corrections",
            left,
            reports.len()
        );
        return Ok(left == 0);
    }
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} table(s) could not be verified (above); {} differ",
            reports.len(),
            differ.len() - failed
        );
    }
    println!(
        "result: {} of {} table(s) differ",
        differ.len(),
        reports.len()
    );
    Ok(differ.is_empty())
}

/// Runs `sluice verify`; its exit status says whether the sides are equal.
pub fn verify(args: VerifyArgs) -> ExitCode {
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
