//! A project's numbers, for Prometheus: one registry per run, served at `/metrics` on
//! `options.metrics_listen` when set.
//!
//! Per component (`reader`: the binlog reader; `writer`: what the destination acknowledged):
//! rows and bytes (counters, and per-second gauges over the last 5 s), errors, and the
//! position reached (file index and offset). For the project: the checkpoint's source time,
//! the latency (now minus that time, computed when scraped), and full-sync progress per table.
//!
//! `/health` answers from the project's state in the metadata store, the same record `sluice
//! status` shows: 200 `ok` while it runs (or is paused) with nothing wrong, 503 with the reason
//! while the destination is being retried (a state message starting `retrying:`) or once a
//! part has Failed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts as PromOpts, Registry, TextEncoder,
};
use sluice_core::Position;

/// The metric families of one project.
#[derive(Clone)]
pub struct Metrics {
    project: String,
    registry: Registry,
    rows: IntCounterVec,
    bytes: IntCounterVec,
    errors: IntCounterVec,
    rows_rate: GaugeVec,
    bytes_rate: GaugeVec,
    file_index: IntGaugeVec,
    offset: IntGaugeVec,
    checkpoint_ts: GaugeVec,
    latency: GaugeVec,
    full_rows: IntGaugeVec,
    full_total: IntGaugeVec,
    up: IntGaugeVec,
    /// Source time (ms) of the last commit or heartbeat each component reached.
    seen_ms: IntGaugeVec,
    /// Position text each component reached (for the service's figures; not a metric).
    reached: Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>,
}

/// What one component did, as the service shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentFigures {
    /// Rows handled since the run started.
    pub rows: u64,
    /// Bytes handled since the run started.
    pub bytes: u64,
    /// Position reached, as text (empty before the first).
    pub position: String,
    /// Source time (ms) of the last commit or heartbeat reached (0 before the first).
    pub seen_ms: u64,
}

/// The figures of one run, by component (`reader`, `writer`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// The reader (Store).
    pub reader: ComponentFigures,
    /// What the destination acknowledged (Writer).
    pub writer: ComponentFigures,
    /// Full sync per table: rows copied, rows estimated.
    pub full: Vec<(String, u64, u64)>,
}

/// The metrics of every run in one process, by project (or part) name: a run registers its
/// [`Metrics`] here when it starts (see `RunOptions::board`), so that a service can show and
/// serve the figures of all its projects.
#[derive(Clone, Default)]
pub struct MetricsBoard(Arc<std::sync::Mutex<std::collections::BTreeMap<String, Metrics>>>);

impl std::fmt::Debug for MetricsBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .0
            .lock()
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_tuple("MetricsBoard").field(&names).finish()
    }
}

impl MetricsBoard {
    /// Records the metrics of a run (replacing an earlier run's of the same name).
    pub fn register(&self, m: &Metrics) {
        if let Ok(mut b) = self.0.lock() {
            b.insert(m.project.clone(), m.clone());
        }
    }

