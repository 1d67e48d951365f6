//! The benchmark's outputs: a Markdown table on standard output and the figures as JSON.

use std::path::Path;

use anyhow::Context;
use embed_pipeline::Extraction;
use embed_torch::Precision;

use super::agreement::Agreement;
use super::baseline::Python;
use super::measure::Figures;

/// Everything one `bench` run measured.
pub(super) struct Results<'a> {
    pub(super) model_id: &'a str,
    pub(super) images: usize,
    pub(super) batch: usize,
    pub(super) workers: usize,
    pub(super) cuda: bool,
    pub(super) precision: Precision,
    /// Times the image list was decoded in the timed decode run.
    pub(super) passes: usize,
    pub(super) rust: Figures,
    pub(super) e2e: &'a Extraction,
    pub(super) fast: Option<&'a (Figures, Agreement)>,
    pub(super) vs_f32: Option<&'a Agreement>,
    pub(super) python: Option<&'a Python>,
    pub(super) steady: Option<f64>,
    pub(super) in_model: f64,
    pub(super) waiting: f64,
}

impl Results<'_> {
    /// The table: each rate with Python's and the ratio when the baseline ran.
    pub(super) fn print_table(&self) {
        let Results {
            batch,
            passes,
            rust,
            e2e,
            fast,
            vs_f32,
            python,
            steady,
            in_model,
            waiting,
            cuda,
            precision,
            ..
        } = *self;
        println!(
            "| images/s ({}, {} images, batch {batch}) | Rust | Python | Rust / Python |",
            self.model_id, self.images
        );
        println!("|---|---:|---:|---:|");
        let decode_label = if passes > 1 {
            format!("decode + preprocess (Rust: the images {passes} times)")
        } else {
            "decode + preprocess".to_string()
        };
        let rows = [
            (
                decode_label.as_str(),
                rust.decode_preprocess,
                python.map(|p| p.figures.decode_preprocess),
            ),
            (
                "model only",
                rust.model_only,
                python.map(|p| p.figures.model_only),
            ),
            (
                "end to end",
                rust.end_to_end,
                python.map(|p| p.figures.end_to_end),
            ),
        ];
        // A rate row: Rust, and Python with the ratio when there is a baseline.
        let rate_row = |name: &str, r: f64, p: Option<f64>| match p {
            Some(p) => println!("| {name} | {r:.1} | {p:.1} | {:.2}× |", r / p),
            None => println!("| {name} | {r:.1} | | |"),
        };
        for (name, r, p) in rows {
            rate_row(name, r, p);
        }
        if let Some(p) = python {
            let seed = p.seed_style;
            println!(
                "| seed-style (one image at a time) | | {seed:.1} | {:.2}× |",
                rust.end_to_end / seed
            );
        }
        if let Some((f, a)) = fast {
            let py = python.map(|p| p.figures);
            for (name, r, p) in [
                (
                    "decode + preprocess, fast JPEG (Python: exact)",
                    f.decode_preprocess,
                    py.map(|p| p.decode_preprocess),
                ),
                (
                    "end to end, fast JPEG (Python: exact)",
                    f.end_to_end,
                    py.map(|p| p.end_to_end),
                ),
            ] {
                rate_row(name, r, p);
            }
            println!(
                "| fast JPEG vs exact embeddings: cosine mean / min | {:.6} / {:.6} | | |",
                a.mean_cosine, a.min_cosine
            );
            println!(
                "| fast JPEG embedding's nearest exact one is its own image | {} of {} | | |",
                a.self_top1, a.rows
            );
            println!(
                "| images too small for the fast mode (embeddings bit-identical) | {} of {} | | |",
                a.identical, a.rows
            );
            println!(
                "| (for scale) cosine between different images' exact embeddings, mean / max | {:.6} / {:.6} | | |",
                a.other_mean_cosine, a.other_max_cosine
            );
        }
        if let Some(a) = vs_f32 {
            let p = precision.as_str();
            println!(
                "| {p} vs f32 embeddings: cosine mean / min | {:.6} / {:.6} | | |",
                a.mean_cosine, a.min_cosine
            );
            println!(
                "| {p} embedding's nearest f32 one is its own image | {} of {} | | |",
                a.self_top1, a.rows
            );
            println!(
                "| (for scale) cosine between different images' f32 embeddings, mean / max | {:.6} / {:.6} | | |",
                a.other_mean_cosine, a.other_max_cosine
            );
        }
        let py_ratio = python.map(|p| p.figures.end_to_end / p.figures.model_only);
        println!(
            "| end to end / model only{} | {:.2} | {} | |",
            if cuda {
                " (the GPU's busy fraction, estimated: the share of the wall it computes at its model-only rate)"
            } else {
                ""
            },
            rust.end_to_end / rust.model_only,
            py_ratio.map(|r| format!("{r:.2}")).unwrap_or_default()
        );
        println!(
            "| end to end: model thread in model calls / waiting for decoded batches (fraction of wall{}) | {in_model:.2} / {waiting:.2} | | |",
            if cuda {
                "; on CUDA, calls queue the work and wait for results"
            } else {
                ""
            }
        );
        if let Some(r) = steady {
            println!(
                "| end to end, steady (from the first batch's arrival at the model to the last's) | {r:.1} | | |"
            );
        }
        println!(
            "| end to end: set-up (batch buffers) / first batch ready, ms | {:.0} / {:.0} | | |",
            e2e.stats.setup.as_secs_f64() * 1e3,
            e2e.stats.first_batch.as_secs_f64() * 1e3
        );
    }

    /// Writes every figure as JSON to `path`.
    pub(super) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let Results {
            rust,
            e2e,
            fast,
            vs_f32,
            python,
            steady,
            in_model,
            waiting,
            ..
        } = *self;
        let v = serde_json::json!({
            "model": self.model_id, "images": self.images, "batch_size": self.batch,
            "workers": self.workers, "cuda": self.cuda,
            "rust": rust,
            "end_to_end_stats": {
                "wall_s": e2e.stats.wall.as_secs_f64(),
                "model_calls_fraction": in_model,
                "waiting_for_batches_fraction": waiting,
                "setup_ms": e2e.stats.setup.as_secs_f64() * 1e3,
                "first_batch_ms": e2e.stats.first_batch.as_secs_f64() * 1e3,
                "last_batch_ms": e2e.stats.last_batch.as_secs_f64() * 1e3,
                "steady": steady,
            },
            "fast_jpeg": fast.map(|(f, a)| serde_json::json!({
                "rust": f, "agreement_with_exact": a,
            })),
            "agreement_with_f32": vs_f32,
            "python": python.map(|p| p.raw.clone()),
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
