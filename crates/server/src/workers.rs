//! The projects the service runs: one worker thread per running project, each running
//! `sluice_pipeline::run` (the same code as `sluice run -f`), and the sampler that keeps each
//! project's figures — Store (reader) and Writer position, rows/s, bytes/s, delay — for the
//! API and the charts, bounded to a few days.
//!
//! Invariants: at most one worker per project (and the pipeline's run lock besides); a worker
//! writes its project's end state (Completed, Failed) only when it ended by itself — a stop,
//! release or modification asked for by an action has already set the state it wants.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_meta::MetaStore;
use sluice_pipeline::{Project, RunOptions};

use crate::store::now_ms;
use crate::App;

/// How long figures are kept.
pub const KEEP_SAMPLES_MS: i64 = 3 * 24 * 3600 * 1000;
/// At most this many samples per project (3 days at one per 5 s is 51,840).
pub const MAX_SAMPLES: i64 = 60_000;

struct Worker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// The running workers, and the last figures of each project.
#[derive(Default)]
pub struct Workers {
    running: Mutex<HashMap<String, Worker>>,
    last: Mutex<HashMap<String, Sample>>,
    /// The projects a verification (the verify action) runs for now.
    verifying: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Workers(..)")
    }
}

/// The counters behind one sample, to make rates from the next.
#[derive(Debug, Clone)]
struct Sample {
    at_ms: i64,
    totals: [u64; 4],
    figures: Value,
}

impl Workers {
    /// Whether a verification of `name` runs now.
    pub fn verifying(&self, name: &str) -> bool {
        self.verifying
            .lock()
            .map(|v| v.contains(name))
            .unwrap_or(false)
    }

    /// Whether a worker of `name` is alive.
    pub fn alive(&self, name: &str) -> bool {
        self.running
            .lock()
            .map(|r| r.get(name).is_some_and(|w| !w.handle.is_finished()))
            .unwrap_or(false)
    }

    /// The names of the projects with a live worker.
    pub fn names(&self) -> Vec<String> {
        self.running
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(_, w)| !w.handle.is_finished())
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The last figures of a project (null before the first sample).
    pub fn figures(&self, name: &str) -> Value {
        self.last
            .lock()
            .ok()
            .and_then(|l| l.get(name).map(|s| s.figures.clone()))
            .unwrap_or(Value::Null)
    }
}

/// Starts a worker running `project` (none when one is alive).
pub fn spawn(app: &App, project: Project) -> Result<(), String> {
    let name = project.name.clone();
    let mut running = app.workers.running.lock().map_err(|e| e.to_string())?;
    if running.get(&name).is_some_and(|w| !w.handle.is_finished()) {
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        until_caught_up: false,
        stop: stop.clone(),
        board: Some(app.board.clone()),
    };
    let me = app.clone();
    let flag = stop.clone();
    // stages.verify: once the project has caught up, beside it; the results go to meta.db.
    sluice_verify::spawn_stage(&project, stop.clone());
    let handle = std::thread::Builder::new()
        .name(format!("sluice-project-{name}"))
        .spawn(move || {
            let result = sluice_pipeline::run(&project, &opts);
            if flag.load(Ordering::SeqCst) {
                // An action stopped it and set the state it wanted.
                return;
            }
            let (state, message) = match &result {
                Ok(s) if s.completed => ("Completed", String::new()),
                Ok(_) => ("Stopped", String::new()),
                Err(e) => ("Failed", e.to_string()),
            };
            if !message.is_empty() {
                tracing::warn!(project = %project.name, "{message}");
                let _ = me.store.add_event(&project.name, &message);
            }
            let _ = me.store.set_project_state(&project.name, state, &message);
        })
        .map_err(|e| e.to_string())?;
    running.insert(name, Worker { stop, handle });
    Ok(())
}

/// Stops `name`'s worker gracefully (flush, checkpoint) and waits for it. Blocking.
pub fn stop(app: &App, name: &str) {
    let w = app
        .workers
        .running
        .lock()
        .ok()
        .and_then(|mut r| r.remove(name));
    if let Some(w) = w {
        w.stop.store(true, Ordering::SeqCst);
        let _ = w.handle.join();
    }
}

/// Stops every worker (the service is shutting down); their states stay as they are, so
/// the next start resumes them.
pub fn stop_all(app: &App) {
    let all: Vec<Worker> = app
        .workers
        .running
        .lock()
        .map(|mut r| r.drain().map(|(_, w)| w).collect())
        .unwrap_or_default();
    for w in &all {
        w.stop.store(true, Ordering::SeqCst);
    }
    for w in all {
        let _ = w.handle.join();
    }
}

