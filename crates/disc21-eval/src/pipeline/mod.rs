//! The extraction pipeline: image files to embeddings, as fast as the model allows.
//!
//! Worker threads (`workers`, default: all cores) read, decode and preprocess files straight
//! into the slots of a small, fixed set of batch buffers (memory stays flat whatever the number
//! of images); the calling thread owns the model and receives whole batches in input order.
//! Unreadable images are skipped and listed with their reason; the run fails only when more
//! than `max_failure_rate` of the images fail, or on the first failure with `strict`.
//!
//! With a [`TorchEmbedder`] on a CUDA device ([`Model::Torch`]), batches are kept as 8-bit
//! pixels (resized and cropped on the CPU) in pinned host memory, uploaded asynchronously while
//! the previous batch computes, rescaled and normalised on the device with the same `f32`
//! operations as the CPU path, and only the embeddings come back. With [`ResizeOn::Device`] the
//! workers only decode and the resize runs on the device too (close to PIL, not bit-exact).
//!
//! [`extract`] keeps everything in memory; [`extract_cached`] writes finished work in chunks to
//! an on-disk cache ([`cache`]) so an interrupted extraction resumes where it stopped.
//!
//! ```no_run
//! use disc21_eval::pipeline::{ExtractOptions, Model, extract, list_images};
//! # fn demo(embedder: &dyn embed_core::Embedder) -> Result<(), Box<dyn std::error::Error>> {
//! let paths = list_images("images/".as_ref())?;
//! let out = extract(Model::Host(embedder), &paths, &ExtractOptions::default())?;
//! println!("{} embedded, {} skipped", out.ids.len(), out.skipped.len());
//! # Ok(()) }
//! ```

pub mod cache;
pub mod device;
mod list;
pub(crate) mod progress;
mod ring;
pub mod test_model;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use embed_core::{DecodeOptions, Embedder, PreprocessSpec};
use embed_torch::TorchEmbedder;
use ndarray::{Array2, ArrayView4, ArrayViewMut3};

pub use cache::{CacheKey, CacheOptions, extract_cached};
pub use device::{normalize_nchw, normalize_u8_nhwc, resize_crop_on_device};
pub use list::{Shard, check_unique_ids, file_stem_id, list_images, read_list};
use progress::Progress;
use ring::{BufPtr, Consumer, FilledBatch, RingLayout, run_ring};

/// Errors of the extraction pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// An option is out of range or inconsistent with the model.
    #[error("invalid extraction option: {0}")]
    InvalidOption(String),
    /// The model failed on a batch.
    #[error("the model failed on images {first}..{last}: {source}")]
    Model {
        /// Index of the batch's first image.
        first: usize,
        /// One past the batch's last image.
        last: usize,
        /// What the model said.
        #[source]
        source: embed_core::Error,
    },
    /// libtorch failed while moving or normalising a batch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// An image could not be used and `strict` is set.
    #[error("{} (--strict: any unreadable image is an error)", describe(.path, .reason))]
    Strict {
        /// The image.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// More images failed than the configured rate allows.
    #[error(
        "{failed} of {total} images could not be used, more than the allowed rate {max_rate} \
         (first: {})", describe(.first_path, .first_reason)
    )]
    TooManyFailures {
        /// Images that failed so far.
        failed: usize,
        /// Images in the run.
        total: usize,
        /// The configured limit.
        max_rate: f64,
        /// The first failed image.
        first_path: PathBuf,
        /// Why it failed.
        first_reason: String,
    },
    /// Reading or writing the cache or a list failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A cache file is damaged or belongs to another extraction.
    #[error("{path}: {message}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// `path: reason`, without repeating a path the reason already names.
fn describe(path: &Path, reason: &str) -> String {
    let p = path.display().to_string();
    if reason.contains(&p) {
        reason.to_string()
    } else {
        format!("{p}: {reason}")
    }
}

/// Result alias of the pipeline.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// The model an extraction runs.
#[derive(Clone, Copy)]
pub enum Model<'a> {
    /// Any [`Embedder`]: batches are handed over as `f32` host arrays.
    Host(&'a dyn Embedder),
    /// A libtorch model: on CUDA, batches travel as 8-bit pixels through pinned memory and are
    /// normalised on the device (see the module documentation).
    Torch(&'a dyn TorchEmbedder),
}

impl Model<'_> {
    fn embedder(&self) -> &dyn Embedder {
        match self {
            Model::Host(e) => *e,
            Model::Torch(e) => *e,
        }
    }
    /// The model's identifier.
    pub fn model_id(&self) -> &str {
        self.embedder().model_id()
    }
    /// Width of an embedding.
    pub fn dim(&self) -> usize {
        self.embedder().dim()
    }
    /// The model's preprocessing.
    pub fn preprocess_spec(&self) -> &PreprocessSpec {
        self.embedder().preprocess_spec()
    }
    /// A batch size suited to where the model runs: 256 on CUDA (large enough to keep an
    /// H100 busy with ViT-B at 224 px in f16, and 8-bit batch buffers of ~38 MiB), 32
    /// elsewhere (a CPU gains nothing from larger batches; results arrive sooner).
    pub fn default_batch_size(&self) -> usize {
        match self {
            Model::Torch(t) if t.device().is_cuda() => 256,
            _ => 32,
        }
    }
}

