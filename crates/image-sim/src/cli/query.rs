//! `query`: images embedded with a collection's own model and searched in it. Parsed by every
//! binary; run where libtorch is (feature `torch`).

use std::path::PathBuf;

/// Arguments of `query`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The collection folder (written by `build`).
    pub collection: PathBuf,
    /// The query images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Results per query image.
    #[arg(long, default_value_t = 10, value_parser = crate::cli::at_least_one)]
    pub k: usize,
    /// Print JSON (one array, one object per query image) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default: the first CUDA device when there is one).
    #[arg(long, value_parser = crate::cli::device)]
    pub device: Option<String>,
    /// `f32` (default), `f16` or `bf16`.
    #[arg(long, value_parser = crate::cli::precision)]
    pub precision: Option<String>,
    /// Decoding threads (default: one per core).
    #[arg(long, default_value_t = 0, value_parser = crate::cli::workers)]
    pub workers: usize,
    /// HNSW candidate list size while searching (default: the collection's).
    #[arg(long, value_parser = crate::cli::hnsw_ef)]
    pub ef_search: Option<usize>,
    /// Re-rank exactly: fetch k × R candidates from the index and score them with the stored
    /// vectors, so similarities are exact (for compressed indexes: sq8, f16, hnsw-sq8, ivfpq).
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub rerank: Option<usize>,
}

#[cfg(feature = "torch")]
pub use command::run;

#[cfg(feature = "torch")]
mod command {
    use std::io::Write as _;
    use std::process::ExitCode;

    use anyhow::{Context, bail};
    use embed_collection::Collection;
    use embed_pipeline::{Transfer, extract};

    use super::Args;
    use crate::cli::RuntimeArgs;
    use crate::cli::build::identity::ModelRecord;
    use crate::cli::extraction::{PipelineArgs, load_embedder};

    /// One query image's answers, as `--json` prints them.
    #[derive(serde::Serialize)]
    struct Answer {
        query: String,
        hits: Vec<Hit>,
    }

    #[derive(serde::Serialize)]
    struct Hit {
        rank: usize,
        image_path: String,
        id: String,
        similarity: f32,
        row: usize,
    }

    /// Runs the subcommand.
    pub fn run(args: Args) -> anyhow::Result<ExitCode> {
        let mut collection = Collection::open(&args.collection)?;
        if let Some(ef) = args.ef_search {
            collection.set_ef_search(ef)?;
        }
        if let Some(factor) = args.rerank {
            collection.set_rerank(factor)?;
        }
        let manifest = collection.manifest();
        let record = ModelRecord::of(manifest, collection.dir())?;
        let runtime = RuntimeArgs {
            device: args.device.clone(),
            precision: args.precision.clone(),
            workers: args.workers,
            resize_on: record.resize_on(),
            fast_jpeg: record.fast_jpeg,
        };
        let loaded = load_embedder(&record.model_args(), &runtime).with_context(|| {
            format!(
                "loading the model {} was built with",
                args.collection.display()
            )
        })?;
        if loaded.weights_digest != manifest.weights_digest {
            bail!(
                "the weights {} are not the ones {} was built with (weights digest {}, the \
                 collection's {})",
                record.weights.as_deref().unwrap_or("?"),
                args.collection.display(),
                loaded.weights_digest,
                manifest.weights_digest
            );
        }
        if record.random_weights {
            eprintln!(
                "query: the collection's model has RANDOM weights: similarities mean nothing"
            );
        }
        let model = loaded.model()?;
        let options = PipelineArgs {
            runtime: &runtime,
            batch_size: None,
            normalize: true,
            max_failure_rate: 0.0,
            strict: true,
            transfer: Transfer::Auto,
        }
        .options(&model, None);
        let out = extract(model, &args.images, &options)?;
        let rows = out.embeddings.as_standard_layout();
        let queries = rows.as_slice().context("embeddings not contiguous")?;
        let hits = collection.search_batch(queries, args.k)?;
        let answers: Vec<Answer> = args
            .images
            .iter()
            .zip(hits)
            .map(|(q, list)| Answer {
                query: q.display().to_string(),
                hits: list
                    .into_iter()
                    .enumerate()
                    .map(|(rank, h)| Hit {
                        rank: rank + 1,
                        image_path: h.image.image_path.clone(),
                        id: h.image.id.clone(),
                        similarity: h.score,
                        row: h.row,
                    })
                    .collect(),
            })
            .collect();
        let mut stdout = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &answers)?;
            writeln!(stdout)?;
        } else {
            writeln!(stdout, "query\trank\tsimilarity\timage_path")?;
            for a in &answers {
                for h in &a.hits {
                    writeln!(
                        stdout,
                        "{}\t{}\t{:.6}\t{}",
                        a.query, h.rank, h.similarity, h.image_path
                    )?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