/// One sampling round: each running project's figures, recorded and kept in memory; a
/// modification whose added tables are copied is marked integrated.
pub fn sample(app: &App) {
    for name in app.workers.names() {
        let metrics = app.board.of(&name);
        if metrics.is_empty() {
            continue;
        }
        let mut reader = sluice_pipeline::metrics::ComponentFigures::default();
        let mut writer = reader.clone();
        for m in &metrics {
            let f = m.figures();
            for (sum, c) in [(&mut reader, f.reader), (&mut writer, f.writer)] {
                sum.rows += c.rows;
                sum.bytes += c.bytes;
                if sum.position.is_empty() || metrics.len() == 1 {
                    sum.position = c.position;
                }
                // The slowest part is the component's delay.
                if sum.seen_ms == 0 || (c.seen_ms > 0 && c.seen_ms < sum.seen_ms) {
                    sum.seen_ms = c.seen_ms;
                }
            }
        }
        let at = now_ms();
        let totals = [reader.rows, reader.bytes, writer.rows, writer.bytes];
        let prev = app
            .workers
            .last
            .lock()
            .ok()
            .and_then(|l| l.get(&name).cloned());
        let rate = |i: usize| match &prev {
            Some(p) if at > p.at_ms && totals[i] >= p.totals[i] => {
                (totals[i] - p.totals[i]) as f64 * 1000.0 / (at - p.at_ms) as f64
            }
            _ => 0.0,
        };
        let delay = |seen: u64| {
            if seen == 0 {
                Value::Null
            } else {
                json!((at - seen as i64).max(0))
            }
        };
        let figures = json!({
            "at_ms": at,
            "store": {
                "position": reader.position, "rows": reader.rows, "bytes": reader.bytes,
                "rows_per_s": rate(0), "bytes_per_s": rate(1), "delay_ms": delay(reader.seen_ms),
            },
            "writer": {
                "position": writer.position, "rows": writer.rows, "bytes": writer.bytes,
                "rows_per_s": rate(2), "bytes_per_s": rate(3), "delay_ms": delay(writer.seen_ms),
            },
        });
        let _ = app
            .store
            .add_sample(&name, at, &figures, KEEP_SAMPLES_MS, MAX_SAMPLES);
        if let Ok(mut l) = app.workers.last.lock() {
            l.insert(
                name.clone(),
                Sample {
                    at_ms: at,
                    totals,
                    figures,
                },
            );
        }
        integrate(app, &name);
    }
}

/// A project in Modifying whose added tables are copied goes back to Running (or Paused).
fn integrate(app: &App, name: &str) {
    let Ok(Some(row)) = app.store.project(name) else {
        return;
    };
    if row.state != "Modifying" {
        return;
    }
    let Ok(meta) = MetaStore::open(&app.dir) else {
        return;
    };
    if meta.full_stage(name).ok().flatten() == Some(false) {
        return;
    }
    let paused = meta.paused(name).unwrap_or(false);
    let _ = app
        .store
        .set_project_state(name, if paused { "Paused" } else { "Running" }, "");
    if let Ok(mods) = app.store.modifications(name) {
        for m in mods.iter().filter(|m| m.state == "integrating") {
            let _ = app.store.set_modification(
                m.id,
                &m.change,
                "done",
                "the added tables are copied and follow incremental sync",
            );
        }
    }
}

/// The sampler thread: a round every `every` until `stop`.
pub fn sampler(app: App, every: Duration, stop: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("sluice-sampler".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let until = std::time::Instant::now() + every;
                while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                sample(&app);
            }
        });
}

/// Verifies `p` on a thread of its own (the verify action): its results go to the metadata
/// store, as `sluice verify`'s do; a failure is kept with the project's errors. One at a time
/// per project.
pub fn verify(app: &App, p: Project) -> Result<(), String> {
    let name = p.name.clone();
    let fresh = app
        .workers
        .verifying
        .lock()
        .map(|mut v| v.insert(name.clone()))
        .unwrap_or(false);
    if !fresh {
        return Err(format!(
            "a verification of project {name} is running: wait for its results"
        ));
    }
    let me = app.clone();
    let again = name.clone();
    std::thread::Builder::new()
        .name(format!("sluice-verify-{name}"))
        .spawn(move || {
            if let Err(e) = sluice_verify::verify(&p, &sluice_verify::Options::default(), &|_| {}) {
                let _ = me
                    .store
                    .add_event(&name, &format!("verification failed: {e}"));
            }
            if let Ok(mut v) = me.workers.verifying.lock() {
                v.remove(&name);
            }
        })
        .map(|_| ())
        .map_err(|e| {
            if let Ok(mut v) = app.workers.verifying.lock() {
                v.remove(&again);
            }
            format!("cannot start a verification thread: {e}")
        })
}
