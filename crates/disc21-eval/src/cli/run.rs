//! `disc21-eval run`: the whole benchmark on a DISC21 folder, written as a report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use embed_core::{Embedder, PreprocessSpec};
use embed_pipeline::test_model::GridMeanEmbedder;
use embed_pipeline::{ExtractOptions, Model};
use embed_torch::TorchEmbedder;
use image_sim::ModelKind;
use image_sim::cli::progress::TerminalProgress;
use image_sim::cli::{RuntimeArgs, at_least_one, model_kind};
use image_sim::models::{ModelOptions, load};

use crate::benchmark::{BenchModel, IndexChoice, RunOptions, StatusFn, run_benchmark};
use crate::dataset::{EvalSet, Layout, LayoutOverrides, Protocol, ReferenceSelection};
use crate::report::{GalleryOptions, MachineInfo, ReportInfo, check_output, write_report};

/// Which protocol to evaluate.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolArg {
    /// The study's: references R000000–R149999 (or `--references`), queries whose copy is among
    /// them; accuracy and top-3 accuracy.
    Study,
    /// ISC2021's: all references and all ground-truth queries, with or without a copy; µAP.
    Official,
}

/// Arguments of `disc21-eval run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The DISC21 folder (official or SSCD layout).
    #[arg(long)]
    pub data: PathBuf,
    /// Models to compare, comma-separated.
    #[arg(long, value_parser = model_kind, value_delimiter = ',', default_value = "clip,dinov2")]
    pub models: Vec<ModelKind>,
    /// CLIP checkpoint folder or Hugging Face id (default: openai/clip-vit-base-patch32).
    #[arg(long)]
    pub weights_clip: Option<String>,
    /// DINOv2 checkpoint folder or Hugging Face id (default: facebook/dinov2-base).
    #[arg(long)]
    pub weights_dinov2: Option<String>,
    /// Report folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Index: exact (`flat`) or approximate (`hnsw`).
    #[arg(long, default_value = "flat", value_parser = |s: &str| s.parse::<IndexChoice>())]
    pub index: IndexChoice,
    /// Protocol.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Study)]
    pub protocol: ProtocolArg,
    /// References of the study's protocol: `N` (the first N), `START-END` (e.g.
    /// R000000-R149999, the default) or `all`.
    #[arg(long)]
    pub references: Option<ReferenceSelection>,
    /// Device, precision and decoding threads. On CUDA the exact search runs there too.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Images per model call (default: 256 on CUDA, 32 on the CPU).
    #[arg(long, value_parser = at_least_one)]
    pub batch_size: Option<usize>,
    /// Neighbours retrieved per query (predictions scored).
    #[arg(long, default_value_t = 10, value_parser = at_least_one)]
    pub k: usize,
    /// The k of the top-k accuracy (the study's 5).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    pub top_k: usize,
    /// Embedding cache (default: OUT/cache). Reused by later runs with the same models and
    /// images; an interrupted extraction resumes from it.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Queries shown in the gallery.
    #[arg(long, default_value_t = 8)]
    pub gallery_queries: usize,
    /// References folder (overrides detection).
    #[arg(long)]
    pub references_dir: Option<PathBuf>,
    /// Queries folder (overrides detection).
    #[arg(long)]
    pub queries_dir: Option<PathBuf>,
    /// Ground-truth CSV (overrides detection).
    #[arg(long)]
    pub ground_truth: Option<PathBuf>,
    /// Overwrite an existing report in OUT.
    #[arg(long)]
    pub force: bool,
    /// Replace every model by a weightless grid-mean embedder of this grid size (tests, dry
    /// runs of the data and report stages).
    #[arg(long, hide = true, value_parser = at_least_one)]
    pub test_model: Option<usize>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    check_output(&args.out, args.force)?;
    if args.models.is_empty() {
        bail!("--models lists no model");
    }
    let overrides = LayoutOverrides {
        references: args.references_dir.clone(),
        queries: args.queries_dir.clone(),
        ground_truth: args.ground_truth.clone(),
    };
    let layout = Layout::detect(&args.data, &overrides)?;
    let protocol = match args.protocol {
        ProtocolArg::Study => Protocol::Study {
            references: args
                .references
                .clone()
                .unwrap_or_else(ReferenceSelection::study_default),
        },
        ProtocolArg::Official => {
            if args.references.is_some() {
                bail!(
                    "--references applies to the study's protocol; the official one uses every reference"
                );
            }
            Protocol::Official
        }
    };
    let t = Instant::now();
    let set = EvalSet::load(layout, protocol)?;
    eprintln!(
        "data: {:?} layout, protocol {}: {} references, {} queries ({} with a copy), listed in {:.2} s",
        set.layout.kind,
        set.protocol,
        set.references.len(),
        set.queries.len(),
        set.ground_truth.n_queries_with_copy(),
        t.elapsed().as_secs_f64()
    );
    if set.ground_truth.n_pairs() == 0 {
        bail!("no query has a copy among the selected references: nothing to score");
    }

    // Load every model first (fails early on a bad checkpoint).
    enum Loaded {
        Torch(Box<dyn TorchEmbedder>),
        Host(Box<dyn Embedder>),
    }
    // (family, weights as given, weights digest, random weights, cache extra, model)
    let mut loaded: Vec<(ModelKind, String, String, bool, String, Loaded)> = Vec::new();
    let mut search_device = None;
    for (i, &kind) in args.models.iter().enumerate() {
        let weights = match kind {
            ModelKind::Clip => args.weights_clip.clone(),
            ModelKind::Dinov2 => args.weights_dinov2.clone(),
        };
        if let Some(grid) = args.test_model {
            let spec = match kind {
                ModelKind::Clip => PreprocessSpec::clip(),
                ModelKind::Dinov2 => PreprocessSpec::dinov2(),
            };
            let model = GridMeanEmbedder::new(spec, grid + i);
            let id = model.model_id().to_string();
            loaded.push((
                kind,
                id,
                "test".to_string(),
                false,
                format!("extra=test-grid-{}", grid + i),
                Loaded::Host(Box::new(model)),
            ));
            continue;
        }
        let options = ModelOptions {
            weights: weights.clone(),
            device: args.runtime.device.clone(),
            precision: args.runtime.precision.clone(),
            pooling: None,
        };
        let model = load(kind, &options)?;
        if model.embedder.device().is_cuda() {
            search_device = Some(model.embedder.device());
        }
        let w = weights.unwrap_or_else(|| kind.default_weights().to_string());
        let digest = model.weights_digest()?;
        if model.random_weights() {
            eprintln!(
                "{kind}: the checkpoint in {} has random weights (its scores say nothing about {kind}); \
                 the report labels it so",
                model.dir.display()
            );
        }
        loaded.push((
            kind,
            w,
            digest,
            model.random_weights(),
            format!(
                "precision={:?}{}",
                args.runtime.precision,
                args.runtime.cache_tag()
            ),
            Loaded::Torch(model.embedder),
        ));
    }
    let mut models = Vec::new();
    for (kind, weights, digest, random_weights, extra, model) in &loaded {
        let model = match model {
            Loaded::Torch(m) => Model::Torch(m.as_ref()),
            Loaded::Host(m) => Model::Host(m.as_ref()),
        };
        models.push(BenchModel {
            name: kind.name().to_string(),
            model,
            weights: weights.clone(),
            weights_hash: digest.clone(),
            extra: extra.clone(),
            random_weights: *random_weights,
        });
    }

    let mut options = RunOptions::new(
        args.cache_dir
            .clone()
            .unwrap_or_else(|| args.out.join("cache")),
    );
    options.search_k = args.k;
    options.eval_k = args.top_k;
    options.index = args.index;
    options.search_device = search_device;
    let progress = TerminalProgress::new("images");
    let points = TerminalProgress::new("points");
    options.index_progress = Some(points.pipeline_callback());
    // A stage line ends the stage's progress line first.
    let (p, q) = (progress.clone(), points.clone());
    options.status = Some(StatusFn::new(move |line| {
        p.finish();
        q.finish();
        eprintln!("{line}");
    }));
    options.extract = ExtractOptions {
        progress: Some(progress.pipeline_callback()),
        workers: args.runtime.workers,
        batch_size: args.batch_size.unwrap_or_else(|| {
            models
                .iter()
                .map(|m| m.model.default_batch_size())
                .min()
                .unwrap_or(32)
        }),
        resize_on: args.runtime.resize_on,
        fast_jpeg: args.runtime.fast_jpeg,
        ..ExtractOptions::default()
    };
    let result = run_benchmark(&set, &models, &options);
    progress.finish();
    points.finish();
    let result = result?;

    let device = match search_device {
        Some(tch::Device::Cuda(i)) => format!("cuda:{i}"),
        _ if args.test_model.is_some() => "cpu (test model)".to_string(),
        _ => "cpu".to_string(),
    };
    let info = ReportInfo {
        machine: MachineInfo::detect(&device),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_unix,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    let gallery = GalleryOptions {
        queries: args.gallery_queries,
        ..GalleryOptions::default()
    };
    write_report(&args.out, &set, &result, &info, &gallery, args.force)?;
    for m in &result.models {
        println!(
            "{:>8}: accuracy {:.4}  top-3 {:.4}  top-{} {:.4}  µAP {:.4}  recall@P90 {:.4}",
            m.label(),
            m.metrics.accuracy,
            m.metrics.top3_accuracy,
            m.metrics.top_k,
            m.metrics.topk_accuracy,
            m.metrics.micro_ap,
            m.metrics.recall_at_p90
        );
    }
    println!("report: {}", args.out.join("report.md").display());
    Ok(ExitCode::SUCCESS)
}
