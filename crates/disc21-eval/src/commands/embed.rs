//! `disc21-eval embed`: a folder or list of images to an `N × D` float32 `.npy`, with ids and a
//! list of skipped images, resumable after a crash.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use disc21_eval::benchmark::weights_fingerprint;
use disc21_eval::models::{ModelKind, ModelOptions, load_torch_embedder};
use disc21_eval::pipeline::test_model::GridMeanEmbedder;
use disc21_eval::pipeline::{
    CacheKey, CacheOptions, ExtractOptions, Extraction, Model, Shard, Transfer, check_unique_ids,
    extract_cached, list_images, read_list,
};
use embed_core::PreprocessSpec;

/// Arguments of `disc21-eval embed`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model family.
    #[arg(long, value_enum, required_unless_present = "test_model")]
    pub model: Option<ModelKind>,
    /// Checkpoint folder or Hugging Face model id (default: the study's checkpoint).
    #[arg(long)]
    pub weights: Option<String>,
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
    pub runtime: super::RuntimeArgs,
    /// Images per model call (default: 256 on CUDA, 32 on the CPU).
    #[arg(long, value_parser = super::at_least_one)]
    pub batch_size: Option<usize>,
    /// DINOv2 pooling: `mean`, `cls`, `patch-mean`, `cls-patch-mean`.
    #[arg(long)]
    pub pooling: Option<String>,
    /// Keep the raw embeddings (default: rows scaled to unit L2 norm).
    #[arg(long)]
    pub no_normalize: bool,
    /// Fail on the first unreadable image.
    #[arg(long)]
    pub strict: bool,
    /// Fail when more than this fraction of the images cannot be read.
    #[arg(long, default_value_t = 0.1, value_parser = super::fraction)]
    pub max_failure_rate: f64,
    /// Embed only shard I of N (a contiguous block of the list); join with `merge`.
    #[arg(long)]
    pub shard: Option<Shard>,
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
    #[arg(long, default_value_t = 1024, value_parser = super::at_least_one)]
    pub chunk_size: usize,
    /// Keep the cache after a successful run.
    #[arg(long)]
    pub keep_cache: bool,
    /// How batches reach a libtorch model.
    #[arg(long, value_enum, default_value_t = Transfer::Auto)]
    pub transfer: Transfer,
    /// Testing aid: use a deterministic grid-mean embedder of this grid size instead of a model.
    #[arg(long, hide = true, value_parser = super::at_least_one)]
    pub test_model: Option<usize>,
    /// Testing aid: milliseconds the test embedder sleeps per batch.
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_delay_ms: u64,
}

/// `OUT` with its extension replaced by `suffix` (`emb.npy` → `emb.skipped.csv`).
pub fn sidecar(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.{suffix}"))
}

/// The metadata file written next to the embeddings (`OUT.meta.json`), read by `merge`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct EmbedMeta {
    /// The model's identifier.
    pub model_id: String,
    /// Embedding width.
    pub dim: usize,
    /// Rows written.
    pub rows: usize,
    /// Images skipped.
    pub skipped: usize,
    /// Images in the whole (unsharded) list.
    pub list_len: usize,
    /// The shard this file holds.
    pub shard: Shard,
    /// Digest of the whole list and model (equal across the shards of one extraction).
    pub extraction: String,
    /// Whether rows are L2-normalised.
    pub normalized: bool,
}

/// [`disc21_eval::atomic::write_atomic`], with errors naming `path`.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    disc21_eval::atomic::write_atomic(path, write)
        .with_context(|| format!("writing {}", path.display()))
}

/// Quotes a CSV field when needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the outputs of an extraction: the `.npy`, the ids, the skipped list and the metadata.
pub fn write_outputs(
    out: &Path,
    ids_path: &Path,
    result: &Extraction,
    meta: &EmbedMeta,
) -> anyhow::Result<()> {
    write_atomic(ids_path, |w| {
        for id in &result.ids {
            writeln!(w, "{id}")?;
        }
        Ok(())
    })?;
    write_atomic(&sidecar(out, "skipped.csv"), |w| {
        writeln!(w, "path,reason")?;
        for s in &result.skipped {
            writeln!(
                w,
                "{},{}",
                csv_field(&s.path.to_string_lossy()),
                csv_field(&s.reason)
            )?;
        }
        Ok(())
    })?;
    write_atomic(&sidecar(out, "meta.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, meta)?;
        writeln!(w)
    })?;
    // The embeddings last: their presence means the run finished.
    write_atomic(out, |w| embed_core::npy::write_f32(w, &result.embeddings))
}

