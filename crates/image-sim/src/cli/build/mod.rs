//! `build`: a folder or list of images to a collection (clip-retrieval's layout: `.npy`
//! shards, Parquet metadata, an index and `collection.json`, see `embed_collection`), extended
//! in place when it exists. Parsed by every binary; run where libtorch is (feature `torch`).

#[cfg(feature = "torch")]
mod command;
pub mod identity;

use std::path::PathBuf;

use embed_collection::Dtype;
use embed_pipeline::Transfer;
use vecindex::IndexType;

use crate::cli::extraction::ModelArgs;
use crate::cli::shard::ShardArg;
#[cfg(feature = "torch")]
pub use command::run;

/// An index kind by its command-line name (`flat`, `hnsw`, `sq8`, `f16`, `hnsw-sq8`, `ivfpq`;
/// any case).
pub fn index_kind(s: &str) -> Result<IndexType, String> {
    s.trim()
        .to_ascii_lowercase()
        .parse::<IndexType>()
        .map_err(|e| format!("`{s}`: {e}"))
}

/// `f32` or `f16` (and their long names).
pub fn dtype(s: &str) -> Result<Dtype, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(Dtype::F32),
        "f16" | "float16" => Ok(Dtype::F16),
        _ => Err(format!("`{s}`: expected f32 or f16")),
    }
}

/// Arguments of `build`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: family, weights, pooling.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Embed every file of this folder (not recursive), in file-name order; `image_path` is
    /// the file's path relative to DIR.
    #[arg(long, conflicts_with = "list", required_unless_present = "list")]
    pub images: Option<PathBuf>,
    /// Embed the files listed in this file (one path per line), in list order; `image_path` is
    /// the path as written in the list.
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// The collection folder. When it holds a collection, only the images not in it yet (and
    /// not listed as skipped) are embedded and added, with the same model; see --replace.
    #[arg(long)]
    pub out: PathBuf,
    /// Index kind: `flat` (exact; a FAISS flat file), `hnsw` (vecindex's format), or the
    /// compressed kinds, FAISS files all: `sq8`, `f16`, `hnsw-sq8`, `ivfpq` (default: flat, the
    /// kind --max-memory chooses, or the existing collection's).
    #[arg(long, value_parser = index_kind)]
    pub kind: Option<IndexType>,
    /// Memory budget of the index of a new collection (e.g. 800M, 4G): the most accurate kind
    /// that fits the listed images is built, as `index --max-memory` chooses, and recorded in
    /// collection.json; with --kind, an error if that kind does not fit. An existing collection
    /// keeps its kind.
    #[arg(long, value_parser = crate::cli::index::parse_size)]
    pub max_memory: Option<u64>,
    /// How vectors are stored: `f32` or `f16` (as clip-retrieval writes; default: f32, or the
    /// existing collection's).
    #[arg(long, value_parser = dtype)]
    pub dtype: Option<Dtype>,
    /// Device, precision and decoding threads.
    #[command(flatten)]
    pub runtime: crate::cli::RuntimeArgs,
    /// Images per model call (default: 256 on CUDA, 32 on the CPU).
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub batch_size: Option<usize>,
    /// Fail on the first unreadable image (what was embedded before it is kept).
    #[arg(long)]
    pub strict: bool,
    /// Stop when more than this fraction of the images cannot be read: what was embedded so
    /// far and every failure are committed to the collection, so a rerun with a higher rate
    /// goes on from there.
    #[arg(long, default_value_t = 0.1, value_parser = crate::cli::fraction)]
    pub max_failure_rate: f64,
    /// Build only shard I of N of the list (a contiguous block), or `auto`: the shard of this
    /// Slurm task. A shard build always rewrites OUT; `merge-shards` joins the shards.
    #[arg(long)]
    pub shard: Option<ShardArg>,
    /// Start the collection over instead of extending it (the old one stays until the new
    /// one is committed).
    #[arg(long)]
    pub replace: bool,
    /// Rows per `.npy`/`.parquet` file pair.
    #[arg(long, default_value_t = 1_000_000, value_parser = crate::cli::at_least_one)]
    pub rows_per_file: usize,
    /// How batches reach a libtorch model: `auto`, `host` or `device` (as `embed`).
    #[arg(long, default_value = "auto", value_parser = crate::cli::transfer)]
    pub transfer: Transfer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_dtypes_parse_by_name() {
        for k in IndexType::ALL {
            assert_eq!(index_kind(k.name()), Ok(k));
        }
        assert_eq!(index_kind("HNSW-SQ8"), Ok(IndexType::HnswSq8));
        assert!(index_kind("ivf").is_err());
        assert_eq!(dtype("float16"), Ok(Dtype::F16));
        assert!(dtype("bf16").is_err());
    }
}
