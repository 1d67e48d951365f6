//! `embed`: a folder or list of images to an `N × D` float32 `.npy`, with ids and a list of
//! skipped images, resumable after a crash. Parsed by every binary; run where libtorch is
//! (feature `torch`).

#[cfg(feature = "torch")]
mod command;

use std::path::PathBuf;

#[cfg(feature = "torch")]
pub use command::{run, write_outputs};
use embed_pipeline::Transfer;

/// Arguments of `embed`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: family, weights, pooling.
    #[command(flatten)]
    pub model: crate::cli::extraction::ModelArgs,
    /// Embed every file of this folder (not recursive), in file-name order.
    #[arg(long, conflicts_with = "list", required_unless_present = "list")]
    pub images: Option<PathBuf>,
    /// Embed the files listed in this file (one path per line), in list order.
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Output `.npy` (float32, N × D).
    #[arg(long)]
    pub out: PathBuf,
    /// Ids (file stems), one per line (default: OUT with extension `.ids.txt`).
    #[arg(long)]
    pub ids: Option<PathBuf>,
    /// Device, precision and decoding threads.
    #[command(flatten)]
    pub runtime: crate::cli::RuntimeArgs,
    /// Images per model call (default: 256 on CUDA, 32 on the CPU).
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub batch_size: Option<usize>,
    /// Keep the raw embeddings (default: rows scaled to unit L2 norm).
    #[arg(long)]
    pub no_normalize: bool,
    /// Fail on the first unreadable image.
    #[arg(long)]
    pub strict: bool,
    /// Fail when more than this fraction of the images cannot be read (the images that failed
    /// so far are then listed in OUT.skipped.csv, and finished work stays cached: rerun with a
    /// higher rate to go on).
    #[arg(long, default_value_t = 0.1, value_parser = crate::cli::fraction)]
    pub max_failure_rate: f64,
    /// Embed only shard I of N (a contiguous block of the list); join with `merge`. `auto`:
    /// the shard of this Slurm task (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`, else `SLURM_PROCID` of `SLURM_NTASKS`).
    #[arg(long)]
    pub shard: Option<crate::cli::shard::ShardArg>,
    /// Overwrite existing outputs. Without it an existing OUT (or `--ids` file) is an error;
    /// the sidecars an unfinished run left (`.ids.txt`, `.skipped.csv`, `.meta.json` without
    /// OUT, which is written last) are replaced anyway.
    #[arg(long)]
    pub force: bool,
    /// Where finished chunks are kept until the run completes (default: OUT.cache/). A run
    /// started again with the same arguments resumes from it.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Images per cache chunk (the most work a crash can lose).
    #[arg(long, default_value_t = 1024, value_parser = crate::cli::at_least_one)]
    pub chunk_size: usize,
    /// Keep the cache after a successful run.
    #[arg(long)]
    pub keep_cache: bool,
    /// How batches reach a libtorch model: `auto` (8-bit pixels normalised on the device on
    /// CUDA, f32 host batches elsewhere), `host` or `device`.
    #[arg(long, default_value = "auto", value_parser = crate::cli::transfer)]
    pub transfer: Transfer,
}
