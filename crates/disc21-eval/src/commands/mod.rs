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

/// Where and how a model runs: the options `embed`, `bench` and `run` share.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RuntimeArgs {
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default: the first CUDA device when there is one).
    #[arg(long)]
    pub device: Option<String>,
    /// `f32` (default), `f16` or `bf16`.
    #[arg(long)]
    pub precision: Option<String>,
    /// Decoding threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
}