    /// The metrics of `name` and of its parts (`name.INSTANCE`), if any ran.
    pub fn of(&self, name: &str) -> Vec<Metrics> {
        let Ok(b) = self.0.lock() else {
            return Vec::new();
        };
        let prefix = format!("{name}.");
        b.iter()
            .filter(|(k, _)| k.as_str() == name || k.starts_with(&prefix))
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Forgets the metrics of `name` and its parts (a project released or deleted).
    pub fn forget(&self, name: &str) {
        if let Ok(mut b) = self.0.lock() {
            let prefix = format!("{name}.");
            b.retain(|k, _| k.as_str() != name && !k.starts_with(&prefix));
        }
    }

    /// The `/metrics` page of every run on the board.
    pub fn render(&self) -> String {
        let all: Vec<Metrics> = match self.0.lock() {
            Ok(b) => b.values().cloned().collect(),
            Err(_) => return String::new(),
        };
        let mut families = Vec::new();
        for m in &all {
            m.set_latency();
            families.extend(m.registry.gather());
        }
        // One family per name, with every project's samples in it (the text format requires
        // each family once).
        let mut merged: Vec<prometheus::proto::MetricFamily> = Vec::new();
        for f in families {
            match merged.iter_mut().find(|g| g.name() == f.name()) {
                Some(g) => {
                    let mut metrics = g.take_metric();
                    metrics.extend(f.get_metric().iter().cloned());
                    g.set_metric(metrics);
                }
                None => merged.push(f),
            }
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&merged, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Metrics {
    /// The families for `project`, registered in a registry of their own.
    pub fn new(project: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(PromOpts::new(name, help), &["project", "component"])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge =
            |name: &str, help: &str, labels: &[&str]| -> Result<GaugeVec, prometheus::Error> {
                let g = GaugeVec::new(PromOpts::new(name, help), labels)?;
                registry.register(Box::new(g.clone()))?;
                Ok(g)
            };
        let igauge =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                let g = IntGaugeVec::new(PromOpts::new(name, help), labels)?;
                registry.register(Box::new(g.clone()))?;
                Ok(g)
            };
        let pc = &["project", "component"];
        Ok(Self {
            project: project.to_string(),
            rows: counter(
                "sluice_rows_total",
                "Row changes read (reader) or acknowledged by the destination (writer).",
            )?,
            bytes: counter(
                "sluice_bytes_total",
                "Bytes read from the binlog (reader) or sent as message payloads (writer).",
            )?,
            errors: counter(
                "sluice_errors_total",
                "Errors: reader failures, destination retries (writer).",
            )?,
            rows_rate: gauge(
                "sluice_rows_per_second",
                "Rows per second over the last 5 s.",
                pc,
            )?,
            bytes_rate: gauge(
                "sluice_bytes_per_second",
                "Bytes per second over the last 5 s.",
                pc,
            )?,
            file_index: igauge(
                "sluice_position_file_index",
                "Binlog file number of the position reached (mariadb-bin.000042 -> 42).",
                pc,
            )?,
            offset: igauge(
                "sluice_position_offset",
                "Binlog offset of the position reached.",
                pc,
            )?,
            checkpoint_ts: gauge(
                "sluice_checkpoint_timestamp_seconds",
                "Source time of the checkpoint (Unix seconds).",
                &["project"],
            )?,
            latency: gauge(
                "sluice_latency_seconds",
                "Now minus the source time of the checkpoint.",
                &["project"],
            )?,
            full_rows: igauge(
                "sluice_full_rows_done",
                "Full sync: rows copied and acknowledged, per table.",
                &["project", "table"],
            )?,
            full_total: igauge(
                "sluice_full_rows_estimated",
                "Full sync: estimated rows, per table.",
                &["project", "table"],
            )?,
            up: igauge("sluice_up", "1 while the project runs.", &["project"])?,
            seen_ms: igauge(
                "sluice_source_time_milliseconds",
                "Source time of the last commit or heartbeat a component reached (Unix ms).",
                pc,
            )?,
            reached: Default::default(),
            registry,
        })
    }

    fn pc<'a>(&'a self, component: &'a str) -> [&'a str; 2] {
        [self.project.as_str(), component]
    }

    /// Rows (and bytes) handled by a component.
    pub fn add(&self, component: &str, rows: u64, bytes: u64) {
        self.rows
            .with_label_values(&self.pc(component))
            .inc_by(rows);
        self.bytes
            .with_label_values(&self.pc(component))
            .inc_by(bytes);
    }

    /// One error of a component.
    pub fn error(&self, component: &str) {
        self.errors.with_label_values(&self.pc(component)).inc();
    }

    /// The position a component reached.
    pub fn position(&self, component: &str, pos: &Position) {
        self.file_index
            .with_label_values(&self.pc(component))
            .set(i64::try_from(pos.file_index()).unwrap_or(i64::MAX));
        self.offset
            .with_label_values(&self.pc(component))
            .set(i64::try_from(pos.offset()).unwrap_or(i64::MAX));
        if let Ok(mut r) = self.reached.lock() {
            r.insert(component.to_string(), pos.to_string());
        }
    }

    /// The source time (ms) of the last commit or heartbeat a component reached.
    pub fn seen(&self, component: &str, ts_ms: u64) {
        if ts_ms > 0 {
            self.seen_ms
                .with_label_values(&self.pc(component))
                .set(i64::try_from(ts_ms).unwrap_or(i64::MAX));
        }
    }

    /// The project (or part) these metrics are of.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// Marks the run as up (1) or ended (0).
    pub fn set_up(&self, up: bool) {
        self.up
            .with_label_values(&[self.project.as_str()])
            .set(i64::from(up));
    }

    /// The figures of the run so far.
    pub fn figures(&self) -> Figures {
        let reached = self.reached.lock().map(|r| r.clone()).unwrap_or_default();
        let component = |c: &str| ComponentFigures {
            rows: self.rows.with_label_values(&self.pc(c)).get(),
            bytes: self.bytes.with_label_values(&self.pc(c)).get(),
            position: reached.get(c).cloned().unwrap_or_default(),
            seen_ms: u64::try_from(self.seen_ms.with_label_values(&self.pc(c)).get()).unwrap_or(0),
        };
        let mut full = Vec::new();
        for f in self.full_rows.collect() {
            for m in f.get_metric() {
                let table = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "table")
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                let total = self
                    .full_total
                    .with_label_values(&[self.project.as_str(), table.as_str()])
                    .get();
                full.push((
                    table,
                    m.get_gauge().get_value() as u64,
                    u64::try_from(total).unwrap_or(0),
                ));
            }
        }
        Figures {
            reader: component("reader"),
            writer: component("writer"),
            full,
        }
    }

    /// A checkpoint was written with this source time (ms).
    pub fn checkpoint(&self, ts_ms: u64) {
        if ts_ms > 0 {
            self.checkpoint_ts
                .with_label_values(&[self.project.as_str()])
                .set(ts_ms as f64 / 1000.0);
        }
    }

    /// Full-sync progress of one table.
    pub fn full(&self, table: &str, done: u64, total: u64) {
        let l = [self.project.as_str(), table];
        self.full_rows
            .with_label_values(&l)
            .set(i64::try_from(done).unwrap_or(i64::MAX));
        self.full_total
            .with_label_values(&l)
            .set(i64::try_from(total).unwrap_or(i64::MAX));
    }

    /// The page `/metrics` serves (latency computed now).
    pub fn render(&self) -> String {
        self.set_latency();
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sets the latency gauge from the checkpoint's source time and now.
    fn set_latency(&self) {
        let p = [self.project.as_str()];
        let ts = self.checkpoint_ts.with_label_values(&p).get();
        if ts > 0.0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.latency.with_label_values(&p).set((now - ts).max(0.0));
        }
    }

    /// Recomputes the per-second gauges from the counters (called every 5 s).
    fn update_rates(&self, last: &mut Vec<(String, u64, u64)>, secs: f64) {
        let mut next = Vec::new();
        for component in ["reader", "writer"] {
            let rows = self.rows.with_label_values(&self.pc(component)).get();
            let bytes = self.bytes.with_label_values(&self.pc(component)).get();
            if let Some((_, r0, b0)) = last.iter().find(|(c, ..)| c == component) {
                self.rows_rate
                    .with_label_values(&self.pc(component))
                    .set(rows.saturating_sub(*r0) as f64 / secs);
                self.bytes_rate
                    .with_label_values(&self.pc(component))
                    .set(bytes.saturating_sub(*b0) as f64 / secs);
            }
            next.push((component.to_string(), rows, bytes));
        }
        *last = next;
    }

    /// Serves `/metrics` (and `/health`, answered by `health`) on `addr` from a thread of its
    /// own until `stop`. Returns the address bound (port 0 picks a free one).
    pub fn serve(
        &self,
        addr: &str,
        stop: Arc<AtomicBool>,
        health: impl Fn() -> Health + Send + Sync + 'static,
    ) -> Result<SocketAddr, String> {
        let health = Arc::new(health);
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("options.metrics_listen {addr:?}: {e}"))?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("options.metrics_listen {addr}: cannot listen: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        self.up.with_label_values(&[self.project.as_str()]).set(1);
        let me = self.clone();
        std::thread::Builder::new()
            .name("sluice-metrics".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let page = me.clone();
                    let app = axum::Router::new()
                        .route(
                            "/metrics",
                            axum::routing::get(move || {
                                let m = page.clone();
                                async move {
                                    ([("content-type", "text/plain; version=0.0.4")], m.render())
                                }
                            }),
                        )
                        .route(
                            "/health",
                            axum::routing::get(move || {
                                let h = health.clone();
                                async move {
                                    let Health { ok, text } = h();
                                    let code = if ok {
                                        axum::http::StatusCode::OK
                                    } else {
                                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                                    };
                                    (code, format!("{text}\n"))
                                }
                            }),
                        );
                    let rates = me.clone();
                    let stop2 = stop.clone();
                    tokio::spawn(async move {
                        let mut last = Vec::new();
                        let mut at = Instant::now();
                        loop {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            if stop2.load(Ordering::SeqCst) {
                                break;
                            }
                            rates.update_rates(&mut last, at.elapsed().as_secs_f64());
                            at = Instant::now();
                        }
                    });
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            while !stop.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        })
                        .await;
                });
            })
            .map_err(|e| e.to_string())?;
        Ok(bound)
    }
}

