//! `disc21-eval bench`: decode + preprocess, model-only and end-to-end throughput of the
//! extraction pipeline, optionally side by side with the Python / `transformers` pipeline run
//! in the same invocation on the same images (`scripts/gpu/baseline.py`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use disc21_eval::models::{ModelKind, ModelOptions, load_torch_embedder};
use disc21_eval::pipeline::test_model::GridMeanEmbedder;
use disc21_eval::pipeline::{ExtractOptions, Extraction, Model, decode_only, extract, list_images};
use embed_core::{Embedder, PreprocessSpec};
use embed_torch::{Precision, TorchEmbedder};
use ndarray::{Array2, Array4};
use rand::{Rng, SeedableRng};

/// Arguments of `disc21-eval bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model family.
    #[arg(long, value_enum, required_unless_present = "test_model")]
    pub model: Option<ModelKind>,
    /// Images to run on (default: synthetic 360–640 px JPEGs in a temporary folder).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Synthetic images to generate when no --images is given.
    #[arg(long, default_value_t = 64, value_parser = super::at_least_one)]
    pub n_images: usize,
    /// Generate photo-like synthetic JPEGs (noise at every scale, like a photo's 1/f spectrum)
    /// whose sides are drawn from `LO-HI` pixels, instead of the default 360–640 px smooth noise.
    /// E.g. `1500-3000` for phone-camera sizes, to measure `--fast-jpeg`.
    #[arg(long, value_parser = parse_range)]
    pub photo_size: Option<(u32, u32)>,
    /// Write the synthetic images into this new folder and keep them (default: a temporary
    /// folder, removed at the end); rerun on them with `--images`.
    #[arg(long, conflicts_with = "images")]
    pub keep_images: Option<PathBuf>,
    /// Device, precision and decoding threads.
    #[command(flatten)]
    pub runtime: super::RuntimeArgs,
    /// Checkpoint folder or model id.
    #[arg(long)]
    pub weights: Option<String>,
    /// Images per model call (default: 8 on the CPU, 256 on CUDA).
    #[arg(long, value_parser = super::at_least_one)]
    pub batch_size: Option<usize>,
    /// With `--precision f16|bf16`: also embed the images with the f32 model on the same device
    /// and compare the two embeddings of each image (cosine, nearest neighbour), to see what the
    /// reduced precision costs in accuracy next to what it gains in speed.
    #[arg(long)]
    pub compare_f32: bool,
    /// Model-only repetitions.
    #[arg(long, default_value_t = 3, value_parser = super::at_least_one)]
    pub model_iters: usize,
    /// Also run the Python pipeline on the same images and device, and print ratios.
    #[arg(long)]
    pub python_baseline: bool,
    /// The Python interpreter (default: the workspace's `.venv/bin/python` when present, else
    /// `python3`).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The baseline script (default: `scripts/gpu/baseline.py` under the working directory or
    /// beside this executable).
    #[arg(long)]
    pub baseline_script: Option<PathBuf>,
    /// Write all figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite `--json` if it exists.
    #[arg(long)]
    pub force: bool,
    /// Testing aid: a deterministic grid-mean embedder instead of a model.
    #[arg(long, hide = true, value_parser = super::at_least_one)]
    pub test_model: Option<usize>,
}

/// `LO-HI` (pixels) for `--photo-size`.
fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("expected LO-HI (e.g. 1500-3000), got {s:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|e| format!("{v:?} in {s:?}: {e}"))
    };
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    if !(16..=16_384).contains(&lo) || hi < lo || hi > 16_384 {
        return Err(format!("need 16 <= LO <= HI <= 16384, got {lo}-{hi}"));
    }
    Ok((lo, hi))
}

