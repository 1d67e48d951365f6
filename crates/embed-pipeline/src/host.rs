//! The host path: `f32` batches built by the workers and handed to any [`Embedder`].

use std::path::Path;
use std::time::Instant;

use embed_core::{DecodeOptions, Embedder, PreprocessSpec};
use ndarray::{Array2, ArrayView4, ArrayViewMut3};

use crate::extract::{BatchResult, Tracker};
use crate::ring::{BufPtr, Consumer, FilledBatch, RingLayout, run_ring};
use crate::{PipelineError, Result};

/// Loads one image into an `f32` slot (`3 × h × w`); returns the image's size in its file.
fn load_f32(
    spec: &PreprocessSpec,
    decode: &DecodeOptions,
    (h, w): (usize, usize),
    path: &Path,
    slot: &mut [f32],
) -> Result<(u32, u32), String> {
    let image = embed_core::decode_file(path, decode).map_err(|e| crate::error::reason(&e))?;
    let view = ArrayViewMut3::from_shape((3, h, w), slot).map_err(|e| crate::error::reason(&e))?;
    spec.preprocess_into(&image, view)
        .map_err(|e| crate::error::reason(&e))?;
    Ok(image.full_size())
}

/// Buffers in the ring for this many workers, batch size and release lag.
pub(crate) fn ring_buffers(workers: usize, batch: usize, lag: usize) -> usize {
    2 + lag + workers.div_ceil(batch)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run_host<P: AsRef<Path> + Sync>(
    model: &dyn Embedder,
    paths: &[P],
    spec: &PreprocessSpec,
    (h, w): (usize, usize),
    batch: usize,
    workers: usize,
    discard: bool,
    tracker: &mut Tracker<'_>,
    sink: &mut dyn FnMut(BatchResult) -> Result<()>,
) -> Result<()> {
    let slot_len = 3 * h * w;
    let layout = RingLayout {
        batch,
        slot_len,
        n: paths.len(),
    };
    let k = ring_buffers(workers, batch, 0);
    let mut storage: Vec<Vec<f32>> = (0..k).map(|_| vec![0f32; batch * slot_len]).collect();
    let buffers: Vec<BufPtr<f32>> = storage.iter_mut().map(|b| BufPtr(b.as_mut_ptr())).collect();
    let decode = tracker.options.decode_options(spec);
    let load = |path: &Path, slot: &mut [f32]| load_f32(spec, &decode, (h, w), path, slot);
    struct Host<'a, 'o, P> {
        model: &'a dyn Embedder,
        paths: &'a [P],
        batch: usize,
        hw: (usize, usize),
        discard: bool,
        tracker: &'a mut Tracker<'o>,
        sink: &'a mut dyn FnMut(BatchResult) -> Result<()>,
    }
    impl<P: AsRef<Path>> Consumer<f32> for Host<'_, '_, P> {
        type Error = PipelineError;
        fn take(&mut self, b: FilledBatch<'_, f32>) -> Result<()> {
            self.tracker.batch_ready();
            let start = b.index * self.batch;
            let len = b.good.len() + b.failed.len();
            self.tracker.failures(self.paths, start, &b.failed)?;
            if self.discard {
                self.tracker.discard(len);
                return Ok(());
            }
            let t0 = Instant::now();
            let (h, w) = self.hw;
            let embeddings = if b.rows == 0 {
                Array2::zeros((0, self.model.dim()))
            } else {
                let view = ArrayView4::from_shape((b.rows, 3, h, w), &b.data[..b.rows * 3 * h * w])
                    .map_err(|e| PipelineError::InvalidOption(e.to_string()))?;
                let out = self
                    .model
                    .embed_batch(view)
                    .map_err(|source| PipelineError::Model {
                        first: start,
                        last: start + len,
                        source,
                    })?;
                if out.dim() != (b.rows, self.model.dim()) {
                    return Err(PipelineError::Model {
                        first: start,
                        last: start + len,
                        source: embed_core::Error::Shape(format!(
                            "model returned {:?} for {} images of dim {}",
                            out.dim(),
                            b.rows,
                            self.model.dim()
                        )),
                    });
                }
                out
            };
            self.tracker.batch_done(len, t0.elapsed());
            let out = (self.sink)(BatchResult {
                start,
                len,
                embeddings,
                rows: b.good,
                sizes: b.sizes,
                failed: b.failed,
            });
            self.tracker.free();
            out
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }
    let mut consumer = Host {
        model,
        paths,
        batch,
        hw: (h, w),
        discard,
        tracker,
        sink,
    };
    consumer.tracker.setup_done();
    // SAFETY: `storage` holds `k` distinct vectors of `batch * slot_len` elements, untouched
    // elsewhere until `run_ring` returns.
    unsafe { run_ring(paths, &layout, &buffers, workers, 0, &load, &mut consumer) }
}
