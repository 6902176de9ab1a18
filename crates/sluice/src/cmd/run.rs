//! `sluice run -f project.yaml` and `sluice status`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::Context;
use clap::{Args, ValueEnum};
use sluice_meta::MetaStore;
use sluice_pipeline::RunOptions;

/// When `sluice run` stops by itself.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Until {
    /// Once the checkpoint reached the source's end as of the start of the run.
    CaughtUp,
}

/// Arguments of `sluice run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project file (YAML; see docs/PROJECTS.md).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Stop by itself (exit 0) when this is reached.
    #[arg(long, value_enum)]
    until: Option<Until>,
}

/// Arguments of `sluice status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A project file: its data directory and name are used.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// The data directory holding meta.db.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Project name (default: every project in the store).
    project: Option<String>,
}

/// What `sluice project` does. Pause and resume act on a project run by `sluice run` when
/// given `-f` or `--data-dir`; everything else asks a `sluice server` (`--server`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProjectAction {
    /// Hold the project: nothing is read or delivered until resumed (state Paused).
    Pause,
    /// Let a paused (or failed, on a server) project go on.
    Resume,
    /// Server: create a project from a project file (-f).
    Create,
    /// Server: list the projects.
    List,
    /// Server: a project's state, stage, checkpoint, latency, Store and Writer figures.
    Status,
    /// Server: precheck, then start (--force starts despite failed items).
    Start,
    /// Server: stop gracefully (flush, checkpoint).
    Stop,
    /// Server: free the replica connection and the destination's checkpoint rows (for good).
    Release,
    /// Server: delete a NotStarted or Released project.
    Delete,
    /// Server: a new NotStarted project with the same settings.
    Clone,
    /// Server: run the precheck.
    Precheck,
    /// Server: verify the destination against the source, on the server (`status` then
    /// shows `verification`; `sluice verify -f` does it from here).
    Verify,
}

/// Arguments of `sluice project`.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// What to do.
    #[arg(value_enum)]
    action: ProjectAction,
    /// A project file: with pause/resume, its data directory and name are used; with create,
    /// it is sent to the server.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// The data directory holding meta.db (pause/resume of a `sluice run`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Project name.
    project: Option<String>,
    /// With start: start even though the precheck failed.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    remote: super::server::Remote,
}

/// Runs `sluice project ACTION`.
pub fn project(args: ProjectArgs) -> anyhow::Result<()> {
    let local = matches!(args.action, ProjectAction::Pause | ProjectAction::Resume)
        && (args.file.is_some() || args.data_dir.is_some());
    if !local {
        let action = args
            .action
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        return super::server::remote_project(
            &args.remote,
            &action,
            args.project.as_deref(),
            args.file.as_ref(),
            args.force,
        );
    }
    let (dir, name) = match (&args.file, &args.data_dir, &args.project) {
        (Some(f), _, _) => {
            let p = sluice_registry::load(f)?;
            (p.data_dir, p.name)
        }
        (None, Some(d), Some(n)) => (d.clone(), n.clone()),
        _ => anyhow::bail!("give -f project.yaml, or --data-dir DIR and the project name"),
    };
    if !dir.join("meta.db").exists() {
        anyhow::bail!("no metadata store at {}", dir.join("meta.db").display());
    }
    let meta = MetaStore::open(&dir)?;
    let pause = matches!(args.action, ProjectAction::Pause);
    meta.set_paused(&name, pause)?;
    println!(
        "project {name}: {} requested (a running project acts within a second)",
        if pause { "pause" } else { "resume" }
    );
    Ok(())
}

