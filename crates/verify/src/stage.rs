//! `stages.verify`: the verification a project runs once incremental sync has caught up (its
//! full sync, when it has one, finished, and its checkpoint at the source position the stage
//! saw when the run started), while the project keeps running. Whoever runs the project (the
//! `sluice run` command, the service's worker) starts it beside the run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sluice_core::Position;
use sluice_meta::MetaStore;
use sluice_pipeline::Project;

use crate::{Options, TableReport, VerifyRunError};

/// Each source's checkpoint name and its end position now.
fn ends(p: &Project) -> Result<Vec<(String, Position)>, VerifyRunError> {
    let mut out = Vec::new();
    let err = |e: &dyn std::fmt::Display| VerifyRunError::Source(e.to_string());
    for r in crate::jobs::sources(p) {
        let source = r.spec.open().map_err(|e| err(&e))?;
        let end = source
            .catalog()
            .and_then(|mut c| c.end())
            .map_err(|e| err(&e))?;
        let name = match r.shard {
            None => p.name.clone(),
            Some(s) => format!("{}.{s}", p.name),
        };
        out.push((name, end));
    }
    Ok(out)
}

/// Whether every part's full sync (when the project has one) finished and its checkpoint is
/// at or after `end`.
fn caught_up(p: &Project, meta: &MetaStore, ends: &[(String, Position)]) -> bool {
    ends.iter().all(|(name, end)| {
        let full_ok = !p.full || meta.status(name).is_ok_and(|s| s.full_done);
        full_ok
            && meta
                .checkpoint(name)
                .ok()
                .flatten()
                .is_some_and(|c| &c.position >= end)
    })
}

/// Waits until the project has caught up (None if `stop` is raised or the run ends first),
/// then verifies it with the default options; the results go to the metadata store.
pub fn run_stage(
    p: &Project,
    stop: &AtomicBool,
) -> Option<Result<Vec<TableReport>, VerifyRunError>> {
    let ends = match ends(p) {
        Ok(e) => e,
        Err(e) => return Some(Err(e)),
    };
    let meta = match MetaStore::open(&p.data_dir) {
        Ok(m) => m,
        Err(e) => return Some(Err(e.into())),
    };
    let since = std::time::Instant::now();
    while !caught_up(p, &meta, &ends) {
        // Stopped, or the run ended by itself (failed): its lock is free once it has held it.
        let ended = since.elapsed() > Duration::from_secs(10)
            && !sluice_pipeline::is_running(&p.data_dir, &p.name);
        if stop.load(Ordering::SeqCst) || ended {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Some(crate::verify(p, &Options::default(), &|_| {}))
}

/// Starts [`run_stage`] beside a run of `p` when the project asks for it (`stages.verify`),
/// logging what it found; `stop` is the run's stop flag.
pub fn spawn_stage(
    p: &Project,
    stop: std::sync::Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    if !p.verify_stage {
        return None;
    }
    let p = p.clone();
    std::thread::Builder::new()
        .name(format!("sluice-verify-{}", p.name))
        .spawn(move || match run_stage(&p, &stop) {
            None => {}
            Some(Ok(reports)) => {
                let differ = reports.iter().filter(|r| !r.is_equal()).count();
                tracing::info!(
                    project = %p.name,
                    "verification: {differ} of {} table(s) differ (sluice status shows each)",
                    reports.len()
                );
            }
            Some(Err(e)) => tracing::warn!(project = %p.name, "verification failed: {e}"),
        })
        .ok()
}
