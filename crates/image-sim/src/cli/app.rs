//! The `image-sim` command line: its commands and which of them need libtorch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::{
    GlobalArgs, bench, build, embed, index, merge, preprocess, query, search, serve, slurm,
};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  failure (the error is printed on standard error)
  2  usage error (unknown flag, missing or invalid argument)

Environment:
  RUST_LOG        log filter, e.g. `RUST_LOG=debug` (default: warn)
  HF_HOME, HF_HUB_CACHE
                  where model ids are looked up (default ~/.cache/huggingface/hub)
  HF_HUB_OFFLINE  `1`: never download weights (same as --offline)

Outputs are never overwritten unless --force is given.

Example:
  image-sim embed --model dinov2 --images photos --out photos.npy
  image-sim index --embeddings photos.npy --ids photos.ids.txt --kind flat --out photos.faiss";

/// Image similarity with CLIP and DINOv2: embed images, index and search them.
#[derive(Parser, Debug)]
#[command(name = "image-sim", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `image-sim`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Embed a folder or list of images with CLIP or DINOv2 into an N×D .npy.
    #[command(after_help = "Example:\n  \
        image-sim embed --model dinov2 --weights facebook/dinov2-base --images photos --out photos.npy\n\n\
        Writes photos.npy, photos.ids.txt, photos.skipped.csv (unreadable images and why) and photos.meta.json.")]
    Embed(embed::Args),
    /// Embed a folder or list of images into a collection (clip-retrieval's layout: .npy
    /// shards, Parquet metadata, an index, collection.json); an existing one is extended.
    #[command(after_help = "Example:\n  \
        image-sim build --model clip --images photos --out photos.coll\n  \
        image-sim build --model clip --images more-photos --out photos.coll   # adds the new ones\n\n\
        Unreadable images are skipped and listed in COLL/skipped.csv and COLL/collection.json.")]
    Build(build::Args),
    /// Embed images with a collection's own model and print the most similar images in it.
    #[command(after_help = "Example:\n  \
        image-sim query photos.coll query.jpg --k 5\n\n\
        Prints `query, rank, similarity, image_path` rows (tab-separated), or JSON with --json.")]
    Query(query::Args),
    /// Print a script that runs a sharded `build` on a Slurm cluster: a job array of shard
    /// tasks and a merge job after them.
    #[command(after_help = "Example:\n  \
        image-sim slurm-script --shards 8 --model dinov2 --images /shared/photos \\\n    \
        --out /shared/photos.coll --partition gpu --time 02:00:00 > submit.sh && bash submit.sh")]
    SlurmScript(slurm::ScriptArgs),
    /// Join the shard collections of a sharded `build` into one collection.
    #[command(after_help = "Example:\n  \
        image-sim merge-shards photos.coll/shards --out photos.coll")]
    MergeShards(slurm::MergeArgs),
    /// Join the embedding files of `embed --shard I/N` runs.
    #[command(after_help = "Example:\n  \
        image-sim merge shard0.npy shard1.npy --out photos.npy")]
    Merge(merge::Args),
    /// Build a flat (FAISS file) or HNSW index from embeddings.
    #[command(after_help = "Example:\n  \
        image-sim index --embeddings photos.npy --ids photos.ids.txt --kind flat --out photos.faiss")]
    Index(index::Args),
    /// Search an index with query embeddings and write predictions as CSV.
    #[command(after_help = "Example:\n  \
        image-sim search --index photos.faiss --queries q.npy --query-ids q.ids.txt --k 10 --out hits.csv")]
    Search(search::Args),
    /// Write the exact float32 tensor (1×3×H×W) a model would see for an image, as .npy.
    #[command(after_help = "Example:\n  \
        image-sim preprocess --model clip photo.jpg --out pixels.npy")]
    Preprocess(preprocess::Args),
    /// Measure decode, preprocess, model and end-to-end throughput.
    #[command(after_help = "Example:\n  \
        image-sim bench --model dinov2 --images photos --device cpu")]
    Bench(bench::Args),
    /// Serve collections over HTTP (clip-retrieval's API, a web page, metrics).
    #[command(after_help = "Example:\n  \
        image-sim serve collections/clip collections/dinov2 --images photos --port 1234\n\n\
        Then open http://127.0.0.1:1234/ and drop an image; clip-retrieval's ClipClient and\n\
        clip-front work against it (POST /knn-service, /metadata, GET /indices-list).")]
    Serve(serve::Args),
}

impl Command {
    /// Whether the command runs a model (and so needs libtorch).
    pub fn needs_model(&self) -> bool {
        matches!(
            self,
            Command::Embed(_)
                | Command::Bench(_)
                | Command::Build(_)
                | Command::Query(_)
                | Command::Serve(_)
        )
    }

    /// Runs a command that runs no model; `None` for the others.
    pub fn run_without_model(self) -> Option<anyhow::Result<ExitCode>> {
        Some(match self {
            Command::Merge(a) => merge::run(a),
            Command::Index(a) => index::run(a),
            Command::Search(a) => search::run(a),
            Command::Preprocess(a) => preprocess::run(a),
            Command::SlurmScript(a) => slurm::run_script(a),
            Command::MergeShards(a) => slurm::run_merge(a),
            Command::Embed(_)
            | Command::Bench(_)
            | Command::Build(_)
            | Command::Query(_)
            | Command::Serve(_) => {
                return None;
            }
        })
    }

    /// Runs any command.
    #[cfg(feature = "torch")]
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Embed(a) => embed::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Build(a) => build::run(a),
            Command::Query(a) => query::run(a),
            #[cfg(feature = "serve")]
            Command::Serve(a) => serve::run(a),
            #[cfg(not(feature = "serve"))]
            Command::Serve(_) => Err(anyhow::anyhow!(
                "this binary was built without the `serve` feature"
            )),
            other => other
                .run_without_model()
                .unwrap_or_else(|| Err(anyhow::anyhow!("unreachable: a model command"))),
        }
    }
}
