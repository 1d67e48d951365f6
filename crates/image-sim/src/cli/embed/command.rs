//! Running `embed` (feature `torch`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use embed_pipeline::{CacheKey, CacheOptions, Extraction, PipelineError, Shard, extract_cached};

use super::Args;
use crate::cli::embed_meta::EmbedMeta;
use crate::cli::extraction::{PipelineArgs, image_list, load_embedder};
use crate::cli::files::{check_distinct_outputs, sidecar, write_atomic, write_skipped_csv};
use crate::cli::progress::TerminalProgress;

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
    write_skipped_csv(&sidecar(out, "skipped.csv"), &result.skipped)?;
    write_atomic(&sidecar(out, "meta.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, meta)?;
        writeln!(w)
    })?;
    // The embeddings last: their presence means the run finished.
    write_atomic(out, |w| embed_core::npy::write_f32(w, &result.embeddings))
}

/// The error of a run the failure rate stopped, after listing its failures in
/// `OUT.skipped.csv`: how many failed, where they are listed, and how to go on.
fn too_many_failures(
    args: &Args,
    total: usize,
    max_rate: f64,
    failures: &[embed_pipeline::Skipped],
    cache: &Path,
) -> anyhow::Error {
    let list = sidecar(&args.out, "skipped.csv");
    let listed = match write_skipped_csv(&list, failures) {
        Ok(()) => format!("all {} listed in {}", failures.len(), list.display()),
        Err(e) => format!("listing them failed: {e:#}"),
    };
    let first = failures
        .first()
        .map(|s| format!("{}: {}", s.path.display(), s.reason))
        .unwrap_or_default();
    anyhow::anyhow!(
        "{} of {total} images could not be used, more than --max-failure-rate {max_rate} allows \
         ({listed}; first: {first}). The finished work is kept in {}: rerun the same command \
         with a higher --max-failure-rate (e.g. {:.2}) to go on, or fix the images",
        failures.len(),
        cache.display(),
        (failures.len() as f64 / total.max(1) as f64 + 0.01).min(1.0)
    )
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Before anything is written: `--shard auto` outside Slurm is a usage error.
    let shard = match args.shard {
        Some(s) => s.resolve()?,
        None => Shard::ALL,
    };
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
        crate::cli::create_parent(p)?;
    }
    let all = image_list(args.images.as_deref(), args.list.as_deref())?;
    let paths = all[shard.range(all.len())].to_vec();

    let loaded = load_embedder(&args.model, &args.runtime)?;
    let model = loaded.model()?;

    let progress = TerminalProgress::new("images");
    let options = PipelineArgs {
        runtime: &args.runtime,
        batch_size: args.batch_size,
        normalize: !args.no_normalize,
        max_failure_rate: args.max_failure_rate,
        strict: args.strict,
        transfer: args.transfer,
    }
    .options(&model, Some(progress.pipeline_callback()));
    let key = CacheKey {
        model_id: model.model_id().to_string(),
        weights_hash: loaded.weights_digest.clone(),
        preprocess: options.preprocess_key(model.preprocess_spec()),
        extra: format!(
            "precision={:?} pooling={:?} test={:?}{}",
            args.runtime.precision,
            args.model.pooling,
            args.model.test_model,
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
    let result = extract_cached(model, &paths, &options, &key, &cache);
    progress.finish();
    let result = match result {
        Ok(r) => r,
        Err(PipelineError::TooManyFailures {
            total,
            max_rate,
            failures,
        }) => {
            return Err(too_many_failures(
                &args,
                total,
                max_rate,
                &failures,
                &cache_root,
            ));
        }
        Err(e) => return Err(e.into()),
    };
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