/// Where the batches of a [`Model::Torch`] are normalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Transfer {
    /// 8-bit pixels normalised on the device when the model is on CUDA; `f32` host batches
    /// otherwise.
    #[default]
    Auto,
    /// Always `f32` batches from the host.
    Host,
    /// Always 8-bit pixels normalised by libtorch, on whatever device the model is (on the CPU
    /// this exercises the same code as CUDA without pinned memory).
    Device,
}

/// Where a [`Model::Torch`]'s images are resized and cropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ResizeOn {
    /// On the CPU workers, bit-exact with PIL (the default).
    #[default]
    Host,
    /// On the model's device: workers only decode, the 8-bit images travel as they are and
    /// libtorch's antialiased bicubic resizes them ([`device::resize_crop_on_device`]): close
    /// to PIL, not bit-exact (two 8-bit levels at most on the tests' images, 84 % of values
    /// equal). Frees CPU time when decoding is the bottleneck. Needs the 8-bit device transfer ([`Transfer::Device`], or [`Transfer::Auto`] on CUDA); images larger
    /// than [`ExtractOptions::device_resize_max_pixels`] are still resized on the host.
    #[value(
        help = "On the model's device: workers only decode, and libtorch's antialiased bicubic \
                resizes the 8-bit images there (close to PIL, not bit-exact: two 8-bit levels at \
                most on the tests' images). Frees CPU time when decoding is the bottleneck. Needs \
                the 8-bit device transfer (`--transfer device`, or `auto` on CUDA); very large \
                images are still resized on the host"
    )]
    Device,
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
    /// Print progress (rate, ETA) on stderr; only when stderr is a terminal.
    pub progress: bool,
    /// How images are decoded.
    pub decode: DecodeOptions,
    /// Opt-in fast mode, **not exact**: JPEGs much larger than the model needs are decoded at
    /// 1/2, 1/4 or 1/8 size in the DCT domain, keeping the shorter side at least twice the
    /// model's resize target ([`PreprocessSpec::fast_jpeg_min_side`]). Ignored when
    /// `decode.jpeg_dct_downscale_min_side` is set. Effect on embeddings and speed: section
    /// "Fast JPEG mode" of `docs/BENCHMARKS.md`.
    pub fast_jpeg: bool,
    /// How batches reach a [`Model::Torch`].
    pub transfer: Transfer,
    /// Where a [`Model::Torch`]'s images are resized.
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
            progress: true,
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

    fn validate(&self) -> Result<()> {
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

/// An image that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Position in the input list.
    pub index: usize,
    /// The file.
    pub path: PathBuf,
    /// Why (the decoder's or preprocessor's message).
    pub reason: String,
}

/// The result of an extraction.
#[derive(Clone, Debug)]
pub struct Extraction {
    /// One row per usable image, in input order.
    pub embeddings: Array2<f32>,
    /// The file stem of each row's image.
    pub ids: Vec<String>,
    /// Position in the input list of each row's image.
    pub indices: Vec<usize>,
    /// The images that could not be used, in input order.
    pub skipped: Vec<Skipped>,
    /// Timing of the run.
    pub stats: ExtractStats,
}

/// Timing of an extraction.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExtractStats {
    /// Images processed in this call (embedded or skipped; cached ones excluded).
    pub processed: usize,
    /// Wall time of the call.
    pub wall: Duration,
    /// Time the model thread spent in model calls: on the host, the whole call; on a CUDA
    /// device, queuing a batch's work plus waiting for its results (the device computes the
    /// rest of the time, overlapped with the next batch's upload).
    pub model_time: Duration,
    /// Time the model thread waited for batches from the workers (the first batch included).
    pub wait_time: Duration,
    /// Time before the workers started: the batch buffers' allocation (pinned memory on CUDA).
    pub setup: Duration,
    /// Wall time until the first batch reached the model thread (`setup` included).
    pub first_batch: Duration,
    /// Wall time until the last batch reached the model thread.
    pub last_batch: Duration,
}

