//! The extraction entry points ([`extract`], [`extract_streaming`], [`decode_only`]), their
//! results, and the bookkeeping the host and device paths share.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ndarray::Array2;

use crate::host::run_host;
use crate::list::{check_unique_ids, file_stem_id};
use crate::options::ProgressReport;
use crate::{ExtractOptions, Model, PipelineError, ResizeOn, Result};
#[cfg(feature = "torch")]
use crate::{Transfer, device};

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
    /// `(width, height)` of each row's image as stored in its file (before any resize).
    pub sizes: Vec<(u32, u32)>,
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
    /// `(width, height)` of each embedding row's image as stored in its file.
    pub sizes: Vec<(u32, u32)>,
    /// `(position in the batch, reason)` of each unusable image.
    pub failed: Vec<(usize, String)>,
}

/// Runs the pipeline and keeps the result in memory. Two files with the same id (file stem)
/// are an error before any work starts. See the crate documentation.
pub fn extract<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    options: &ExtractOptions,
) -> Result<Extraction> {
    check_unique_ids(paths)?;
    let dim = model.dim();
    let mut data: Vec<f32> = Vec::new();
    let mut indices = Vec::new();
    let mut sizes = Vec::new();
    let mut skipped = Vec::new();
    let stats = extract_streaming(
        model,
        paths,
        options,
        paths.len(),
        Vec::new(),
        &mut |b: BatchResult| {
            data.extend(b.embeddings.iter());
            indices.extend(b.rows.iter().map(|r| b.start + r));
            sizes.extend_from_slice(&b.sizes);
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
        embeddings, indices, sizes, skipped, stats, paths, options,
    ))
}

impl Extraction {
    /// The result from its rows (raw embeddings, one per entry of `indices`, positions in
    /// `paths`): rows normalised when `options` say so, ids from the file stems.
    pub(crate) fn assemble<P: AsRef<Path>>(
        mut embeddings: Array2<f32>,
        indices: Vec<usize>,
        sizes: Vec<(u32, u32)>,
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
            sizes,
            skipped,
            stats,
        }
    }
}

/// Checks the failure limits after `failures` (in input order) of `total` images failed.
pub(crate) fn check_failures(
    options: &ExtractOptions,
    failures: &[Skipped],
    total: usize,
) -> Result<()> {
    let Some(first) = failures.first() else {
        return Ok(());
    };
    if options.strict {
        return Err(PipelineError::Strict {
            path: first.path.clone(),
            reason: first.reason.clone(),
        });
    }
    if failures.len() as f64 > options.max_failure_rate * total as f64 {
        let mut failures = failures.to_vec();
        failures.sort_by_key(|s| s.index);
        return Err(PipelineError::TooManyFailures {
            total,
            max_rate: options.max_failure_rate,
            failures,
        });
    }
    Ok(())
}

/// Runs the pipeline over `paths`, handing each batch's results to `sink` in input order, and
/// enforces the failure limits against `total` images, counting `already_failed` (the images
/// an earlier, resumed run found unusable) with this call's failures. Embeddings are not
/// normalised here.
pub fn extract_streaming<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    options: &ExtractOptions,
    total: usize,
    already_failed: Vec<Skipped>,
    sink: &mut dyn FnMut(BatchResult) -> Result<()>,
) -> Result<ExtractStats> {
    run_pipeline(
        model,
        paths,
        options,
        total,
        already_failed,
        None,
        sink,
        false,
    )
}

/// [`extract_streaming`] over a subset of a longer list: `positions[i]` is the position of
/// `paths[i]` in that list, which failure reports use.
pub(crate) fn extract_streaming_subset<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    positions: &[usize],
    options: &ExtractOptions,
    total: usize,
    already_failed: Vec<Skipped>,
    sink: &mut dyn FnMut(BatchResult) -> Result<()>,
) -> Result<ExtractStats> {
    run_pipeline(
        model,
        paths,
        options,
        total,
        already_failed,
        Some(positions),
        sink,
        false,
    )
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
    run_pipeline(
        model,
        paths,
        options,
        paths.len(),
        Vec::new(),
        None,
        &mut |_| Ok(()),
        true,
    )
}

