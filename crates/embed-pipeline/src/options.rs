//! Options of an extraction, and the progress callback.

use std::sync::Arc;
use std::time::Duration;

use embed_core::{DecodeOptions, PreprocessSpec};

use crate::{PipelineError, ResizeOn, Result, Transfer};

/// Where an extraction stands, as reported to [`ExtractOptions::progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressReport {
    /// Images processed so far in this call (embedded or skipped).
    pub done: usize,
    /// Images this call processes in all.
    pub total: usize,
    /// Images that could not be used so far (earlier, resumed runs included).
    pub failed: usize,
    /// Time since the call started.
    pub elapsed: Duration,
}

/// A progress callback: called on the model's thread after every batch, so it should return
/// quickly (a terminal display throttles itself).
#[derive(Clone)]
pub struct ProgressFn(pub Arc<dyn Fn(&ProgressReport) + Send + Sync>);

impl ProgressFn {
    /// Wraps a closure.
    pub fn new(f: impl Fn(&ProgressReport) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn")
    }
}

/// Options of an extraction.
#[derive(Clone, Debug)]
pub struct ExtractOptions {
    /// Decoding and preprocessing threads; `0` means one per core; at most [`MAX_WORKERS`].
    pub workers: usize,
    /// Images per model call.
    pub batch_size: usize,
    /// Scale every row to unit L2 norm (zero rows stay zero).
    pub normalize: bool,
    /// The largest fraction of images that may fail before the run fails (`0.0..=1.0`).
    pub max_failure_rate: f64,
    /// Fail on the first image that cannot be used.
    pub strict: bool,
    /// Called after every batch with the images done so far (the pipeline prints nothing
    /// itself). `None`: no reports.
    pub progress: Option<ProgressFn>,
    /// How images are decoded.
    pub decode: DecodeOptions,
    /// Opt-in fast mode, **not exact**: JPEGs much larger than the model needs are decoded at
    /// 1/2, 1/4 or 1/8 size in the DCT domain, keeping the shorter side at least twice the
    /// model's resize target ([`PreprocessSpec::fast_jpeg_min_side`]). Ignored when
    /// `decode.jpeg_dct_downscale_min_side` is set. Effect on embeddings and speed: section
    /// "Fast JPEG mode" of `docs/BENCHMARKS.md`.
    pub fast_jpeg: bool,
    /// How batches reach a `Model::Torch`.
    pub transfer: Transfer,
    /// Where a `Model::Torch`'s images are resized.
    pub resize_on: ResizeOn,
    /// With [`ResizeOn::Device`]: the largest decoded image (in pixels) sent to the device as
    /// it is; larger ones are resized on the host. `0`: as many as keep the ring's pinned
    /// buffers near 1 GiB (about 590 × 590 at batch 256), and 4 Mpixels at most.
    pub device_resize_max_pixels: usize,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            workers: 0,
            batch_size: 32,
            normalize: true,
            max_failure_rate: 0.1,
            strict: false,
            progress: None,
            decode: DecodeOptions::default(),
            fast_jpeg: false,
            transfer: Transfer::Auto,
            resize_on: ResizeOn::Host,
            device_resize_max_pixels: 0,
        }
    }
}

/// Most decoding threads [`ExtractOptions::workers`] may ask for.
pub const MAX_WORKERS: usize = 1024;

impl ExtractOptions {
    /// The number of worker threads these options give on this machine.
    pub fn effective_workers(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        }
    }

    /// The decode options used for a model with this preprocessing: [`ExtractOptions::decode`],
    /// with the DCT downscale of [`ExtractOptions::fast_jpeg`] filled in, and, when images are
    /// resized on the host, JPEGs decoded only where the spec reads them
    /// ([`DecodeOptions::window_for`], exact; [`ResizeOn::Device`] uploads whole pictures).
    pub fn decode_options(&self, spec: &PreprocessSpec) -> DecodeOptions {
        let mut decode = self.decode;
        if self.fast_jpeg && decode.jpeg_dct_downscale_min_side.is_none() {
            decode.jpeg_dct_downscale_min_side = spec.fast_jpeg_min_side();
        }
        if self.resize_on == ResizeOn::Host {
            decode.window_for = Some(spec.geometry());
        }
        decode
    }

    /// What the embeddings of an extraction with these options depend on besides the model:
    /// the spec and the decode options, as text for cache keys. The window decode is left
    /// out: it gives the same values.
    pub fn preprocess_key(&self, spec: &PreprocessSpec) -> String {
        let decode = DecodeOptions {
            window_for: None,
            ..self.decode_options(spec)
        };
        format!("{spec:?} {decode:?}")
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(PipelineError::InvalidOption(
                "batch size must be at least 1".into(),
            ));
        }
        if self.workers > MAX_WORKERS {
            return Err(PipelineError::InvalidOption(format!(
                "{} worker threads asked for; at most {MAX_WORKERS}",
                self.workers
            )));
        }
        if !(0.0..=1.0).contains(&self.max_failure_rate) {
            return Err(PipelineError::InvalidOption(format!(
                "max failure rate {} is outside 0..=1",
                self.max_failure_rate
            )));
        }
        Ok(())
    }
}