/// Errors when two of a command's output files are the same file (e.g. `--ids` = `--out`):
/// the second write would replace the first.
pub fn check_distinct_outputs<P: AsRef<Path>>(outputs: &[P]) -> anyhow::Result<()> {
    let full: Vec<PathBuf> = outputs
        .iter()
        .map(|p| std::path::absolute(p.as_ref()).unwrap_or_else(|_| p.as_ref().to_path_buf()))
        .collect();
    for (i, a) in full.iter().enumerate() {
        if full[..i].contains(a) {
            bail!(
                "{} is given for two outputs (e.g. --ids equal to --out): each needs its own file",
                outputs[i].as_ref().display()
            );
        }
    }
    Ok(())
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ids_path = args
        .ids
        .clone()
        .unwrap_or_else(|| sidecar(&args.out, "ids.txt"));
    let outputs = [
        args.out.clone(),
        ids_path.clone(),
        sidecar(&args.out, "skipped.csv"),
        sidecar(&args.out, "meta.json"),
    ];
    check_distinct_outputs(&outputs)?;
    if !args.force {
        // The `.npy` is written last (`write_outputs`): without it, sidecars next to it are
        // what an interrupted run of this command left, and a rerun replaces them. The
        // finished `.npy`, and an `--ids` file named explicitly, are only replaced on request.
        let kept = |p: &PathBuf| *p == args.out || (args.ids.as_ref() == Some(p));
        if let Some(existing) = outputs.iter().find(|p| kept(p) && p.exists()) {
            bail!("{} exists (use --force to overwrite)", existing.display());
        }
        for left in outputs.iter().filter(|p| !kept(p) && p.exists()) {
            eprintln!(
                "embed: {} was left by an unfinished run (no {} yet); it will be replaced",
                left.display(),
                args.out.display()
            );
        }
    }
    for p in &outputs {
        super::create_parent(p)?;
    }
    let all = match (&args.images, &args.list) {
        (Some(dir), None) => list_images(dir)?,
        (None, Some(list)) => read_list(list)?,
        _ => bail!("give exactly one of --images DIR and --list FILE"),
    };
    if all.is_empty() {
        match (&args.images, &args.list) {
            (Some(dir), _) => bail!("no files in {}", dir.display()),
            (_, Some(list)) => bail!("{} names no file", list.display()),
            _ => {}
        }
    }
    check_unique_ids(&all)?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    let paths = all[shard.range(all.len())].to_vec();

    let test_model;
    let torch_model;
    let model = match (args.test_model, args.model) {
        (Some(grid), _) => {
            test_model = GridMeanEmbedder::new(PreprocessSpec::clip(), grid)
                .with_delay(Duration::from_millis(args.test_delay_ms));
            Model::Host(&test_model)
        }
        (None, Some(kind)) => {
            torch_model = load_torch_embedder(
                kind,
                &ModelOptions {
                    weights: args.weights.clone(),
                    device: args.runtime.device.clone(),
                    precision: args.runtime.precision.clone(),
                    pooling: args.pooling.clone(),
                },
            )?;
            Model::Torch(torch_model.as_ref())
        }
        (None, None) => bail!("--model is required"),
    };

    let options = ExtractOptions {
        workers: args.runtime.workers,
        batch_size: args
            .batch_size
            .unwrap_or_else(|| model.default_batch_size()),
        normalize: !args.no_normalize,
        max_failure_rate: args.max_failure_rate,
        strict: args.strict,
        progress: true,
        transfer: args.transfer,
        resize_on: args.runtime.resize_on,
        fast_jpeg: args.runtime.fast_jpeg,
        ..ExtractOptions::default()
    };
    let key = CacheKey {
        model_id: model.model_id().to_string(),
        weights_hash: weights_fingerprint(args.weights.as_deref().unwrap_or("default"))?,
        preprocess: options.preprocess_key(model.preprocess_spec()),
        extra: format!(
            "precision={:?} pooling={:?} test={:?}{}",
            args.runtime.precision,
            args.pooling,
            args.test_model,
            args.runtime.cache_tag()
        ),
    };
    let cache_root = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| sidecar(&args.out, "cache"));
    let cache = CacheOptions {
        root: cache_root.clone(),
        chunk_size: args.chunk_size,
    };
    let result = extract_cached(model, &paths, &options, &key, &cache)?;
    let whole = key.digest(&all, model.dim(), 0);
    let meta = EmbedMeta {
        model_id: model.model_id().to_string(),
        dim: model.dim(),
        rows: result.ids.len(),
        skipped: result.skipped.len(),
        list_len: all.len(),
        shard,
        extraction: whole.iter().take(16).map(|b| format!("{b:02x}")).collect(),
        normalized: options.normalize,
    };
    write_outputs(&args.out, &ids_path, &result, &meta)?;
    if !args.keep_cache {
        std::fs::remove_dir_all(&cache_root)
            .with_context(|| format!("removing the cache {}", cache_root.display()))?;
    }
    let s = result.stats;
    eprintln!(
        "embedded {} images ({} skipped, listed in {}) into {}: {} × {}; {} computed in {:.1} s, {:.1} images/s",
        result.ids.len(),
        result.skipped.len(),
        sidecar(&args.out, "skipped.csv").display(),
        args.out.display(),
        result.embeddings.nrows(),
        result.embeddings.ncols(),
        s.processed,
        s.wall.as_secs_f64(),
        s.images_per_second()
    );
    Ok(ExitCode::SUCCESS)
}
