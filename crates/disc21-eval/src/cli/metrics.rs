//! `disc21-eval metrics`: scores a predictions CSV against a ground-truth CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::metrics::{EvalOptions, Metrics, evaluate_files};
use anyhow::Context as _;

/// Arguments of `disc21-eval metrics`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Predictions: `query_id,reference_id,score` (greater score = more similar).
    #[arg(long, value_name = "P.csv")]
    pub predictions: PathBuf,
    /// Ground truth: `query_id,reference_id` (an empty reference = a query with no copy).
    #[arg(long, value_name = "GT.csv")]
    pub ground_truth: PathBuf,
    /// The k of the top-k accuracy.
    #[arg(long, default_value_t = 5, value_parser = image_sim::cli::at_least_one)]
    pub top_k: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let metrics = evaluate_files(
        &args.predictions,
        &args.ground_truth,
        &EvalOptions { top_k: args.top_k },
    )
    .context("scoring predictions")?;
    if metrics.n_predictions == 0 {
        eprintln!(
            "warning: {} holds no prediction: every metric is 0",
            args.predictions.display()
        );
    } else if metrics.n_true_predictions == 0 && metrics.n_gt_pairs > 0 {
        eprintln!(
            "warning: none of the {} predictions is a ground-truth pair: check that their query \
             and reference ids are the ground truth's (an index searched without its `.ids` \
             sidecar gives row numbers as reference ids)",
            metrics.n_predictions
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
    } else {
        print!("{}", table(&metrics));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(m: &Metrics) -> String {
    let p90 = match m.threshold_at_p90 {
        Some(t) => format!("{:.5} (threshold {t})", m.recall_at_p90),
        None => "not reached (0)".to_string(),
    };
    format!(
        "{} predictions, {} ground-truth queries, {} with a copy ({} pairs)\n\
         accuracy (top-1)   {:.5}\n\
         top-3 accuracy     {:.5}\n\
         top-{} accuracy     {:.5}\n\
         µAP                {:.5}\n\
         recall@P90         {p90}\n\
         recall@1           {:.5}\n\
         recall@10          {:.5}\n",
        m.n_predictions,
        m.n_gt_queries,
        m.n_queries,
        m.n_gt_pairs,
        m.accuracy,
        m.top3_accuracy,
        m.top_k,
        m.topk_accuracy,
        m.micro_ap,
        m.recall_at_1,
        m.recall_at_10,
    )
}