impl ExtractStats {
    /// Images per second over the wall time.
    pub fn images_per_second(&self) -> f64 {
        self.processed as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// One batch of results, in input order, as the streaming pipeline delivers them.
#[derive(Debug)]
pub struct BatchResult {
    /// Index (in the list given to the pipeline) of the batch's first image.
    pub start: usize,
    /// Images in the batch.
    pub len: usize,
    /// Embeddings of the usable images (not normalised), in order.
    pub embeddings: Array2<f32>,
    /// Position in the batch of each embedding row.
    pub rows: Vec<usize>,
    /// `(position in the batch, reason)` of each unusable image.
    pub failed: Vec<(usize, String)>,
}

/// Runs the pipeline and keeps the result in memory. See the module documentation.
pub fn extract<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    options: &ExtractOptions,
) -> Result<Extraction> {
    let dim = model.dim();
    let mut data: Vec<f32> = Vec::new();
    let mut indices = Vec::new();
    let mut skipped = Vec::new();
    let stats = extract_streaming(
        model,
        paths,
        options,
        paths.len(),
        0,
        &mut |b: BatchResult| {
            data.extend(b.embeddings.iter());
            indices.extend(b.rows.iter().map(|r| b.start + r));
            for (s, reason) in b.failed {
                let index = b.start + s;
                skipped.push(Skipped {
                    index,
                    path: paths[index].as_ref().to_path_buf(),
                    reason,
                });
            }
            Ok(())
        },
    )?;
    let embeddings = Array2::from_shape_vec((indices.len(), dim), data)
        .map_err(|e| PipelineError::InvalidOption(e.to_string()))?;
    Ok(Extraction::assemble(
        embeddings, indices, skipped, stats, paths, options,
    ))
}

impl Extraction {
    /// The result from its rows (raw embeddings, one per entry of `indices`, positions in
    /// `paths`): rows normalised when `options` say so, ids from the file stems.
    fn assemble<P: AsRef<Path>>(
        mut embeddings: Array2<f32>,
        indices: Vec<usize>,
        skipped: Vec<Skipped>,
        stats: ExtractStats,
        paths: &[P],
        options: &ExtractOptions,
    ) -> Self {
        if options.normalize {
            embed_core::l2_normalize_rows(&mut embeddings);
        }
        let ids = indices
            .iter()
            .map(|&i| file_stem_id(paths[i].as_ref()))
            .collect();
        Self {
            embeddings,
            ids,
            indices,
            skipped,
            stats,
        }
    }
}

/// Checks the failure limits after `failed` of `total` images failed.
fn check_failures(
    options: &ExtractOptions,
    failed: usize,
    total: usize,
    first: Option<(&Path, &str)>,
) -> Result<()> {
    let Some((path, reason)) = first else {
        return Ok(());
    };
    if options.strict && failed > 0 {
        return Err(PipelineError::Strict {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        });
    }
    if failed as f64 > options.max_failure_rate * total as f64 {
        return Err(PipelineError::TooManyFailures {
            failed,
            total,
            max_rate: options.max_failure_rate,
            first_path: path.to_path_buf(),
            first_reason: reason.to_string(),
        });
    }
    Ok(())
}

/// Runs the pipeline over `paths`, handing each batch's results to `sink` in input order, and
/// enforces the failure limits against `total` images (`already_failed` of them failed in an
/// earlier, resumed run). Embeddings are not normalised here.
pub fn extract_streaming<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    options: &ExtractOptions,
    total: usize,
    already_failed: usize,
    sink: &mut dyn FnMut(BatchResult) -> Result<()>,
) -> Result<ExtractStats> {
    run_pipeline(model, paths, options, total, already_failed, sink, false)
}

/// Decodes and preprocesses `paths` exactly as [`extract`] would for `model` (the same workers,
/// batch buffers and pixel format: 8-bit slots on the device path of a libtorch model, and
/// nothing but decoding with [`ResizeOn::Device`]; `f32` slots otherwise), without running the
/// model: the rate at which the CPU side can feed it. Failure limits apply as in [`extract`].
pub fn decode_only<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    options: &ExtractOptions,
) -> Result<ExtractStats> {
    run_pipeline(model, paths, options, paths.len(), 0, &mut |_| Ok(()), true)
}

