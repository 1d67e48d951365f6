//! One module per subcommand: each has clap `Args` and a `run` returning the exit code.

pub mod bench;
pub mod embed;
pub mod generate;
pub mod index;
pub mod merge;
pub mod metrics;
pub mod preprocess;
pub mod run;
pub mod search;

use std::path::Path;

use anyhow::Context as _;
use disc21_eval::pipeline::ResizeOn;

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
    /// the workers only decode). `device` needs the 8-bit device transfer (a CUDA device).
    #[arg(long, value_enum, default_value_t = ResizeOn::Host)]
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

fn parse_in(s: &str, lo: usize, hi: usize) -> Result<usize, String> {
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
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    parse_in(s, 1, usize::MAX)
}

/// Decoding threads: 0 (one per core) to [`disc21_eval::pipeline::MAX_WORKERS`].
pub(crate) fn workers(s: &str) -> Result<usize, String> {
    parse_in(s, 0, disc21_eval::pipeline::MAX_WORKERS)
}

/// An HNSW `M`: 2 to [`vecindex::MAX_M`].
pub(crate) fn hnsw_m(s: &str) -> Result<usize, String> {
    parse_in(s, 2, vecindex::MAX_M)
}

/// An HNSW candidate list size: 1 to [`vecindex::MAX_EF`].
pub(crate) fn hnsw_ef(s: &str) -> Result<usize, String> {
    parse_in(s, 1, vecindex::MAX_EF)
}

/// A generated picture's side: 32 to [`disc21_eval::generate::MAX_SIDE`] pixels.
pub(crate) fn picture_side(s: &str) -> Result<u32, String> {
    parse_in(s, 32, disc21_eval::generate::MAX_SIDE as usize).map(|v| v as u32)
}

/// A fraction in 0..=1.
pub(crate) fn fraction(s: &str) -> Result<f64, String> {
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
pub(crate) fn precision(s: &str) -> Result<String, String> {
    s.parse::<embed_torch::Precision>()
        .map(|_| s.to_string())
        .map_err(|_| format!("`{s}`: expected f32, f16 or bf16"))
}

/// `cpu`, `cuda`, `cuda:N`, `gpu` or `auto`, kept as given; whether the device exists is
/// checked when the model loads.
pub(crate) fn device(s: &str) -> Result<String, String> {
    embed_torch::check_device_name(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

/// Creates the folder an output file goes into, before a command's work starts.
pub(crate) fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the folder {}", dir.display()))?;
    }
    Ok(())
}
