//! Running `bench` (feature `torch`).

use std::process::ExitCode;

use anyhow::{Context, bail};
use embed_core::PreprocessSpec;
use embed_pipeline::test_model::GridMeanEmbedder;
use embed_pipeline::{ExtractOptions, Model, extract, list_images};
use embed_torch::Precision;

use super::Args;
use super::agreement::Agreement;
use super::images::{TempDir, synthetic_images};
use super::measure::{Figures, time_decode, time_model, time_torch_model};
use super::{baseline, report};
use crate::ModelKind;
use crate::models::{ModelOptions, load};

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.json {
        if path.exists() && !args.force {
            anyhow::bail!("{} exists; pass --force to overwrite it", path.display());
        }
        if path.is_dir() {
            anyhow::bail!("--json {} is a folder; give a file name", path.display());
        }
        // Before the benchmark runs, not after: the folder the figures go to must exist.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            anyhow::bail!("--json {}: no folder {}", path.display(), parent.display());
        }
    }
    let test_model;
    let torch_model;
    let model = match (args.test_model, args.model) {
        (Some(g), _) => {
            test_model = GridMeanEmbedder::new(PreprocessSpec::clip(), g);
            Model::Host(&test_model)
        }
        (None, Some(kind)) => {
            torch_model = load(
                kind,
                &ModelOptions {
                    weights: args.weights.clone(),
                    device: args.runtime.device.clone(),
                    precision: args.runtime.precision.clone(),
                    pooling: None,
                },
            )?;
            Model::Torch(torch_model.embedder.as_ref())
        }
        (None, None) => bail!("--model is required"),
    };
    let (cuda, precision) = match model {
        Model::Torch(t) => (
            t.device().is_cuda(),
            Precision::of_kind(t.kind()).unwrap_or_default(),
        ),
        _ => (false, Precision::F32),
    };
    if args.compare_f32 && (args.test_model.is_some() || precision == Precision::F32) {
        bail!("--compare-f32 compares a model run with --precision f16 or bf16 against f32");
    }
    let tmp;
    let images = match (&args.images, &args.keep_images) {
        (Some(d), _) => d.clone(),
        (None, Some(keep)) => {
            if keep.exists() {
                bail!(
                    "{} exists; --keep-images writes a new folder (pass it as --images to reuse it)",
                    keep.display()
                );
            }
            std::fs::create_dir_all(keep)
                .with_context(|| format!("creating {}", keep.display()))?;
            synthetic_images(keep, args.n_images, args.photo_size)?;
            keep.clone()
        }
        (None, None) => {
            tmp = TempDir::new()?;
            synthetic_images(&tmp.0, args.n_images, args.photo_size)?;
            tmp.0.clone()
        }
    };
    let batch = args.batch_size.unwrap_or(if cuda { 256 } else { 8 });
    let paths = list_images(&images)?;
    if paths.is_empty() {
        bail!("no images in {}", images.display());
    }
    let options = ExtractOptions {
        workers: args.runtime.workers,
        batch_size: batch,
        resize_on: args.runtime.resize_on,
        ..ExtractOptions::default()
    };
    let fast_options = ExtractOptions {
        fast_jpeg: true,
        ..options.clone()
    };
    eprintln!(
        "bench: {} on {} images of {}, batch {batch}, {} workers, device {}, resize on {}{}",
        model.model_id(),
        paths.len(),
        images.display(),
        options.effective_workers(),
        if cuda { "cuda" } else { "cpu" },
        args.runtime.resize_on,
        if args.runtime.fast_jpeg {
            ", fast JPEG mode (and the exact path, to compare)"
        } else {
            ""
        }
    );
    // Decoding and preprocessing alone, by the workers end to end uses (the same slots and
    // pixel format, the resize asked for).
    let (dp, passes) = time_decode(model, &paths, &options)?;
    let dp_fast = if args.runtime.fast_jpeg {
        Some(time_decode(model, &paths, &fast_options)?.0)
    } else {
        None
    };
    let model_only = match model {
        Model::Torch(t) => time_torch_model(t, batch, args.model_iters)?,
        Model::Host(e) => time_model(e, batch, args.model_iters)?,
        _ => bail!("a kind of model this bench does not know"),
    };
    let e2e = extract(model, &paths, &options)?;
    let rust = Figures {
        decode_preprocess: dp.images_per_second(),
        model_only,
        end_to_end: e2e.stats.images_per_second(),
    };
    let fast = match dp_fast {
        Some(dp_fast) => {
            let e2e_fast = extract(model, &paths, &fast_options)?;
            let agreement = Agreement::of(&e2e, &e2e_fast)?;
            Some((
                Figures {
                    decode_preprocess: dp_fast.images_per_second(),
                    model_only,
                    end_to_end: e2e_fast.stats.images_per_second(),
                },
                agreement,
            ))
        }
        None => None,
    };
    // The same pipeline with the model in f32, loaded after the timings (both models would
    // not always fit on the device together).
    let vs_f32 = match (args.compare_f32, args.model) {
        (true, Some(kind)) => {
            let f32_model = load(
                kind,
                &ModelOptions {
                    weights: args.weights.clone(),
                    device: args.runtime.device.clone(),
                    precision: Some("f32".into()),
                    pooling: None,
                },
            )?;
            eprintln!("bench: embedding the images again with the model in f32, to compare");
            let reference = extract(Model::Torch(f32_model.embedder.as_ref()), &paths, &options)?;
            Some(Agreement::of(&reference, &e2e)?)
        }
        _ => None,
    };
    let wall = e2e.stats.wall.as_secs_f64().max(1e-9);
    // The rate once the pipeline runs, which a long extraction approaches: batches per second
    // reaching the model thread between the first and the last (one interval per batch, each
    // the decoding or the model's work on a batch, whichever is slower), without the set-up
    // (pinned buffers), the wait for the first batch and the last batch's computation.
    let steady = {
        let intervals = paths.len().div_ceil(batch).saturating_sub(1);
        let secs = (e2e.stats.last_batch.saturating_sub(e2e.stats.first_batch)).as_secs_f64();
        (intervals > 0 && secs > 0.0).then(|| (intervals * batch) as f64 / secs)
    };
    let in_model = e2e.stats.model_time.as_secs_f64() / wall;
    let waiting = e2e.stats.wait_time.as_secs_f64() / wall;
    if !e2e.skipped.is_empty() {
        eprintln!(
            "warning: {} images could not be read (first: {})",
            e2e.skipped.len(),
            e2e.skipped[0].reason
        );
    }

    let python = if args.python_baseline {
        let kind = args.model.unwrap_or(ModelKind::Clip);
        Some(baseline::run(
            &args,
            kind,
            &images,
            batch,
            options.effective_workers(),
            cuda,
        )?)
    } else {
        None
    };
    let results = report::Results {
        model_id: model.model_id(),
        images: paths.len(),
        batch,
        workers: options.effective_workers(),
        cuda,
        precision,
        passes,
        rust,
        e2e: &e2e,
        fast: fast.as_ref(),
        vs_f32: vs_f32.as_ref(),
        python: python.as_ref(),
        steady,
        in_model,
        waiting,
    };
    results.print_table();
    if let Some(path) = &args.json {
        results.write_json(path)?;
    }
    Ok(ExitCode::SUCCESS)
}
