//! `bench`: decode + preprocess, model-only and end-to-end throughput of the extraction
//! pipeline, optionally side by side with the Python / `transformers` pipeline run in the same
//! invocation on the same images (`scripts/gpu/baseline.py`). Parsed by every binary; run where
//! libtorch is (feature `torch`).

#[cfg(feature = "torch")]
mod agreement;
#[cfg(feature = "torch")]
mod baseline;
#[cfg(feature = "torch")]
mod command;
#[cfg(feature = "torch")]
mod images;
#[cfg(feature = "torch")]
mod measure;
#[cfg(feature = "torch")]
mod report;

use std::path::PathBuf;

use crate::ModelKind;
#[cfg(feature = "torch")]
pub use command::run;

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model family.
    #[arg(long, value_parser = crate::cli::model_kind, required_unless_present = "test_model")]
    pub model: Option<ModelKind>,
    /// Images to run on (default: synthetic 360–640 px JPEGs in a temporary folder).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Synthetic images to generate when no --images is given.
    #[arg(long, default_value_t = 64, value_parser = crate::cli::at_least_one)]
    pub n_images: usize,
    /// Generate photo-like synthetic JPEGs (noise at every scale, like a photo's 1/f spectrum)
    /// whose sides are drawn from `LO-HI` pixels, instead of the default 360–640 px smooth noise.
    /// E.g. `1500-3000` for phone-camera sizes, to measure `--fast-jpeg`.
    #[arg(long, value_parser = parse_range)]
    pub photo_size: Option<(u32, u32)>,
    /// Write the synthetic images into this new folder and keep them (default: a temporary
    /// folder, removed at the end); rerun on them with `--images`.
    #[arg(long, conflicts_with = "images")]
    pub keep_images: Option<PathBuf>,
    /// Device, precision and decoding threads.
    #[command(flatten)]
    pub runtime: crate::cli::RuntimeArgs,
    /// Checkpoint folder or model id.
    #[arg(long)]
    pub weights: Option<String>,
    /// Images per model call (default: 8 on the CPU, 256 on CUDA).
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub batch_size: Option<usize>,
    /// With `--precision f16|bf16`: also embed the images with the f32 model on the same device
    /// and compare the two embeddings of each image (cosine, nearest neighbour), to see what the
    /// reduced precision costs in accuracy next to what it gains in speed.
    #[arg(long)]
    pub compare_f32: bool,
    /// Model-only repetitions.
    #[arg(long, default_value_t = 3, value_parser = crate::cli::at_least_one)]
    pub model_iters: usize,
    /// Also run the Python pipeline on the same images and device, and print ratios.
    #[arg(long)]
    pub python_baseline: bool,
    /// The Python interpreter (default: the workspace's `.venv/bin/python` when present, else
    /// `python3`).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The baseline script (default: `scripts/gpu/baseline.py` under the working directory or
    /// beside this executable).
    #[arg(long)]
    pub baseline_script: Option<PathBuf>,
    /// Write all figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite `--json` if it exists.
    #[arg(long)]
    pub force: bool,
    /// Testing aid: a deterministic grid-mean embedder instead of a model.
    #[arg(long, hide = true, value_parser = crate::cli::at_least_one)]
    pub test_model: Option<usize>,
}

/// `LO-HI` (pixels) for `--photo-size`.
fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("expected LO-HI (e.g. 1500-3000), got {s:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|e| format!("{v:?} in {s:?}: {e}"))
    };
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    if !(16..=16_384).contains(&lo) || hi < lo || hi > 16_384 {
        return Err(format!("need 16 <= LO <= HI <= 16384, got {lo}-{hi}"));
    }
    Ok((lo, hi))
}