/// Runs `sluice run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let project = sluice_registry::load(&args.file)?;
    let opts = RunOptions {
        until_caught_up: args.until.is_some(),
        ..RunOptions::default()
    };
    // One thread for the signals. SIGUSR1 / SIGUSR2: pause / resume (recorded in the metadata
    // store, as `sluice project` does, so status shows it and a pause outlives the signal).
    // SIGINT / SIGTERM: stop gracefully (flush, checkpoint, exit 0).
    let (dir, name, stop) = (
        project.data_dir.clone(),
        project.name.clone(),
        opts.stop.clone(),
    );
    std::thread::Builder::new()
        .name("sluice-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{signal, Signal, SignalKind};
                // A signal that cannot be registered never arrives.
                async fn next(s: &mut Option<Signal>) {
                    match s {
                        Some(s) => {
                            s.recv().await;
                        }
                        None => std::future::pending().await,
                    }
                }
                let mut usr1 = signal(SignalKind::user_defined1()).ok();
                let mut usr2 = signal(SignalKind::user_defined2()).ok();
                let mut term = signal(SignalKind::terminate()).ok();
                let mut int = signal(SignalKind::interrupt()).ok();
                loop {
                    let pause = tokio::select! {
                        _ = next(&mut usr1) => true,
                        _ = next(&mut usr2) => false,
                        _ = next(&mut term) => break,
                        _ = next(&mut int) => break,
                    };
                    if let Ok(m) = MetaStore::open(&dir) {
                        let _ = m.set_paused(&name, pause);
                    }
                }
            });
            eprintln!("sluice: stopping (flushing and checkpointing)");
            stop.store(true, Ordering::SeqCst);
        })
        .context("signal thread")?;
    // stages.verify: beside a run that keeps going; after one that stops once caught up.
    if !opts.until_caught_up {
        sluice_verify::spawn_stage(&project, opts.stop.clone());
    }
    let summary = sluice_pipeline::run(&project, &opts)
        .with_context(|| format!("project {}", project.name))?;
    if opts.until_caught_up && project.verify_stage && summary.completed {
        let reports = sluice_verify::verify(&project, &sluice_verify::Options::default(), &|_| {})
            .with_context(|| format!("verify project {}", project.name))?;
        let differ = reports.iter().filter(|r| !r.is_equal()).count();
        eprintln!(
            "sluice: project {} verified: {differ} of {} table(s) differ (sluice status shows each)",
            project.name,
            reports.len()
        );
    }
    let copied = if summary.copied > 0 || project.full {
        format!("copied {} rows (full sync), ", summary.copied)
    } else {
        String::new()
    };
    eprintln!(
        "sluice: project {} {}: {copied}delivered {} changes; checkpoint {}",
        project.name,
        if summary.completed {
            "completed"
        } else {
            "stopped"
        },
        summary.delivered,
        summary
            .checkpoint
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into())
    );
    Ok(())
}

/// Runs `sluice status`.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let mut held = None;
    let (dir, only) = match (&args.file, &args.data_dir) {
        (Some(f), _) => {
            let p = sluice_registry::load(f)?;
            // What the project keeps on its source (a PostgreSQL slot's WAL), asked live.
            held = Some(match p.source.open().and_then(|s| s.retained()) {
                Ok(h) => h,
                Err(e) => Some(format!("cannot tell what it keeps there ({e})")),
            });
            // A sharded project's parts are `NAME.INSTANCE`: show them all.
            let only = match (&args.project, p.shards.is_empty()) {
                (Some(n), _) => Some(n.clone()),
                (None, true) => Some(p.name.clone()),
                (None, false) => None,
            };
            (p.data_dir, only)
        }
        (None, Some(d)) => (d.clone(), args.project.clone()),
        (None, None) => (PathBuf::from("sluice-data"), args.project.clone()),
    };
    if !dir.join("meta.db").exists() {
        anyhow::bail!(
            "no metadata store at {}; give --data-dir or -f project.yaml",
            dir.join("meta.db").display()
        );
    }
    let meta = MetaStore::open(&dir)?;
    let names = match only {
        Some(n) => vec![n],
        None => meta.projects()?,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    for name in names {
        // A sharded project: its checkpoint, one vector of the instances' positions.
        let vector = meta.vector_checkpoint(&name)?;
        if !vector.is_empty() {
            println!("project:    {name} (sharded: one part per instance below)");
            println!("checkpoint: vector of {} instances", vector.len());
            for (instance, c) in &vector {
                println!("  {instance}: {} (source time {} ms)", c.position, c.ts_ms);
            }
            println!();
            continue;
        }
        let s = meta.status(&name)?;
        println!("project:    {name}");
        println!(
            "stage:      {}",
            if s.stage.is_empty() { "-" } else { &s.stage }
        );
        println!("state:      {}", s.state);
        if !s.message.is_empty() {
            println!("message:    {}", s.message);
        }
        match &s.checkpoint {
            Some(c) => {
                println!("checkpoint: {} (source time {} ms)", c.position, c.ts_ms);
                println!(
                    "latency:    {:.1} s (source time of the checkpoint vs now)",
                    now_ms.saturating_sub(c.ts_ms) as f64 / 1000.0
                );
            }
            None => println!("checkpoint: none"),
        }
        if let Some(Some(h)) = &held {
            println!("on source:  {h}");
        }
        if !s.full.is_empty() {
            // Per table: rows copied / estimated total, and whether every unit finished.
            let tables = s.full_tables();
            println!(
                "full sync:  {}",
                if s.full_done {
                    "finished"
                } else {
                    "in progress"
                }
            );
            for (t, (rows, total, done)) in tables {
                let pct = if done {
                    100.0
                } else {
                    (rows as f64 * 100.0 / total.max(1) as f64).min(99.9)
                };
                println!(
                    "full:       {t} {rows} of ~{total} rows ({pct:.1}%){}",
                    if done { " done" } else { "" }
                );
            }
        }
        for (t, n) in &s.rows {
            println!("rows:       {t} {n}");
        }
        for v in meta.verify_results(&name)? {
            println!(
                "verified:   {} -> {} {} rows: {} equal, {} missing, {} extra, {} different (at {} ms, {:.1} s)",
                v.table, v.dest, v.rows, v.equal, v.missing, v.extra, v.different, v.at_ms,
                v.took_ms as f64 / 1000.0
            );
        }
    }
    Ok(())
}
