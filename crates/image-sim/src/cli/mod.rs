//! The command line's library side (feature `cli`): one module per subcommand, each with clap
//! `Args` and a `run` returning the exit code, shared by the `image-sim` binaries and by other
//! command lines of the workspace (`disc21-eval` keeps the same subcommands), plus what every
//! binary does around them ([`main_with`]: logging, `--quiet`, `--offline`, the error line and
//! exit code). Unlike the libraries, this module prints: status lines and progress on standard
//! error, tables on standard output.
//!
//! Commands that run a model live behind the `torch` feature. A binary that must start without
//! libtorch (`image-sim`) parses every command but hands the model ones to a sibling binary
//! that links it ([`exec_sibling`]).

pub mod app;
pub mod bench;
pub mod build;
pub mod embed;
pub mod embed_meta;
pub mod extraction;
pub mod files;
pub mod index;
pub mod merge;
pub mod preprocess;
pub mod progress;
pub mod query;
mod run;
pub mod search;
pub mod serve;
pub mod shard;
pub mod slurm;

use std::path::Path;

use anyhow::Context as _;
use embed_pipeline::{ResizeOn, Transfer};

pub use run::{GlobalArgs, error_message, exec_sibling, main_with};

/// An error in how a command was called that only shows when it runs (e.g. `--shard auto`
/// outside Slurm): printed like any error, with exit code 2 as clap's usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Where and how a model runs: the options `embed`, `bench` and `run` share.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RuntimeArgs {
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default: the first CUDA device when there is one).
    #[arg(long, value_parser = device)]
    pub device: Option<String>,
    /// `f32` (default, the reference's), `f16` or `bf16`. Half precision is for GPUs and, as
    /// bf16, for CPUs with AVX512_BF16, where it runs the model about twice as fast as f32 on
    /// Zen 4 and three times on Xeons with AMX (Sapphire Rapids and later); other CPUs emulate
    /// it, several times slower (warned).
    #[arg(long, value_parser = precision)]
    pub precision: Option<String>,
    /// Decoding threads (default: one per core).
    #[arg(long, default_value_t = 0, value_parser = workers)]
    pub workers: usize,
    /// Where images are resized: `host` (the CPU workers, bit-exact with PIL) or `device`
    /// (libtorch's antialiased bicubic on the model's device, within two 8-bit levels of PIL;
    /// the workers only decode: frees CPU time when decoding is the bottleneck). `device`
    /// needs the 8-bit device transfer (a CUDA device); very large images are still resized
    /// on the host.
    #[arg(long, default_value = "host", value_parser = resize_on)]
    pub resize_on: ResizeOn,
    /// Opt-in fast mode, not exact: decode JPEGs at 1/2, 1/4 or 1/8 size in the DCT domain
    /// while their shorter side stays at least twice the model's resize target (448 px for
    /// CLIP, 512 for DINOv2). Much less decoding for large photos; embeddings close to the
    /// exact path's (docs/BENCHMARKS.md, "Fast JPEG mode"). Cached apart from exact runs.
    /// `bench` runs both paths and compares their embeddings image by image.
    #[arg(long)]
    pub fast_jpeg: bool,
}

impl RuntimeArgs {
    /// What these options add to a cache key: pixels resized on the device differ slightly
    /// from the exact ones, so their embeddings are cached apart (host keys stay as they were).
    pub fn cache_tag(&self) -> &'static str {
        match self.resize_on {
            ResizeOn::Host => "",
            ResizeOn::Device => " resize=device",
        }
    }
}

// Value parsers: a value out of range is a usage error (exit 2, naming the flag), caught before
// anything runs.

/// A whole number in `lo..=hi`.
pub fn parse_in(s: &str, lo: usize, hi: usize) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if v < lo && hi == usize::MAX {
        return Err(format!("must be at least {lo}"));
    }
    if !(lo..=hi).contains(&v) {
        return Err(format!("{v} is outside {lo}..={hi}"));
    }
    Ok(v)
}

/// A count of at least 1 (batch sizes, k, repetitions...).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    parse_in(s, 1, usize::MAX)
}

/// Decoding threads: 0 (one per core) to [`embed_pipeline::MAX_WORKERS`].
pub fn workers(s: &str) -> Result<usize, String> {
    parse_in(s, 0, embed_pipeline::MAX_WORKERS)
}

/// An HNSW `M`: 2 to [`vecindex::MAX_M`].
pub fn hnsw_m(s: &str) -> Result<usize, String> {
    parse_in(s, 2, vecindex::MAX_M)
}

/// An HNSW candidate list size: 1 to [`vecindex::MAX_EF`].
pub fn hnsw_ef(s: &str) -> Result<usize, String> {
    parse_in(s, 1, vecindex::MAX_EF)
}

/// A fraction in 0..=1.
pub fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} is outside 0..=1"));
    }
    Ok(v)
}

/// `f32`, `f16` or `bf16` (and their long names), kept as given.
pub fn precision(s: &str) -> Result<String, String> {
    // The names `embed_torch::Precision` reads (a test keeps the two in step).
    match s.trim().to_ascii_lowercase().as_str() {
        "f32" | "fp32" | "float32" | "float" | "f16" | "fp16" | "float16" | "half" | "bf16"
        | "bfloat16" => Ok(s.to_string()),
        _ => Err(format!("`{s}`: expected f32, f16 or bf16")),
    }
}

/// `cpu`, `cuda`, `cuda:N`, `gpu` or `auto`, kept as given; whether the device exists is
/// checked when the model loads.
pub fn device(s: &str) -> Result<String, String> {
    // The names `embed_torch::parse_device` reads (a test keeps the two in step); parsed here
    // without embed-torch so that binaries without libtorch can check them.
    let t = s.trim().to_ascii_lowercase();
    let ok = matches!(t.as_str(), "cpu" | "cuda" | "gpu" | "auto")
        || t.strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<usize>().is_ok());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}`: expected cpu, cuda, cuda:N or auto"))
    }
}

/// `clip` or `dinov2`.
pub fn model_kind(s: &str) -> Result<crate::ModelKind, String> {
    s.parse()
}

/// `host` or `device`.
pub fn resize_on(s: &str) -> Result<ResizeOn, String> {
    s.parse()
}

/// `auto`, `host` or `device`.
pub fn transfer(s: &str) -> Result<Transfer, String> {
    s.parse()
}

/// Creates the folder an output file goes into, before a command's work starts.
pub fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the folder {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(all(test, feature = "torch"))]
mod tests {
    #[test]
    fn device_and_precision_names_are_the_ones_embed_torch_reads() {
        for s in [
            "cpu", "CPU", "cuda", "gpu", "auto", "cuda:0", "cuda:12", " cuda:1 ", "cuda:",
            "cuda:x", "cuda:-1", "cuda:+1", "tpu", "", "mps",
        ] {
            assert_eq!(
                super::device(s).is_ok(),
                embed_torch::check_device_name(s).is_ok(),
                "{s:?}"
            );
        }
        for s in [
            "f32", "FP32", "float32", "float", "f16", "fp16", "float16", "half", "bf16",
            "bfloat16", "f64", "int8", "", " bf16 ",
        ] {
            assert_eq!(
                super::precision(s).is_ok(),
                s.parse::<embed_torch::Precision>().is_ok(),
                "{s:?}"
            );
        }
    }
}
