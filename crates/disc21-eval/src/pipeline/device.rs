//! The libtorch path: 8-bit batches (resized and cropped on the CPU) in pinned host memory,
//! uploaded asynchronously, normalised and embedded on the device, one batch in flight while
//! the next is uploaded; only embeddings come back.

use std::path::Path;
use std::time::Instant;

use embed_core::{DecodeOptions, PreprocessSpec};
use embed_torch::TorchEmbedder;
use tch::{Device, Kind, Tensor};

use super::ring::{BufPtr, Consumer, FilledBatch, RingLayout, run_ring};
use super::{BatchResult, PipelineError, Result, Tracker, ring_buffers};

/// Rescales and normalises `N × H × W × 3` 8-bit pixels into `N × 3 × H × W` `f32`, with the
/// operations (and roundings) of the CPU lookup tables ([`PreprocessSpec::value_tables`]):
/// `f32(f64(v) · factor)`, then `(x − f32(mean)) / f32(std)` in `f32`.
pub fn normalize_u8_nhwc(pixels: &Tensor, spec: &PreprocessSpec) -> Result<Tensor> {
    let device = pixels.device();
    let nchw = pixels.f_permute([0i64, 3, 1, 2])?;
    let x = match spec.rescale_factor {
        Some(f) => nchw
            .f_to_kind(Kind::Double)?
            .f_mul_scalar(f)?
            .f_to_kind(Kind::Float)?,
        None => nchw.f_to_kind(Kind::Float)?,
    };
    let x = match spec.normalize {
        Some((mean, std)) => {
            let m: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
            let s: Vec<f32> = std.iter().map(|&v| v as f32).collect();
            let m = Tensor::f_from_slice(&m)?
                .f_view([1i64, 3, 1, 1])?
                .f_to_device(device)?;
            let s = Tensor::f_from_slice(&s)?
                .f_view([1i64, 3, 1, 1])?
                .f_to_device(device)?;
            x.f_sub(&m)?.f_div(&s)?
        }
        None => x,
    };
    Ok(x.f_contiguous()?)
}

fn load_u8(
    spec: &PreprocessSpec,
    decode: &DecodeOptions,
    path: &Path,
    slot: &mut [u8],
) -> Result<(), String> {
    let image = embed_core::decode_file(path, decode).map_err(|e| e.to_string())?;
    let (h, w) = spec.output_size(image.width(), image.height());
    if h * w * 3 != slot.len() {
        return Err(format!(
            "preprocessing gives {h}×{w}, the batch expects another size"
        ));
    }
    let pixels = embed_core::preprocess::resize_crop(spec, &image).map_err(|e| e.to_string())?;
    if pixels.len() != slot.len() {
        return Err(format!(
            "resize produced {} bytes, expected {}",
            pixels.len(),
            slot.len()
        ));
    }
    slot.copy_from_slice(&pixels);
    Ok(())
}

struct InFlight {
    start: usize,
    len: usize,
    rows: Vec<usize>,
    failed: Vec<(usize, String)>,
    out: Tensor,
    started: Instant,
}

struct DeviceConsumer<'a, 'o, P> {
    model: &'a dyn TorchEmbedder,
    spec: &'a PreprocessSpec,
    buffers: &'a [Tensor],
    paths: &'a [P],
    batch: usize,
    tracker: &'a mut Tracker<'o>,
    sink: &'a mut dyn FnMut(BatchResult) -> Result<()>,
    in_flight: Option<InFlight>,
}

impl<P: AsRef<Path>> DeviceConsumer<'_, '_, P> {
    /// Waits for the batch in flight and hands its embeddings to the sink.
    fn land(&mut self) -> Result<()> {
        let Some(f) = self.in_flight.take() else {
            return Ok(());
        };
        let rows = if f.rows.is_empty() {
            ndarray::Array2::zeros((0, self.model.dim()))
        } else {
            embed_torch::tensor_to_array2(&f.out).map_err(|e| PipelineError::Model {
                first: f.start,
                last: f.start + f.len,
                source: embed_core::Error::Model(Box::new(e)),
            })?
        };
        if rows.dim() != (f.rows.len(), self.model.dim()) {
            return Err(PipelineError::Model {
                first: f.start,
                last: f.start + f.len,
                source: embed_core::Error::Shape(format!(
                    "model returned {:?} for {} images of dim {}",
                    rows.dim(),
                    f.rows.len(),
                    self.model.dim()
                )),
            });
        }
        self.tracker.batch_done(f.len, f.started.elapsed());
        (self.sink)(BatchResult {
            start: f.start,
            len: f.len,
            embeddings: rows,
            rows: f.rows,
            failed: f.failed,
        })
    }
}

