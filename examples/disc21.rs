//! The DISC21 benchmark end to end through the library: generate a DISC21-shaped folder, run
//! CLIP and DINOv2 over it, write the report, and open it when a display exists.
//!
//! ```text
//! cargo run --release --example disc21 -- OUT_DIR [--weights-clip DIR_OR_ID]
//!     [--weights-dinov2 DIR_OR_ID] [--references N] [--queries N] [--test-model] [--force]
//! ```
//!
//! `--test-model` replaces both encoders with the weightless grid-mean embedder that
//! `disc21-eval run --test-model` uses, so the example runs without any checkpoint.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use disc21_eval::benchmark::{BenchModel, RunOptions, StatusFn, run_benchmark};
use disc21_eval::dataset::{EvalSet, Layout, LayoutOverrides, Protocol};
use disc21_eval::generate::{GenerateOptions, generate};
use disc21_eval::report::{GalleryOptions, MachineInfo, ReportInfo, write_report};
use embed_core::{Embedder, PreprocessSpec};
use embed_pipeline::Model;
use embed_pipeline::test_model::GridMeanEmbedder;
use image_sim::ModelKind;
use image_sim::models::{ModelOptions, load};

/// Generate a DISC21-shaped data set, benchmark CLIP and DINOv2 on it, write the report.
#[derive(Parser)]
struct Args {
    /// Working folder: the data set goes to OUT/data, the report to OUT/report.
    out: PathBuf,
    /// CLIP checkpoint folder or Hugging Face id (default: openai/clip-vit-base-patch32).
    #[arg(long)]
    weights_clip: Option<String>,
    /// DINOv2 checkpoint folder or Hugging Face id (default: facebook/dinov2-base).
    #[arg(long)]
    weights_dinov2: Option<String>,
    /// Generated references.
    #[arg(long, default_value_t = 60)]
    references: usize,
    /// Generated queries (half of them copies).
    #[arg(long, default_value_t = 30)]
    queries: usize,
    /// Use weightless grid-mean embedders instead of the real models.
    #[arg(long)]
    test_model: bool,
    /// Replace an existing data set and report in OUT.
    #[arg(long)]
    force: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let data = args.out.join("data");
    let report = args.out.join("report");

    let summary = generate(
        &data,
        &GenerateOptions {
            references: args.references,
            queries: args.queries,
            force: args.force,
            ..GenerateOptions::default()
        },
    )?;
    println!(
        "generated {} references and {} queries ({} copies) in {}",
        summary.references,
        summary.queries,
        summary.copies,
        data.display()
    );

    let layout = Layout::detect(&data, &LayoutOverrides::default())?;
    let set = EvalSet::load(layout, Protocol::Official)?;

    // One boxed `Embedder` per model: the benchmark takes any implementation of the trait.
    // (name, weights as given, digest of the weights' files, model)
    let mut loaded: Vec<(&str, String, String, Box<dyn Embedder>)> = Vec::new();
    for (i, (name, kind, weights)) in [
        ("clip", ModelKind::Clip, &args.weights_clip),
        ("dinov2", ModelKind::Dinov2, &args.weights_dinov2),
    ]
    .into_iter()
    .enumerate()
    {
        if args.test_model {
            let spec = match kind {
                ModelKind::Clip => PreprocessSpec::clip(),
                ModelKind::Dinov2 => PreprocessSpec::dinov2(),
            };
            let model = GridMeanEmbedder::new(spec, 4 + i);
            loaded.push((
                name,
                model.model_id().to_string(),
                "test".into(),
                Box::new(model),
            ));
        } else {
            let options = ModelOptions {
                weights: weights.clone(),
                device: Some("cpu".into()),
                ..ModelOptions::default()
            };
            let model = load(kind, &options)?;
            let w = weights
                .clone()
                .unwrap_or_else(|| kind.default_weights().to_string());
            let digest = model.weights_digest()?;
            loaded.push((name, w, digest, model.embedder));
        }
    }
    let models = loaded
        .iter()
        .map(|(name, weights, digest, model)| BenchModel {
            name: (*name).to_string(),
            // On the CPU (as loaded above) the host path is the right one.
            model: Model::Host(model.as_ref()),
            weights: weights.clone(),
            weights_hash: digest.clone(),
            extra: String::new(),
            random_weights: false,
        })
        .collect::<Vec<_>>();

    let mut options = RunOptions::new(args.out.join("cache"));
    options.status = Some(StatusFn::new(|line| eprintln!("{line}")));
    let result = run_benchmark(&set, &models, &options)?;
    let info = ReportInfo {
        machine: MachineInfo::detect("cpu"),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_report(
        &report,
        &set,
        &result,
        &info,
        &GalleryOptions::default(),
        args.force,
    )?;
    for m in &result.models {
        println!(
            "{:>8}: accuracy {:.4}  top-3 {:.4}  µAP {:.4}  ({})",
            m.name, m.metrics.accuracy, m.metrics.top3_accuracy, m.metrics.micro_ap, m.model_id
        );
    }
    let md = report.join("report.md");
    println!("report: {}", md.display());
    let display = std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty());
    if display {
        // Best effort: a desktop without xdg-open just keeps the printed path.
        let _ = std::process::Command::new("xdg-open").arg(&md).spawn();
    }
    Ok(())
}
