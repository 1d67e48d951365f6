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

use disc21_eval::pipeline::ResizeOn;

/// Where and how a model runs: the options `embed`, `bench` and `run` share.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RuntimeArgs {
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default: the first CUDA device when there is one).
    #[arg(long)]
    pub device: Option<String>,
    /// `f32` (default, the reference's), `f16` or `bf16`. Half precision is for GPUs and, as
    /// bf16, for CPUs with AVX512_BF16 (Zen 4, Sapphire Rapids and later), where it runs the
    /// model about twice as fast as f32; other CPUs emulate it, several times slower (warned).
    #[arg(long)]
    pub precision: Option<String>,
    /// Decoding threads (default: one per core).
    #[arg(long, default_value_t = 0)]
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
