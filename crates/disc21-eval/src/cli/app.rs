//! The `disc21-eval` command line: its commands and which of them need libtorch.
//!
//! Exit codes: 0 success, 1 failure (the error is printed on standard error), 2 usage error
//! (unknown flag, missing argument: clap's own code). Logs go to standard error, filtered by
//! `RUST_LOG` (default `warn`); `--quiet` silences everything but the final error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use image_sim::cli::{GlobalArgs, bench, embed, index, merge, preprocess, search};

use super::{generate, metrics, run};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  failure (the error is printed on standard error)
  2  usage error (unknown flag, missing or invalid argument)

Environment:
  RUST_LOG        log filter, e.g. `RUST_LOG=debug` or `RUST_LOG=disc21_eval=info` (default: warn)
  HF_HOME, HF_HUB_CACHE
                  where model ids are looked up (default ~/.cache/huggingface/hub)
  HF_HUB_OFFLINE  `1`: never download weights (same as --offline)

Outputs are never overwritten unless --force is given.

Example:
  disc21-eval generate --out data --references 200 --queries 100
  disc21-eval run --data data --out report";

/// CLIP vs DINOv2 on DISC21: preprocess, embed, index, search, score and report.
#[derive(Parser, Debug)]
#[command(name = "disc21-eval", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `disc21-eval`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the exact float32 tensor (1×3×H×W) a model would see for an image, as .npy.
    #[command(after_help = "Example:\n  \
        disc21-eval preprocess --model clip assets/sample_a.jpg --out pixels.npy")]
    Preprocess(preprocess::Args),
    /// Embed a folder or list of images with CLIP or DINOv2 into an N×D .npy.
    #[command(after_help = "Example:\n  \
        disc21-eval embed --model dinov2 --weights facebook/dinov2-base --images data/references --out refs.npy\n\n\
        Writes refs.npy, refs.ids.txt, refs.skipped.csv (unreadable images and why) and refs.meta.json.")]
    Embed(embed::Args),
    /// Build a flat (FAISS file) or HNSW index from embeddings.
    #[command(after_help = "Example:\n  \
        disc21-eval index --embeddings refs.npy --ids refs.ids.txt --kind flat --out refs.faiss")]
    Index(index::Args),
    /// Search an index with query embeddings and write predictions as CSV.
    #[command(after_help = "Example:\n  \
        disc21-eval search --index refs.faiss --queries queries.npy --query-ids queries.ids.txt --k 10 --out predictions.csv")]
    Search(search::Args),
    /// Score predictions against ground truth (µAP, recall@P90, accuracy, ...).
    #[command(after_help = "Example:\n  \
        disc21-eval metrics --predictions predictions.csv --ground-truth data/public_ground_truth.csv --json")]
    Metrics(metrics::Args),
    /// Generate a small DISC21-shaped data set (references, transformed queries, ground truth).
    #[command(after_help = "Example:\n  \
        disc21-eval generate --out data --references 200 --queries 100 --seed 0")]
    Generate(generate::Args),
    /// Run the whole benchmark on a DISC21 folder and write a report.
    #[command(after_help = "Example:\n  \
        disc21-eval run --data data --models clip,dinov2 --out report\n\n\
        Weights default to openai/clip-vit-base-patch32 and facebook/dinov2-base in the local \
        Hugging Face cache; pass --weights-clip / --weights-dinov2 for folders.")]
    Run(run::Args),
    /// Measure decode, preprocess, model and end-to-end throughput.
    #[command(after_help = "Example:\n  \
        disc21-eval bench --model dinov2 --images data/references --device cpu")]
    Bench(bench::Args),
    /// Join the embedding files of `embed --shard I/N` runs.
    #[command(after_help = "Example:\n  \
        disc21-eval merge shard0.npy shard1.npy --out refs.npy")]
    Merge(merge::Args),
}

impl Command {
    /// Whether the command runs a model (and so needs libtorch).
    pub fn needs_model(&self) -> bool {
        matches!(
            self,
            Command::Embed(_) | Command::Bench(_) | Command::Run(_)
        )
    }

    /// Runs a command that runs no model; `None` for the others.
    pub fn run_without_model(self) -> Option<anyhow::Result<ExitCode>> {
        Some(match self {
            Command::Preprocess(a) => preprocess::run(a),
            Command::Index(a) => index::run(a),
            Command::Search(a) => search::run(a),
            Command::Metrics(a) => metrics::run(a),
            Command::Generate(a) => generate::run(a),
            Command::Merge(a) => merge::run(a),
            Command::Embed(_) | Command::Bench(_) | Command::Run(_) => return None,
        })
    }

    /// Runs any command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Embed(a) => embed::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Run(a) => run::run(a),
            other => other
                .run_without_model()
                .unwrap_or_else(|| Err(anyhow::anyhow!("unreachable: a model command"))),
        }
    }
}
