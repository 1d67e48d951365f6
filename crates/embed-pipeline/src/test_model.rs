//! A small deterministic [`Embedder`] for tests and pipeline benchmarks: no weights, a few
//! microseconds per image, and every image's embedding depends on its pixels and on nothing
//! else (not on the batch it rides in).

use std::time::Duration;

use embed_core::{Embedder, PreprocessSpec};
use ndarray::{Array2, ArrayView4, Axis};

/// Embeds an image as the mean of each channel over a `grid × grid` grid of cells
/// (`dim = 3 · grid²`), plus an optional fixed delay per batch that stands in for a slow model.
#[derive(Clone, Debug)]
pub struct GridMeanEmbedder {
    spec: PreprocessSpec,
    grid: usize,
    delay_per_batch: Duration,
    id: String,
}

impl GridMeanEmbedder {
    /// A `grid × grid` embedder with the given preprocessing.
    pub fn new(spec: PreprocessSpec, grid: usize) -> Self {
        let grid = grid.max(1);
        Self {
            spec,
            grid,
            delay_per_batch: Duration::ZERO,
            id: format!("test/grid-mean-{grid}"),
        }
    }

    /// Sleeps this long in every [`Embedder::embed_batch`] call.
    #[must_use]
    pub fn with_delay(mut self, delay_per_batch: Duration) -> Self {
        self.delay_per_batch = delay_per_batch;
        self
    }
}

impl Embedder for GridMeanEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }
    fn dim(&self) -> usize {
        3 * self.grid * self.grid
    }
    fn preprocess_spec(&self) -> &PreprocessSpec {
        &self.spec
    }
    fn embed_batch(&self, pixels: ArrayView4<'_, f32>) -> embed_core::Result<Array2<f32>> {
        if !self.delay_per_batch.is_zero() {
            std::thread::sleep(self.delay_per_batch);
        }
        let (n, c, h, w) = pixels.dim();
        if c != 3 {
            return Err(embed_core::Error::Shape(format!(
                "{c} channels, expected 3"
            )));
        }
        let g = self.grid;
        let mut out = Array2::<f32>::zeros((n, self.dim()));
        for (img, mut row) in pixels.axis_iter(Axis(0)).zip(out.rows_mut()) {
            for ch in 0..3 {
                for gy in 0..g {
                    for gx in 0..g {
                        let (y0, y1) = (gy * h / g, ((gy + 1) * h / g).max(gy * h / g + 1).min(h));
                        let (x0, x1) = (gx * w / g, ((gx + 1) * w / g).max(gx * w / g + 1).min(w));
                        let mut sum = 0f64;
                        for y in y0..y1 {
                            for x in x0..x1 {
                                sum += f64::from(img[[ch, y, x]]);
                            }
                        }
                        let count = ((y1 - y0) * (x1 - x0)).max(1);
                        row[(ch * g + gy) * g + gx] = (sum / count as f64) as f32;
                    }
                }
            }
        }
        Ok(out)
    }
}