/// [`extract_streaming`]; with `discard`, batches are dropped as they arrive (no model call, no
/// upload, nothing reaches `sink`).
fn run_pipeline<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    options: &ExtractOptions,
    total: usize,
    already_failed: usize,
    sink: &mut dyn FnMut(BatchResult) -> Result<()>,
    discard: bool,
) -> Result<ExtractStats> {
    options.validate()?;
    let spec = model.preprocess_spec().clone();
    let (h, w) = spec.fixed_output_size().ok_or_else(|| {
        PipelineError::InvalidOption(
            "the model's preprocessing has no fixed output size (no crop, no exact resize): \
             images cannot be batched"
                .into(),
        )
    })?;
    let workers = options.effective_workers();
    let batch = options.batch_size.min(paths.len().max(1));
    let progress = Progress::new(options.progress, paths.len());
    let mut tracker = Tracker {
        options,
        total,
        failed: already_failed,
        first_failure: None,
        progress,
        stats: ExtractStats::default(),
        last_ready: Instant::now(),
        started: Instant::now(),
    };
    let use_device = match (model, options.transfer) {
        (Model::Torch(_), Transfer::Device) => true,
        (Model::Torch(t), Transfer::Auto) => t.device().is_cuda(),
        _ => false,
    };
    let resize_on_device = options.resize_on == ResizeOn::Device;
    if resize_on_device && !use_device {
        return Err(PipelineError::InvalidOption(
            "resizing on the device needs a libtorch model and the 8-bit device transfer \
             (a CUDA device, or the `device` transfer)"
                .into(),
        ));
    }
    if let (true, Model::Torch(t)) = (use_device, model) {
        device::run_device(
            t,
            paths,
            &spec,
            (h, w),
            batch,
            workers,
            resize_on_device,
            discard,
            &mut tracker,
            sink,
        )?;
    } else {
        run_host(
            model.embedder(),
            paths,
            &spec,
            (h, w),
            batch,
            workers,
            discard,
            &mut tracker,
            sink,
        )?;
    }
    tracker.progress.finish();
    tracker.stats.processed = paths.len();
    tracker.stats.wall = tracker.started.elapsed();
    Ok(tracker.stats)
}

/// Bookkeeping shared by the host and device consumers.
pub(crate) struct Tracker<'o> {
    options: &'o ExtractOptions,
    total: usize,
    failed: usize,
    first_failure: Option<(PathBuf, String)>,
    progress: Progress,
    stats: ExtractStats,
    /// When the model thread last became free to take a batch.
    last_ready: Instant,
    started: Instant,
}

impl Tracker<'_> {
    /// Records a batch's failures, enforcing the limits.
    fn failures<P: AsRef<Path>>(
        &mut self,
        paths: &[P],
        start: usize,
        failed: &[(usize, String)],
    ) -> Result<()> {
        if let (None, Some((s, reason))) = (&self.first_failure, failed.first()) {
            self.first_failure = Some((paths[start + s].as_ref().to_path_buf(), reason.clone()));
        }
        self.failed += failed.len();
        let first = self
            .first_failure
            .as_ref()
            .map(|(p, r)| (p.as_path(), r.as_str()));
        check_failures(self.options, self.failed, self.total, first)
    }
    fn batch_ready(&mut self) {
        self.stats.wait_time += self.last_ready.elapsed();
        self.stats.last_batch = self.started.elapsed();
        if self.stats.first_batch.is_zero() {
            self.stats.first_batch = self.stats.last_batch;
        }
    }
    /// Marks the end of the set-up: the workers start now.
    fn setup_done(&mut self) {
        self.stats.setup = self.started.elapsed();
    }
    fn batch_done(&mut self, images: usize, model_time: Duration) {
        self.stats.model_time += model_time;
        self.progress.advance(images);
    }
    /// Drops a batch of `images` in a [`decode_only`] run: counted, no model time.
    fn discard(&mut self, images: usize) {
        self.batch_done(images, Duration::ZERO);
        self.free();
    }
    /// Marks the model thread free to take the next batch (the wait for it starts now).
    fn free(&mut self) {
        self.last_ready = Instant::now();
    }
}

/// Loads one image into an `f32` slot (`3 × h × w`).
fn load_f32(
    spec: &PreprocessSpec,
    decode: &DecodeOptions,
    (h, w): (usize, usize),
    path: &Path,
    slot: &mut [f32],
) -> Result<(), String> {
    let image = embed_core::decode_file(path, decode).map_err(|e| e.to_string())?;
    let view = ArrayViewMut3::from_shape((3, h, w), slot).map_err(|e| e.to_string())?;
    spec.preprocess_into(&image, view)
        .map_err(|e| e.to_string())
}

/// Buffers in the ring for this many workers, batch size and release lag.
fn ring_buffers(workers: usize, batch: usize, lag: usize) -> usize {
    2 + lag + workers.div_ceil(batch)
}

#[allow(clippy::too_many_arguments)]
fn run_host<P: AsRef<Path> + Sync>(
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
