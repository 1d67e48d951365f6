//! Running `build` (feature `torch`): the pipeline's batches stream into a
//! [`CollectionWriter`], committed once at the end (or when the failure rate stops the run,
//! with what was embedded so far).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use embed_collection::{
    Collection, CollectionInfo, CollectionWriter, Dtype, ImageRow, IndexSpec, MANIFEST_FILE,
    ShardSpec, Source, WriteOptions, list_digest,
};
use embed_pipeline::{BatchResult, PipelineError, Shard, extract_streaming, file_stem_id};
use vecindex::{HnswParams, IndexType, Plan};

use super::Args;
use super::identity::{ModelRecord, weights_as_recorded};
use crate::cli::extraction::{PipelineArgs, image_list, load_embedder};
use crate::cli::progress::TerminalProgress;

/// How the run treats the folder it writes.
enum Mode {
    /// A new collection (or one started over with `--replace`, or a shard rewritten).
    Fresh { replace: bool },
    /// Images added to the existing collection.
    Extend(Box<Collection>),
}

/// Each image's `image_path`: relative to the folder for `--images`, as listed for `--list`.
fn image_paths(args: &Args, all: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    all.iter()
        .map(|p| {
            let rel = match &args.images {
                Some(dir) => p.strip_prefix(dir).unwrap_or(p),
                None => p.as_path(),
            };
            rel.to_str().map(str::to_owned).with_context(|| {
                format!(
                    "{}: the path is not UTF-8, which Parquet needs",
                    p.display()
                )
            })
        })
        .collect()
}

