//! The [`Embedder`] trait, the extension point every image encoder implements.

use std::path::Path;

use ndarray::{Array2, ArrayView4, Axis};

use crate::decode::{DecodeOptions, decode_file};
use crate::error::{Error, Result};
use crate::preprocess::PreprocessSpec;

/// An image encoder: turns a batch of preprocessed images into one embedding row per image.
///
/// Implementations run the forward pass on `&self` (inference only) and must be [`Send`] so a
/// pipeline can drive them from a worker thread. They need not be [`Sync`]: libtorch tensors and
/// grad mode are per thread, so one thread owns the model.
///
/// The required method is batch first: the caller decodes and preprocesses images (on as many
/// CPU threads as it likes) with [`Embedder::preprocess_spec`] and hands the model a ready
/// `N × 3 × H × W` batch. Rows of the result are in input order.
pub trait Embedder: Send {
    /// A stable identifier of the model and its weights, e.g. `openai/clip-vit-base-patch32`.
    /// Stored in index and embedding files so vectors of different models are never mixed.
    fn model_id(&self) -> &str;

    /// Width of one embedding row.
    fn dim(&self) -> usize;

    /// How images must be preprocessed before [`Embedder::embed_batch`] (from the checkpoint's
    /// `preprocessor_config.json`).
    fn preprocess_spec(&self) -> &PreprocessSpec;

    /// Embeds a batch of preprocessed images (`N × 3 × H × W`, `f32`, the layout
    /// [`PreprocessSpec::preprocess`] produces). Returns `N × dim()` rows in input order, not
    /// normalised.
    fn embed_batch(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>>;

    /// Whether the forward pass runs on an accelerator (a GPU), where a pipeline should hand
    /// over batches in the accelerator's own way (e.g. 8-bit pixels uploaded asynchronously)
    /// rather than as `f32` host arrays. `false` by default; libtorch models on CUDA say
    /// `true`, and `embed-pipeline` refuses to feed them through its host path.
    fn on_accelerator(&self) -> bool {
        false
    }
}

impl<E: Embedder + ?Sized> Embedder for Box<E> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn preprocess_spec(&self) -> &PreprocessSpec {
        (**self).preprocess_spec()
    }
    fn embed_batch(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        (**self).embed_batch(pixels)
    }
    fn on_accelerator(&self) -> bool {
        (**self).on_accelerator()
    }
}

/// Decodes, preprocesses and embeds image files, `batch_size` at a time, on the calling thread.
///
/// The result has one row per path, in order. The first file that cannot be decoded stops the
/// work with an error naming it; use the extraction pipeline of `disc21-eval` to skip bad files
/// instead.
pub fn embed_paths<E: Embedder + ?Sized, P: AsRef<Path>>(
    embedder: &E,
    paths: &[P],
    batch_size: usize,
    options: &DecodeOptions,
) -> Result<Array2<f32>> {
    if batch_size == 0 {
        return Err(Error::InvalidArgument(
            "batch size must be at least 1".into(),
        ));
    }
    let spec = embedder.preprocess_spec();
    // Decoding only what the spec reads gives the same values for less work.
    let options = DecodeOptions {
        window_for: Some(spec.geometry()),
        ..*options
    };
    let options = &options;
    let mut out = Array2::<f32>::zeros((paths.len(), embedder.dim()));
    for (chunk_index, chunk) in paths.chunks(batch_size).enumerate() {
        let mut batch = spec.empty_batch(chunk.len());
        for (i, path) in chunk.iter().enumerate() {
            let image = decode_file(path.as_ref(), options)?;
            spec.preprocess_into(&image, batch.index_axis_mut(Axis(0), i))?;
        }
        let rows = embedder.embed_batch(batch.view())?;
        if rows.dim() != (chunk.len(), embedder.dim()) {
            return Err(Error::Shape(format!(
                "embedder returned {:?} for a batch of {} (dim {})",
                rows.dim(),
                chunk.len(),
                embedder.dim()
            )));
        }
        let start = chunk_index * batch_size;
        out.slice_mut(ndarray::s![start..start + chunk.len(), ..])
            .assign(&rows);
    }
    Ok(out)
}

/// Scales every row to unit L2 norm, in place. A zero row stays zero (as FAISS's
/// `normalize_L2` leaves it). The norm is accumulated in `f64`.
pub fn l2_normalize_rows(rows: &mut Array2<f32>) {
    for mut row in rows.rows_mut() {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            let inv = (1.0 / norm) as f32;
            row.mapv_inplace(|v| v * inv);
        }
    }
}

/// Cosine similarity of two vectors of equal length, computed in `f64`. Zero if either is zero.
///
/// ```
/// let a = [1.0_f32, 0.0];
/// let b = [1.0_f32, 1.0];
/// let c = embed_core::cosine_similarity(&a, &b).unwrap();
/// assert!((c - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
/// ```
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Result<f32> {
    if a.len() != b.len() {
        return Err(Error::Shape(format!(
            "cosine similarity of vectors of length {} and {}",
            a.len(),
            b.len()
        )));
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return Ok(0.0);
    }
    Ok((dot / (na.sqrt() * nb.sqrt())) as f32)
}