impl<P: AsRef<Path>> Consumer<u8> for DeviceConsumer<'_, '_, P> {
    type Error = PipelineError;
    fn take(&mut self, b: FilledBatch<'_, u8>) -> Result<()> {
        self.tracker.batch_ready();
        let start = b.index * self.batch;
        let len = b.good.len() + b.failed.len();
        self.tracker.failures(self.paths, start, &b.failed)?;
        let started = Instant::now();
        let device = self.model.device();
        let out = if b.rows == 0 {
            Tensor::f_zeros([0i64, self.model.dim() as i64], (Kind::Float, device))?
        } else {
            let host = &self.buffers[b.index % self.buffers.len()];
            // The ring compacted the good images to the front of the buffer.
            let host = host.f_narrow(0, 0, b.rows as i64)?;
            // From pinned memory this copy is asynchronous: it overlaps the batch in flight.
            let on_device = host.f_to_device_(device, Kind::Uint8, true, false)?;
            let pixels = normalize_u8_nhwc(&on_device, self.spec)?;
            self.model
                .embed_tensor(&pixels)
                .map_err(|source| PipelineError::Model {
                    first: start,
                    last: start + len,
                    source,
                })?
        };
        // The new batch is queued on the device: now wait for the previous one.
        self.land()?;
        self.in_flight = Some(InFlight {
            start,
            len,
            rows: b.good,
            failed: b.failed,
            out,
            started,
        });
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        self.land()
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run_device<P: AsRef<Path> + Sync>(
    model: &dyn TorchEmbedder,
    paths: &[P],
    spec: &PreprocessSpec,
    (h, w): (usize, usize),
    batch: usize,
    workers: usize,
    tracker: &mut Tracker<'_>,
    sink: &mut dyn FnMut(BatchResult) -> Result<()>,
) -> Result<()> {
    let _guard = tch::no_grad_guard();
    let device = model.device();
    let slot_len = h * w * 3;
    let layout = RingLayout {
        batch,
        slot_len,
        n: paths.len(),
    };
    // One batch in flight on the device keeps its buffer until it lands.
    let lag = 1;
    let k = ring_buffers(workers, batch, lag);
    let shape = [batch as i64, h as i64, w as i64, 3];
    let buffers: Vec<Tensor> = (0..k)
        .map(|_| -> Result<Tensor> {
            let t = Tensor::f_zeros(shape, (Kind::Uint8, Device::Cpu))?;
            Ok(if device.is_cuda() {
                t.f_pin_memory(device)?
            } else {
                t
            })
        })
        .collect::<Result<_>>()?;
    let ptrs: Vec<BufPtr<u8>> = buffers
        .iter()
        .map(|t| BufPtr(t.data_ptr().cast::<u8>()))
        .collect();
    let decode = tracker.options.decode;
    let load = |path: &Path, slot: &mut [u8]| load_u8(spec, &decode, path, slot);
    let mut consumer = DeviceConsumer {
        model,
        spec,
        buffers: &buffers,
        paths,
        batch,
        tracker,
        sink,
        in_flight: None,
    };
    // SAFETY: each tensor in `buffers` is a distinct, contiguous, initialised (zeroed)
    // `batch × h × w × 3` u8 host tensor, alive until after `run_ring` returns; nothing else
    // touches its memory meanwhile (uploads read it only after the ring hands it over, and the
    // ring keeps it reserved until the upload has landed, `lag = 1`).
    unsafe { run_ring(paths, &layout, &ptrs, workers, lag, &load, &mut consumer) }
}
