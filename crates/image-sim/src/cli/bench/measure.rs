//! Timing the model alone and the decoding alone.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use embed_core::Embedder;
use embed_pipeline::{ExtractOptions, ExtractStats, Model, decode_only};
use embed_torch::TorchEmbedder;
use ndarray::Array4;
use rand::{Rng, SeedableRng};

/// Figures of one pipeline, images per second.
#[derive(serde::Serialize, Default, Clone, Copy)]
pub(super) struct Figures {
    pub(super) decode_preprocess: f64,
    pub(super) model_only: f64,
    pub(super) end_to_end: f64,
}

/// Untimed model calls before the model-only timing, as `scripts/gpu/baseline.py` makes them
/// (the first calls pay for kernel selection and allocator warm-up).
pub(super) const WARMUP_CPU: usize = 2;
const WARMUP_CUDA: usize = 3;

pub(super) fn time_model(model: &dyn Embedder, batch: usize, iters: usize) -> anyhow::Result<f64> {
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
pub(super) fn time_decode(
    model: Model<'_>,
    paths: &[PathBuf],
    options: &ExtractOptions,
) -> anyhow::Result<(ExtractStats, usize)> {
    let first = decode_only(model, paths, options)?;
    let secs = first.wall.as_secs_f64().max(1e-3);
    let passes = ((MIN_DECODE_SECONDS / secs).ceil() as usize).clamp(1, 100);
    let repeated: Vec<&PathBuf> = paths.iter().cycle().take(paths.len() * passes).collect();
    Ok((decode_only(model, &repeated, options)?, passes))
}

/// Model-only rate of a libtorch model: a random batch already on its device, results copied
/// back (which waits for the device).
pub(super) fn time_torch_model(
    model: &dyn TorchEmbedder,
    batch: usize,
    iters: usize,
) -> anyhow::Result<f64> {
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