fn is_collection(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).exists()
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Before anything is read or written: `--shard auto` outside Slurm is a usage error.
    let shard = args.shard.map(|s| s.resolve()).transpose()?;
    let all = image_list(args.images.as_deref(), args.list.as_deref())?;
    let all_paths = image_paths(&args, &all)?;

    let mode = if !is_collection(&args.out) {
        Mode::Fresh { replace: false }
    } else if args.replace {
        Mode::Fresh { replace: true }
    } else {
        let existing = Collection::open(&args.out)?;
        let existing_shard = existing.manifest().source.as_ref().and_then(|s| s.shard);
        match (shard, existing_shard) {
            // A shard task run again (requeued, preempted) rewrites its shard.
            (Some(_), Some(_)) => Mode::Fresh { replace: true },
            (Some(s), None) => bail!(
                "{} holds a whole collection, not a shard: a shard build (--shard {s}) would \
                 replace it; give another --out or add --replace",
                args.out.display()
            ),
            (None, Some(s)) => bail!(
                "{} holds shard {s} of a sharded build: join the shards with `merge-shards`, \
                 or add --replace to start over",
                args.out.display()
            ),
            (None, None) => Mode::Extend(Box::new(existing)),
        }
    };

    let loaded = load_embedder(&args.model, &args.runtime)?;
    if loaded.random_weights() {
        eprintln!("build: the checkpoint holds RANDOM weights: its similarities mean nothing");
    }
    let model = loaded.model()?;
    let progress = TerminalProgress::new("images");
    let options = PipelineArgs {
        runtime: &args.runtime,
        batch_size: args.batch_size,
        normalize: false, // the collection writer normalises
        max_failure_rate: args.max_failure_rate,
        strict: args.strict,
        transfer: args.transfer,
    }
    .options(&model, Some(progress.pipeline_callback()));

    let mut record = ModelRecord {
        family: args
            .model
            .test_model
            .is_none()
            .then_some(args.model.model)
            .flatten(),
        weights: match (args.model.test_model, loaded.torch()) {
            (None, Some(m)) => Some(weights_as_recorded(
                args.model
                    .weights
                    .as_deref()
                    .unwrap_or(m.kind.default_weights()),
            )),
            _ => None,
        },
        pooling: args.model.pooling.clone(),
        test_model: args.model.test_model,
        pixels: format!(
            "{}{}",
            options.preprocess_key(model.preprocess_spec()),
            args.runtime.cache_tag()
        ),
        resize_on_device: args.runtime.resize_on == embed_pipeline::ResizeOn::Device,
        fast_jpeg: args.runtime.fast_jpeg,
        random_weights: loaded.random_weights(),
    };
    let mut model_id = model.model_id().to_string();
    let (kind, dtype) = match &mode {
        Mode::Extend(c) => {
            let m = c.manifest();
            if m.weights_digest != loaded.weights_digest {
                bail!(
                    "{} was built with {} (weights digest {}), not {model_id} (weights digest {}): add --replace to start over, or choose another --out",
                    args.out.display(),
                    m.model_id,
                    m.weights_digest,
                    loaded.weights_digest
                );
            }
            // The same files under another name (a folder moved, an id for a folder) are the
            // same model: keep the names the collection has.
            model_id = m.model_id.clone();
            if let Ok(old) = ModelRecord::of(m, c.dir()) {
                record.weights = old.weights;
            }
            if args.max_memory.is_some() && args.kind.is_none() {
                eprintln!(
                    "index kind: {} (the existing collection's; --max-memory chooses for new \
                     ones)",
                    m.index.kind()
                );
            }
            let kind = match args.kind {
                // The same kind is the collection's spec; another is refused below.
                Some(k) if k == m.index.kind() => m.index,
                Some(k) => IndexSpec::from_plan(&Plan::of(
                    k,
                    all_paths.len(),
                    model.dim(),
                    HnswParams::default(),
                )),
                None => m.index,
            };
            (kind, args.dtype.unwrap_or(m.dtype))
        }
        Mode::Fresh { .. } => {
            // Sized for the whole list, so that every shard of a sharded build chooses alike.
            let kind = args
                .kind
                .or(args.max_memory.is_none().then_some(IndexType::Flat));
            let plan = crate::cli::index::plan(
                kind,
                args.max_memory,
                all_paths.len(),
                model.dim(),
                HnswParams::default(),
            )?;
            if args.max_memory.is_some() {
                eprintln!("index kind: {} ({})", plan.kind, plan.reason);
            }
            (
                IndexSpec::from_plan(&plan),
                args.dtype.unwrap_or(Dtype::F32),
            )
        }
    };
    let info = CollectionInfo {
        model_id,
        weights_digest: loaded.weights_digest.clone(),
        preprocessing: record.to_value(),
        dim: model.dim(),
        metric: vecindex::Metric::InnerProduct,
        dtype,
        index: kind,
        source: Some(Source {
            list_digest: list_digest(&all_paths),
            list_len: all_paths.len() as u64,
            shard: shard.map(|s| ShardSpec {
                index: s.index,
                count: s.count,
            }),
        }),
        tool: format!("image-sim {}", env!("CARGO_PKG_VERSION")),
    };

    // The images this run embeds (positions in `all`).
    let range = shard.unwrap_or(Shard::ALL).range(all.len());
    // Known before any image is embedded: IVF-PQ trains on the rows it indexes.
    if matches!(mode, Mode::Fresh { .. })
        && kind.kind() == IndexType::IvfPq
        && range.len() < vecindex::ivf::MIN_TRAINING_ROWS
    {
        bail!(
            "an IVF-PQ index trains on at least {} vectors and this build has {} images: \
             choose another --kind (exact search suits sets this small)",
            vecindex::ivf::MIN_TRAINING_ROWS,
            range.len()
        );
    }
    let (mut writer, todo, before) = match mode {
        Mode::Fresh { replace } => {
            let w = if replace {
                CollectionWriter::replace(&args.out, info)?
            } else {
                CollectionWriter::create(&args.out, info)?
            };
            (w, range.collect::<Vec<usize>>(), 0)
        }
        Mode::Extend(c) => {
            let skipped: HashSet<&str> = c.skipped().iter().map(|s| s.path.as_str()).collect();
            let todo: Vec<usize> = range
                .filter(|&i| !c.contains_path(&all_paths[i]) && !skipped.contains(&*all_paths[i]))
                .collect();
            for &i in &todo {
                let id = file_stem_id(&all[i]);
                if let Some(row) = c.row_of_id(&id) {
                    bail!(
                        "{} would get the id `{id}`, which {} (row {row}) has already",
                        all_paths[i],
                        c.row(row).map_or("?", |r| r.image_path.as_str())
                    );
                }
            }
            let before = c.len();
            let w = (*c).append(info).with_context(|| {
                format!(
                    "{} was built with another model or settings; add --replace to start over",
                    args.out.display()
                )
            })?;
            (w, todo, before)
        }
    };
    writer.set_options(WriteOptions {
        rows_per_file: args.rows_per_file,
        ..WriteOptions::default()
    })?;

    let paths: Vec<&Path> = todo.iter().map(|&i| all[i].as_path()).collect();
    let mut failed: Vec<(usize, String)> = Vec::new();
    let mut sink = |b: BatchResult| -> embed_pipeline::Result<()> {
        push(&mut writer, &b, &todo, &all, &all_paths, &mut failed)
            .map_err(|e| PipelineError::InvalidOption(format!("writing the collection: {e}")))
    };
    let result = if paths.is_empty() {
        Ok(None)
    } else {
        extract_streaming(model, &paths, &options, paths.len(), Vec::new(), &mut sink).map(Some)
    };
    progress.finish();
    let (stats, stopped) = match result {
        Ok(stats) => (stats, None),
        Err(PipelineError::TooManyFailures {
            total,
            max_rate,
            failures,
        }) => {
            // Every failure so far, in input order (those of delivered batches included).
            failed = failures
                .iter()
                .map(|s| (s.index, s.reason.clone()))
                .collect();
            let msg = format!(
                "{} of {total} images could not be used, more than --max-failure-rate \
                 {max_rate} allows",
                failures.len()
            );
            (None, Some(msg))
        }
        Err(PipelineError::Strict { path, reason }) => {
            if let Some(i) = paths.iter().position(|p| *p == path) {
                failed.push((i, reason.clone()));
            }
            (
                None,
                Some(format!(
                    "{}: {reason} (--strict: any unreadable image stops the build)",
                    path.display()
                )),
            )
        }
        Err(e) => return Err(e.into()),
    };
    failed.sort_by_key(|f| f.0);
    failed.dedup_by_key(|f| f.0);
    for (i, reason) in &failed {
        writer.skip(all_paths[todo[*i]].clone(), reason.clone());
    }
    let added = writer.len() - before;
    let inserting = TerminalProgress::new("points");
    let manifest = writer.finish_with_progress(&|done, total| inserting.set(done, total));
    inserting.finish();
    let manifest = manifest?;
    let skipped_csv = args.out.join(embed_collection::SKIPPED_FILE);
    if let Some(msg) = stopped {
        bail!(
            "{msg}. The {added} images embedded before the stop and every failure ({} listed \
             in {}) are committed to {}: fix the images, or rerun the same command with a \
             higher --max-failure-rate (only the images not in the collection are embedded)",
            failed.len(),
            skipped_csv.display(),
            args.out.display()
        );
    }
    let (secs, rate) = stats.map_or((0.0, 0.0), |s| {
        (s.wall.as_secs_f64(), s.images_per_second())
    });
    eprintln!(
        "built {}: {} rows ({added} added, {} skipped now, {} in all, listed in {}), {} index, \
         {} × {}; {} images in {secs:.1} s, {rate:.1} images/s",
        args.out.display(),
        manifest.rows,
        failed.len(),
        manifest.skipped.len(),
        skipped_csv.display(),
        manifest.index.kind(),
        manifest.rows,
        manifest.dim,
        paths.len(),
    );
    if let Some(hint) = rerank_hint(manifest.index.kind()) {
        eprintln!("build: {hint}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What a compressed index's approximate scores mean for its user, and the option that makes
/// them exact; `None` for the kinds that score with the f32 rows.
fn rerank_hint(kind: IndexType) -> Option<&'static str> {
    match kind {
        IndexType::Flat | IndexType::Hnsw => None,
        IndexType::Sq8 | IndexType::F16 | IndexType::HnswSq8 => Some(
            "the index scores with compressed codes (similarities off by about 1e-3): `query \
             --rerank 2` and `serve --rerank 2` re-score the candidates with the stored vectors",
        ),
        IndexType::IvfPq => Some(
            "IVF-PQ scores are approximate and reorder close neighbours: `query --rerank R` and \
             `serve --rerank R` re-score k x R candidates with the stored vectors (R 10 and up; \
             tightly clustered collections can need 50 for recall 0.9)",
        ),
    }
}

/// Adds a batch's usable images to the collection and notes its failures (positions in
/// `todo`). An embedding that is zero or not finite is a failure of its image, not of the run.
fn push(
    writer: &mut CollectionWriter,
    b: &BatchResult,
    todo: &[usize],
    all: &[PathBuf],
    all_paths: &[String],
    failed: &mut Vec<(usize, String)>,
) -> anyhow::Result<()> {
    let dim = b.embeddings.ncols();
    let mut rows = Vec::with_capacity(b.rows.len());
    let mut data = Vec::with_capacity(b.rows.len() * dim);
    for (k, (&r, &(width, height))) in b.rows.iter().zip(&b.sizes).enumerate() {
        let pos = b.start + r;
        let v = b.embeddings.row(k);
        let norm2: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        if !norm2.is_finite() || norm2 == 0.0 {
            failed.push((pos, "the model's embedding is zero or not finite".into()));
            continue;
        }
        let i = todo[pos];
        rows.push(ImageRow {
            image_path: all_paths[i].clone(),
            id: file_stem_id(&all[i]),
            width,
            height,
        });
        data.extend(v.iter());
    }
    failed.extend(
        b.failed
            .iter()
            .map(|(s, reason)| (b.start + s, reason.clone())),
    );
    writer.push_batch(&rows, &data)?;
    Ok(())
}
