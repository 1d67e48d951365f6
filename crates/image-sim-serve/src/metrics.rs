//! Prometheus metrics, kept with atomics and small maps, written in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the request latency histogram.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds of the batch size histogram.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A cumulative histogram.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum in micro-units (µs or 1e-6 items) to stay an integer.
    sum_micro: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micro
            .fetch_add((v * 1e6).round() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Metrics of one served collection's model thread.
#[derive(Debug)]
pub(crate) struct ModelMetrics {
    pub(crate) batch_size: Histogram,
    pub(crate) rejected: AtomicU64,
    pub(crate) embedded: AtomicU64,
}

impl ModelMetrics {
    pub(crate) fn new() -> Self {
        Self {
            batch_size: Histogram::new(&BATCH_BUCKETS),
            rejected: AtomicU64::new(0),
            embedded: AtomicU64::new(0),
        }
    }
}

/// Request metrics of the whole service.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
}

impl Metrics {
    pub(crate) fn record(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), status)).or_default() += 1;
        }
        let h = self.latency.lock().ok().map(|mut m| {
            m.entry(route.to_string())
                .or_insert_with(|| std::sync::Arc::new(Histogram::new(&LATENCY_BUCKETS)))
                .clone()
        });
        if let Some(h) = h {
            h.observe(seconds);
        }
    }

    /// The exposition text: request counts and latencies, then per-collection lines given by
    /// `collections` as (name, rows, queue depth, model metrics).
    pub(crate) fn render(&self, collections: &[(String, usize, usize, &ModelMetrics)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP image_sim_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE image_sim_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "image_sim_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP image_sim_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE image_sim_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                let labels = format!("route=\"{}\"", escape(route));
                h.write(&mut out, "image_sim_request_duration_seconds", &labels);
            }
        }
        // One line per collection: (name, rows, queue depth, model metrics) → value.
        type Line<'a> = (String, usize, usize, &'a ModelMetrics);
        let per_collection =
            |out: &mut String, name: &str, help: &str, kind: &str, value: &dyn Fn(&Line) -> u64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for c in collections {
                    let _ = writeln!(
                        out,
                        "{name}{{collection=\"{}\"}} {}",
                        escape(&c.0),
                        value(c)
                    );
                }
            };
        per_collection(
            &mut out,
            "image_sim_collection_rows",
            "Vectors in each served collection.",
            "gauge",
            &|c| c.1 as u64,
        );
        per_collection(
            &mut out,
            "image_sim_embed_queue_depth",
            "Images waiting for the model.",
            "gauge",
            &|c| c.2 as u64,
        );
        per_collection(
            &mut out,
            "image_sim_embed_rejected_total",
            "Images refused with 503 because the queue was full.",
            "counter",
            &|c| c.3.rejected.load(Ordering::Relaxed),
        );
        per_collection(
            &mut out,
            "image_sim_embedded_images_total",
            "Images embedded by the model.",
            "counter",
            &|c| c.3.embedded.load(Ordering::Relaxed),
        );
        out.push_str("# HELP image_sim_embed_batch_size Images per model forward pass.\n");
        out.push_str("# TYPE image_sim_embed_batch_size histogram\n");
        for (name, _, _, m) in collections {
            let labels = format!("collection=\"{}\"", escape(name));
            m.batch_size
                .write(&mut out, "image_sim_embed_batch_size", &labels);
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
