//! `disc21-eval generate`: writes a small DISC21-shaped data set.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::generate::{GenerateOptions, OutputLayout, QueryKind, generate};

/// Arguments of `disc21-eval generate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of reference images.
    #[arg(long, default_value_t = 200, value_parser = image_sim::cli::at_least_one)]
    pub references: usize,
    /// Number of query images.
    #[arg(long, default_value_t = 100)]
    pub queries: usize,
    /// Fraction of the queries that copy a reference; the rest have no copy.
    #[arg(long, default_value_t = 0.5, value_parser = image_sim::cli::fraction)]
    pub copy_fraction: f64,
    /// Random seed: the same seed and options give the same files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `edited` (1–3 random edits per copy) or `exact` (byte-identical copies).
    #[arg(long, default_value = "edited", value_parser = |s: &str| s.parse::<QueryKind>())]
    pub query_kind: QueryKind,
    /// Folder layout to write: `official` or `sscd`.
    #[arg(long, default_value = "official", value_parser = |s: &str| s.parse::<OutputLayout>())]
    pub layout: OutputLayout,
    /// Smallest image side in pixels.
    #[arg(long, default_value_t = 160, value_parser = picture_side)]
    pub min_side: u32,
    /// Largest image side in pixels.
    #[arg(long, default_value_t = 384, value_parser = picture_side)]
    pub max_side: u32,
    /// Replace an existing data set in `--out`.
    #[arg(long)]
    pub force: bool,
}

/// A generated picture's side: 32 to [`crate::generate::MAX_SIDE`] pixels.
fn picture_side(s: &str) -> Result<u32, String> {
    image_sim::cli::parse_in(s, 32, crate::generate::MAX_SIDE as usize).map(|v| v as u32)
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = GenerateOptions {
        references: args.references,
        queries: args.queries,
        copy_fraction: args.copy_fraction,
        seed: args.seed,
        query_kind: args.query_kind,
        layout: args.layout,
        min_side: args.min_side,
        max_side: args.max_side,
        force: args.force,
        ..GenerateOptions::default()
    };
    let start = std::time::Instant::now();
    let summary = generate(&args.out, &options)?;
    println!(
        "wrote {} references and {} queries ({} copies) to {} in {:.1} s; ground truth: {}",
        summary.references,
        summary.queries,
        summary.copies,
        args.out.display(),
        start.elapsed().as_secs_f64(),
        summary.ground_truth.display()
    );
    Ok(ExitCode::SUCCESS)
}
