//! `serve`: collections as an HTTP service speaking clip-retrieval's API, with a web page.
//! Parsed by every binary; run where libtorch is (features `torch` and `serve`).

#[cfg(all(feature = "torch", feature = "serve"))]
mod command;

use std::path::PathBuf;

#[cfg(all(feature = "torch", feature = "serve"))]
pub use command::run;

/// Arguments of `serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Collection folders (written by `embed-collection`); each is served under its folder
    /// name with the model it was made with, loaded once.
    #[arg(required = true, value_name = "COLL")]
    pub collections: Vec<PathBuf>,
    /// Address to listen on. The default serves this machine only; `0.0.0.0` exposes the
    /// service to the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 1234)]
    pub port: u16,
    /// Where the rows' relative image paths are: `DIR` for every collection, or `NAME=DIR`
    /// for one (repeat). Without it images and thumbnails are not served.
    #[arg(long, value_name = "[NAME=]DIR")]
    pub images: Vec<String>,
    /// The model family, `clip` or `dinov2`: `KIND` for every collection or `NAME=KIND`
    /// (default: guessed from the collection's model id).
    #[arg(long, value_name = "[NAME=]KIND")]
    pub model: Vec<String>,
    /// Checkpoint folder or model id: `W` for every collection or `NAME=W` (default: the
    /// collection's model id, from the Hugging Face cache).
    #[arg(long, value_name = "[NAME=]WEIGHTS")]
    pub weights: Vec<String>,
    /// Device, precision (the other runtime options do not apply).
    #[command(flatten)]
    pub runtime: crate::cli::RuntimeArgs,
    /// DINOv2 pooling, as the collection was made with (`mean`, `cls`, ...).
    #[arg(long)]
    pub pooling: Option<String>,
    /// A DISC21 ground-truth CSV (`query_id,reference_id`): the page marks true copies.
    #[arg(long)]
    pub ground_truth: Option<PathBuf>,
    /// Allow adding images (`POST /api/collections/NAME/images` with `Authorization: Bearer
    /// T`); without it the service is read-only. Better given in the environment variable
    /// `IMAGE_SIM_SERVE_TOKEN` (a command line is visible to every user of the machine).
    #[arg(long)]
    pub token: Option<String>,
    /// Images per model call.
    #[arg(long, default_value_t = 32, value_parser = crate::cli::at_least_one)]
    pub max_batch: usize,
    /// Milliseconds the model waits for a batch to fill.
    #[arg(long, default_value_t = 3)]
    pub batch_wait_ms: u64,
    /// Images that may wait per model; past it requests get 503 with Retry-After.
    #[arg(long, default_value_t = 256, value_parser = crate::cli::at_least_one)]
    pub queue: usize,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = 20, value_parser = crate::cli::at_least_one)]
    pub max_body_mib: usize,
    /// Request timeout in seconds.
    #[arg(long, default_value_t = 30, value_parser = crate::cli::at_least_one)]
    pub timeout: usize,
    /// Seconds a connection has to send its request headers (slow or silent clients are
    /// disconnected).
    #[arg(long, default_value_t = 10, value_parser = crate::cli::at_least_one)]
    pub header_timeout: usize,
    /// Connections open at once; past it, new ones wait until one closes.
    #[arg(long, default_value_t = 1024, value_parser = crate::cli::at_least_one)]
    pub max_connections: usize,
    /// HNSW candidate list size for searches (default: each collection's).
    #[arg(long)]
    pub ef_search: Option<usize>,
    /// Re-rank each search exactly: fetch k × R candidates from the index and score them with
    /// the stored vectors (for compressed indexes: sq8, f16, hnsw-sq8, ivfpq).
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub rerank: Option<usize>,
    /// Check sizes and headers only when opening (not every byte's checksum): for large
    /// collections.
    #[arg(long)]
    pub quick_verify: bool,
}