/// [`extract_streaming`]; with `discard`, batches are dropped as they arrive (no model call, no
/// upload, nothing reaches `sink`).
#[allow(clippy::too_many_arguments)]
fn run_pipeline<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    options: &ExtractOptions,
    total: usize,
    already_failed: Vec<Skipped>,
    positions: Option<&[usize]>,
    sink: &mut dyn FnMut(BatchResult) -> Result<()>,
    discard: bool,
) -> Result<ExtractStats> {
    options.validate()?;
    if let Model::Host(e) = model
        && e.on_accelerator()
    {
        return Err(PipelineError::InvalidOption(format!(
            "`{}` runs on an accelerator: pass it as `Model::Torch` (embed-pipeline's `torch` \
             feature), whose batches travel as 8-bit pixels; as a host model every batch would be \
             built in f32 on the CPU and copied over",
            e.model_id()
        )));
    }
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
    let mut tracker = Tracker {
        options,
        positions,
        total,
        processing: paths.len(),
        failures: already_failed,
        done: 0,
        stats: ExtractStats::default(),
        last_ready: Instant::now(),
        started: Instant::now(),
    };
    let resize_on_device = options.resize_on == ResizeOn::Device;
    #[cfg(feature = "torch")]
    {
        let use_device = match (model, options.transfer) {
            (Model::Torch(_), Transfer::Device) => true,
            (Model::Torch(t), Transfer::Auto) => t.device().is_cuda(),
            _ => false,
        };
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
            return Ok(tracker.finish(paths.len()));
        }
    }
    if resize_on_device {
        return Err(PipelineError::InvalidOption(
            "resizing on the device needs a libtorch model and the 8-bit device transfer \
             (a CUDA device, or the `device` transfer)"
                .into(),
        ));
    }
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
    Ok(tracker.finish(paths.len()))
}

/// Bookkeeping shared by the host and device consumers.
pub(crate) struct Tracker<'o> {
    pub(crate) options: &'o ExtractOptions,
    /// Position of each of this call's images in the list failure reports refer to (`None`:
    /// the same list).
    positions: Option<&'o [usize]>,
    total: usize,
    /// Images this call processes.
    processing: usize,
    /// Every failure so far, earlier runs' included.
    failures: Vec<Skipped>,
    /// Images processed in this call.
    done: usize,
    stats: ExtractStats,
    /// When the model thread last became free to take a batch.
    last_ready: Instant,
    started: Instant,
}

impl Tracker<'_> {
    /// Records a batch's failures, enforcing the limits.
    pub(crate) fn failures<P: AsRef<Path>>(
        &mut self,
        paths: &[P],
        start: usize,
        failed: &[(usize, String)],
    ) -> Result<()> {
        for (s, reason) in failed {
            let here = start + s;
            let index = self.positions.map_or(here, |p| p[here]);
            self.failures.push(Skipped {
                index,
                path: paths[here].as_ref().to_path_buf(),
                reason: reason.clone(),
            });
        }
        check_failures(self.options, &self.failures, self.total)
    }
    pub(crate) fn batch_ready(&mut self) {
        self.stats.wait_time += self.last_ready.elapsed();
        self.stats.last_batch = self.started.elapsed();
        if self.stats.first_batch.is_zero() {
            self.stats.first_batch = self.stats.last_batch;
        }
    }
    /// Marks the end of the set-up: the workers start now.
    pub(crate) fn setup_done(&mut self) {
        self.stats.setup = self.started.elapsed();
    }
    pub(crate) fn batch_done(&mut self, images: usize, model_time: Duration) {
        self.stats.model_time += model_time;
        self.done += images;
        if let Some(progress) = &self.options.progress {
            (progress.0)(&ProgressReport {
                done: self.done,
                total: self.processing,
                failed: self.failures.len(),
                elapsed: self.started.elapsed(),
            });
        }
    }
    /// Drops a batch of `images` in a [`decode_only`] run: counted, no model time.
    pub(crate) fn discard(&mut self, images: usize) {
        self.batch_done(images, Duration::ZERO);
        self.free();
    }
    /// Marks the model thread free to take the next batch (the wait for it starts now).
    pub(crate) fn free(&mut self) {
        self.last_ready = Instant::now();
    }
    fn finish(mut self, processed: usize) -> ExtractStats {
        self.stats.processed = processed;
        self.stats.wall = self.started.elapsed();
        self.stats
    }
}