/// Synthetic JPEGs, quality 90. Default: like `baseline.py` makes, bilinear-upscaled noise in
/// 8-px cells, 360–640 px. With `photo: Some((lo, hi))`: sides in `lo..=hi` and noise at every
/// scale from 2 px to the image's size, each octave with the same amplitude (roughly the 1/f
/// amplitude spectrum of photographs), so that a downscale has detail to lose in every band.
fn synthetic_images(dir: &Path, n: usize, photo: Option<(u32, u32)>) -> anyhow::Result<()> {
    use image::imageops::{FilterType, resize};
    use rayon::prelude::*;
    // One random stream per image: the same files whatever the number of threads.
    (0..n)
        .into_par_iter()
        .try_for_each(|i| -> anyhow::Result<()> {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i as u64);
            let img = match photo {
                None => {
                    let (h, w) = (rng.gen_range(360..640u32), rng.gen_range(360..640u32));
                    let (bh, bw) = (h / 8 + 1, w / 8 + 1);
                    let base =
                        image::RgbImage::from_fn(bw, bh, |_, _| image::Rgb(rng.r#gen::<[u8; 3]>()));
                    resize(&base, w, h, FilterType::Triangle)
                }
                Some((lo, hi)) => {
                    let (h, w) = (rng.gen_range(lo..=hi), rng.gen_range(lo..=hi));
                    disc21_eval::generate::photo_like(&mut rng, w, h)
                }
            };
            let path = dir.join(format!("img{i:05}.jpg"));
            let file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(
                std::io::BufWriter::new(file),
                90,
            );
            enc.encode_image(&img)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        })
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn find_script(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let rel = Path::new("scripts/gpu/baseline.py");
    let mut candidates = vec![rel.to_path_buf(), workspace_root().join(rel)];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("baseline.py"));
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .context("scripts/gpu/baseline.py not found (pass --baseline-script)")
}

fn find_python(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Figures of one pipeline, images per second.
#[derive(serde::Serialize, Default, Clone, Copy)]
struct Figures {
    decode_preprocess: f64,
    model_only: f64,
    end_to_end: f64,
}

/// Untimed model calls before the model-only timing, as `scripts/gpu/baseline.py` makes them
/// (the first calls pay for kernel selection and allocator warm-up).
const WARMUP_CPU: usize = 2;
const WARMUP_CUDA: usize = 3;

fn time_model(model: &dyn Embedder, batch: usize, iters: usize) -> anyhow::Result<f64> {
    let (h, w) = model
        .preprocess_spec()
        .fixed_output_size()
        .context("model has no fixed input size")?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let x = Array4::from_shape_fn((batch, 3, h, w), |_| rng.gen_range(-2.0f32..2.0));
    // Warm-up: as many calls as the Python baseline makes on the CPU.
    for _ in 0..WARMUP_CPU {
        model.embed_batch(x.view())?;
    }
    let t = Instant::now();
    for _ in 0..iters.max(1) {
        model.embed_batch(x.view())?;
    }
    Ok((iters.max(1) * batch) as f64 / t.elapsed().as_secs_f64())
}

/// The shortest timed decode + preprocess run: a few per cent are lost in the noise of shorter
/// ones (64 images decode in ~35 ms on two cores).
const MIN_DECODE_SECONDS: f64 = 1.0;

/// Decode + preprocess alone ([`decode_only`]): a first pass over `paths` (which also fills
/// the page cache), then one timed run over the list repeated as many times as make it last
/// [`MIN_DECODE_SECONDS`] (at most 100). Returns the timed run's stats and the repeats.
fn time_decode(
    model: Model<'_>,
    paths: &[PathBuf],
    options: &ExtractOptions,
) -> anyhow::Result<(disc21_eval::pipeline::ExtractStats, usize)> {
    let first = decode_only(model, paths, options)?;
    let secs = first.wall.as_secs_f64().max(1e-3);
    let passes = ((MIN_DECODE_SECONDS / secs).ceil() as usize).clamp(1, 100);
    let repeated: Vec<&PathBuf> = paths.iter().cycle().take(paths.len() * passes).collect();
    Ok((decode_only(model, &repeated, options)?, passes))
}

/// Model-only rate of a libtorch model: a random batch already on its device, results copied
/// back (which waits for the device).
fn time_torch_model(model: &dyn TorchEmbedder, batch: usize, iters: usize) -> anyhow::Result<f64> {
    let (h, w) = model
        .preprocess_spec()
        .fixed_output_size()
        .context("model has no fixed input size")?;
    let _guard = tch::no_grad_guard();
    let x = tch::Tensor::f_randn(
        [batch as i64, 3, h as i64, w as i64],
        (tch::Kind::Float, model.device()),
    )?
    .f_to_kind(model.kind())?;
    // Warm-up: as many calls as the Python baseline makes on this device.
    let warmup = if model.device().is_cuda() {
        WARMUP_CUDA
    } else {
        WARMUP_CPU
    };
    for _ in 0..warmup {
        embed_torch::tensor_to_array2(&model.embed_tensor(&x)?)?;
    }
    let t = Instant::now();
    for _ in 0..iters.max(1) {
        embed_torch::tensor_to_array2(&model.embed_tensor(&x)?)?;
    }
    Ok((iters.max(1) * batch) as f64 / t.elapsed().as_secs_f64())
}

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
            torch_model = load_torch_embedder(
                kind,
                &ModelOptions {
                    weights: args.weights.clone(),
                    device: args.runtime.device.clone(),
                    precision: args.runtime.precision.clone(),
                    pooling: None,
                },
            )?;
            Model::Torch(torch_model.as_ref())
        }
        (None, None) => bail!("--model is required"),
    };
    let cuda = match model {
        Model::Torch(t) => t.device().is_cuda(),
        Model::Host(_) => false,
    };
    let precision = match model {
        Model::Torch(t) => Precision::of_kind(t.kind()).unwrap_or_default(),
        Model::Host(_) => Precision::F32,
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
        progress: false,
        resize_on: args.runtime.resize_on,
        ..ExtractOptions::default()
    };
    let fast_options = ExtractOptions {
        fast_jpeg: true,
        ..options.clone()
    };
    eprintln!(
        "bench: {} on {} images of {}, batch {batch}, {} workers, device {}, resize on {:?}{}",
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
            let f32_model = load_torch_embedder(
                kind,
                &ModelOptions {
                    weights: args.weights.clone(),
                    device: args.runtime.device.clone(),
                    precision: Some("f32".into()),
                    pooling: None,
                },
            )?;
            eprintln!("bench: embedding the images again with the model in f32, to compare");
            let reference = extract(Model::Torch(f32_model.as_ref()), &paths, &options)?;
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
        let kind = match args.model {
            Some(ModelKind::Clip) | None => "clip",
            Some(ModelKind::Dinov2) => "dinov2",
        };
        let script = find_script(args.baseline_script.as_deref())?;
        let py = find_python(args.python.as_deref());
        let mut cmd = Command::new(&py);
        cmd.arg(&script)
            .args(["--model", kind, "--images"])
            .arg(&images)
            .args(["--batch-size", &batch.to_string()])
            .args(["--workers", &options.effective_workers().to_string()])
            .args(["--model-iters", &args.model_iters.to_string()])
            .args(["--device", if cuda { "cuda" } else { "cpu" }]);
        if let Some(p) = &args.runtime.precision {
            cmd.args(["--precision", p]);
        }
        eprintln!("bench: running {} {}", py.display(), script.display());
        let out = cmd
            .output()
            .with_context(|| format!("running {}", py.display()))?;
        if !out.status.success() {
            bail!(
                "the Python baseline failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(last).context("baseline output")?;
        let r = &v["results"];
        let get = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        Some((
            Figures {
                decode_preprocess: get("decode_preprocess"),
                model_only: get("model_only"),
                end_to_end: get("e2e"),
            },
            get("seed_style"),
            v,
        ))
    } else {
        None
    };

    println!(
        "| images/s ({}, {} images, batch {batch}) | Rust | Python | Rust / Python |",
        model.model_id(),
        paths.len()
    );
    println!("|---|---:|---:|---:|");
    let decode_label = if passes > 1 {
        format!("decode + preprocess (Rust: the images {passes} times)")
    } else {
        "decode + preprocess".to_string()
    };
    let rows = [
        (
            decode_label.as_str(),
            rust.decode_preprocess,
            python.as_ref().map(|p| p.0.decode_preprocess),
        ),
        (
            "model only",
            rust.model_only,
            python.as_ref().map(|p| p.0.model_only),
        ),
        (
            "end to end",
            rust.end_to_end,
            python.as_ref().map(|p| p.0.end_to_end),
        ),
    ];
    // A rate row: Rust, and Python with the ratio when there is a baseline.
    let rate_row = |name: &str, r: f64, p: Option<f64>| match p {
        Some(p) => println!("| {name} | {r:.1} | {p:.1} | {:.2}× |", r / p),
        None => println!("| {name} | {r:.1} | | |"),
    };
    for (name, r, p) in rows {
        rate_row(name, r, p);
    }
    if let Some((_, seed, _)) = &python {
        println!(
            "| seed-style (one image at a time) | | {seed:.1} | {:.2}× |",
            rust.end_to_end / seed
        );
    }
    if let Some((f, a)) = &fast {
        let py = python.as_ref().map(|p| p.0);
        for (name, r, p) in [
            (
                "decode + preprocess, fast JPEG (Python: exact)",
                f.decode_preprocess,
                py.map(|p| p.decode_preprocess),
            ),
            (
                "end to end, fast JPEG (Python: exact)",
                f.end_to_end,
                py.map(|p| p.end_to_end),
            ),
        ] {
            rate_row(name, r, p);
        }
        println!(
            "| fast JPEG vs exact embeddings: cosine mean / min | {:.6} / {:.6} | | |",
            a.mean_cosine, a.min_cosine
        );
        println!(
            "| fast JPEG embedding's nearest exact one is its own image | {} of {} | | |",
            a.self_top1, a.rows
        );
        println!(
            "| images too small for the fast mode (embeddings bit-identical) | {} of {} | | |",
            a.identical, a.rows
        );
        println!(
            "| (for scale) cosine between different images' exact embeddings, mean / max | {:.6} / {:.6} | | |",
            a.other_mean_cosine, a.other_max_cosine
        );
    }
    if let Some(a) = &vs_f32 {
        let p = precision.as_str();
        println!(
            "| {p} vs f32 embeddings: cosine mean / min | {:.6} / {:.6} | | |",
            a.mean_cosine, a.min_cosine
        );
        println!(
            "| {p} embedding's nearest f32 one is its own image | {} of {} | | |",
            a.self_top1, a.rows
        );
        println!(
            "| (for scale) cosine between different images' f32 embeddings, mean / max | {:.6} / {:.6} | | |",
            a.other_mean_cosine, a.other_max_cosine
        );
    }
    let py_ratio = python.as_ref().map(|p| p.0.end_to_end / p.0.model_only);
    println!(
        "| end to end / model only{} | {:.2} | {} | |",
        if cuda {
            " (the GPU's busy fraction, estimated: the share of the wall it computes at its model-only rate)"
        } else {
            ""
        },
        rust.end_to_end / rust.model_only,
        py_ratio.map(|r| format!("{r:.2}")).unwrap_or_default()
    );
    println!(
        "| end to end: model thread in model calls / waiting for decoded batches (fraction of wall{}) | {in_model:.2} / {waiting:.2} | | |",
        if cuda {
            "; on CUDA, calls queue the work and wait for results"
        } else {
            ""
        }
    );
    if let Some(r) = steady {
        println!(
            "| end to end, steady (from the first batch's arrival at the model to the last's) | {r:.1} | | |"
        );
    }
    println!(
        "| end to end: set-up (batch buffers) / first batch ready, ms | {:.0} / {:.0} | | |",
        e2e.stats.setup.as_secs_f64() * 1e3,
        e2e.stats.first_batch.as_secs_f64() * 1e3
    );
    if let Some(path) = &args.json {
        let v = serde_json::json!({
            "model": model.model_id(), "images": paths.len(), "batch_size": batch,
            "workers": options.effective_workers(), "cuda": cuda,
            "rust": rust,
            "end_to_end_stats": {
                "wall_s": e2e.stats.wall.as_secs_f64(),
                "model_calls_fraction": in_model,
                "waiting_for_batches_fraction": waiting,
                "setup_ms": e2e.stats.setup.as_secs_f64() * 1e3,
                "first_batch_ms": e2e.stats.first_batch.as_secs_f64() * 1e3,
                "last_batch_ms": e2e.stats.last_batch.as_secs_f64() * 1e3,
                "steady": steady,
            },
            "fast_jpeg": fast.as_ref().map(|(f, a)| serde_json::json!({
                "rust": f, "agreement_with_exact": a,
            })),
            "agreement_with_f32": vs_f32,
            "python": python.as_ref().map(|p| p.2.clone()),
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// How close one run's embeddings (fast JPEG, or a reduced precision) are to the exact ones,
/// image by image.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq)]
struct Agreement {
    /// Images compared.
    rows: usize,
    /// Mean and smallest cosine between an image's fast and exact embeddings ("fast": the run
    /// compared; "exact": the reference run).
    mean_cosine: f64,
    min_cosine: f64,
    /// Images whose fast embedding has its own exact embedding as nearest exact neighbour.
    self_top1: usize,
    /// Images whose two embeddings are bit-identical (fast JPEG: too small for the fast mode to
    /// apply).
    identical: usize,
    /// Mean and largest cosine between *different* images' exact embeddings: what a cosine
    /// means for these weights (random weights put unrelated images close together).
    other_mean_cosine: f64,
    other_max_cosine: f64,
}

impl Agreement {
    fn of(exact: &Extraction, fast: &Extraction) -> anyhow::Result<Self> {
        if exact.ids != fast.ids {
            bail!("the two runs compared embedded different images (an image failed in one)");
        }
        let unit = |m: &Array2<f32>| {
            let mut m = m.mapv(f64::from);
            for mut row in m.rows_mut() {
                let n = row.dot(&row).sqrt();
                if n > 0.0 {
                    row /= n;
                }
            }
            m
        };
        let (e, f) = (unit(&exact.embeddings), unit(&fast.embeddings));
        let rows = e.nrows();
        if rows == 0 {
            bail!("no images were embedded");
        }
        let cross = f.dot(&e.t()); // cross[i][j] = cos(fast_i, exact_j)
        let gram = e.dot(&e.t());
        let mut a = Self {
            rows,
            mean_cosine: 0.0,
            min_cosine: f64::INFINITY,
            self_top1: 0,
            identical: 0,
            other_mean_cosine: 0.0,
            other_max_cosine: f64::NEG_INFINITY,
        };
        a.identical = exact
            .embeddings
            .rows()
            .into_iter()
            .zip(fast.embeddings.rows())
            .filter(|(x, y)| x == y)
            .count();
        for i in 0..rows {
            let own = cross[[i, i]];
            a.mean_cosine += own;
            a.min_cosine = a.min_cosine.min(own);
            if (0..rows).all(|j| j == i || cross[[i, j]] < own) {
                a.self_top1 += 1;
            }
            for j in (0..rows).filter(|&j| j != i) {
                a.other_mean_cosine += gram[[i, j]];
                a.other_max_cosine = a.other_max_cosine.max(gram[[i, j]]);
            }
        }
        a.mean_cosine /= rows as f64;
        if rows > 1 {
            a.other_mean_cosine /= (rows * (rows - 1)) as f64;
        } else {
            a.other_mean_cosine = f64::NAN;
            a.other_max_cosine = f64::NAN;
        }
        Ok(a)
    }
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        let p = std::env::temp_dir().join(format!("disc21-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
