//! `disc21-eval`: the command line of the image-sim workspace.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// CLIP vs DINOv2 on DISC21: preprocess, embed, index, search, score and report.
#[derive(Parser, Debug)]
#[command(name = "disc21-eval", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the exact float32 tensor (1×3×H×W) a model would see for an image, as .npy.
    Preprocess(commands::preprocess::Args),
    /// Embed a folder or list of images with CLIP or DINOv2 into an N×D .npy.
    Embed(commands::embed::Args),
    /// Build a flat (FAISS file) or HNSW index from embeddings.
    Index(commands::index::Args),
    /// Search an index with query embeddings and write predictions as CSV.
    Search(commands::search::Args),
    /// Score predictions against ground truth (µAP, recall@P90, accuracy, ...).
    Metrics(commands::metrics::Args),
    /// Generate a small DISC21-shaped data set (references, transformed queries, ground truth).
    Generate(commands::generate::Args),
    /// Run the whole benchmark on a DISC21 folder and write a report.
    Run(commands::run::Args),
    /// Measure decode, preprocess, model and end-to-end throughput.
    Bench(commands::bench::Args),
    /// Join the embedding files of `embed --shard I/N` runs.
    Merge(commands::merge::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Preprocess(args) => commands::preprocess::run(args),
        Command::Embed(args) => commands::embed::run(args),
        Command::Index(args) => commands::index::run(args),
        Command::Search(args) => commands::search::run(args),
        Command::Metrics(args) => commands::metrics::run(args),
        Command::Generate(args) => commands::generate::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Merge(args) => commands::merge::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