/// What `/health` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Healthy (200) or not (503).
    pub ok: bool,
    /// `ok`, or what is wrong.
    pub text: String,
}

impl Health {
    /// The health of a project from the state and message of each of its runs (one, or one
    /// per part of a sharded project): unhealthy when any has Failed or is retrying its
    /// destination; otherwise `ok` (Running, Paused, Completed, Stopped alike).
    pub fn of<'a>(runs: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Health {
        let wrong: Vec<String> = runs
            .into_iter()
            .filter(|(_, state, message)| *state == "Failed" || message.starts_with("retrying"))
            .map(|(name, state, message)| format!("{name}: {state}: {message}"))
            .collect();
        if wrong.is_empty() {
            Health {
                ok: true,
                text: "ok".into(),
            }
        } else {
            Health {
                ok: false,
                text: wrong.join("\n"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_bad_while_retrying_or_failed() {
        assert!(Health::of([("p", "Running", "")]).ok);
        assert!(Health::of([("p", "Paused", "")]).ok);
        let h = Health::of([("p", "Running", "retrying: destination: connection refused")]);
        assert!(!h.ok);
        assert!(h.text.contains("connection refused"), "{h:?}");
        let h = Health::of([("p.a", "Running", ""), ("p.b", "Failed", "source: purged")]);
        assert_eq!(
            h,
            Health {
                ok: false,
                text: "p.b: Failed: source: purged".into()
            }
        );
    }

    #[test]
    fn the_page_names_project_component_and_values() {
        let m = Metrics::new("p1").expect("families");
        m.add("writer", 3, 120);
        m.error("writer");
        m.position(
            "reader",
            &Position::new("binlog", "mariadb-bin.000042", 777),
        );
        m.full("shop.orders", 10, 20);
        m.checkpoint(1_000);
        let page = m.render();
        for want in [
            "sluice_rows_total{component=\"writer\",project=\"p1\"} 3",
            "sluice_bytes_total{component=\"writer\",project=\"p1\"} 120",
            "sluice_errors_total{component=\"writer\",project=\"p1\"} 1",
            "sluice_position_file_index{component=\"reader\",project=\"p1\"} 42",
            "sluice_position_offset{component=\"reader\",project=\"p1\"} 777",
            "sluice_full_rows_done{project=\"p1\",table=\"shop.orders\"} 10",
            "sluice_checkpoint_timestamp_seconds{project=\"p1\"} 1",
        ] {
            assert!(page.contains(want), "no {want} in\n{page}");
        }
        assert!(page.contains("sluice_latency_seconds{project=\"p1\"}"));
    }
}
