//! The libtorch path: 8-bit batches (resized and cropped on the CPU) in pinned host memory,
//! uploaded asynchronously, normalised and embedded on the device, one batch in flight while
//! the next is uploaded; only embeddings come back.

use std::path::Path;
use std::time::Instant;

use embed_core::preprocess::Resample;
use embed_core::{DecodeOptions, PreprocessSpec};
use embed_torch::{CudaEvent, TorchEmbedder};
use tch::{Device, Kind, Tensor};

use crate::extract::{BatchResult, Tracker};
use crate::host::ring_buffers;
use crate::ring::{BufPtr, Consumer, FilledBatch, RingLayout, run_ring};
use crate::{PipelineError, Result};

/// Rescales and normalises `N × H × W × 3` 8-bit pixels into `N × 3 × H × W` `f32`, with the
/// operations (and roundings) of the CPU lookup tables ([`PreprocessSpec::value_tables`]):
/// `f32(f64(v) · factor)`, then `(x − f32(mean)) / f32(std)` in `f32`.
pub fn normalize_u8_nhwc(pixels: &Tensor, spec: &PreprocessSpec) -> Result<Tensor> {
    normalize_nchw(&pixels.f_permute([0i64, 3, 1, 2])?, spec)
}

/// [`normalize_u8_nhwc`] for `N × 3 × H × W` pixels of any kind holding 8-bit values (`u8`, or
/// floats with integer values in `0..=255`).
pub fn normalize_nchw(nchw: &Tensor, spec: &PreprocessSpec) -> Result<Tensor> {
    let device = nchw.device();
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
) -> Result<(u32, u32), String> {
    let image = embed_core::decode_file(path, decode).map_err(|e| crate::error::reason(&e))?;
    let (h, w) = spec.output_size_of(&image);
    if h * w * 3 != slot.len() {
        return Err(format!(
            "preprocessing gives {h}×{w}, the batch expects another size"
        ));
    }
    let pixels =
        embed_core::preprocess::resize_crop(spec, &image).map_err(|e| crate::error::reason(&e))?;
    if pixels.len() != slot.len() {
        return Err(format!(
            "resize produced {} bytes, expected {}",
            pixels.len(),
            slot.len()
        ));
    }
    slot.copy_from_slice(&pixels);
    Ok(image.full_size())
}

/// Sleep between two queries of a batch's completion event (the model thread leaves its core
/// to the decoding workers meanwhile).
const EVENT_POLL: std::time::Duration = std::time::Duration::from_micros(50);

/// Bytes before the pixels in a slot of the device-resize ring: height and width (`u32`, little
/// endian) and a flag, `1` when the host already resized and cropped the image.
const SLOT_HEADER: usize = 12;

/// Pinned memory the device-resize ring may take when the caller sets no pixel limit.
const DEVICE_RESIZE_BUDGET: usize = 1 << 30;

/// Largest image sent to the device as it is when the caller sets no pixel limit (small
/// batches would otherwise get huge slots).
const DEVICE_RESIZE_MAX_PIXELS: usize = 1 << 22;

/// Whether [`resize_crop_on_device`] handles a `width × height` image under `spec`: a bicubic
/// resize whose result covers the crop (no padding). Other images take the exact host path.
pub fn device_resize_supported(spec: &PreprocessSpec, width: u32, height: u32) -> bool {
    if spec.resize.is_none() || spec.resample != Resample::Bicubic || width == 0 || height == 0 {
        return false;
    }
    let (rh, rw) = spec.resized_size(width, height);
    let (oh, ow) = spec.output_size(width, height);
    rh > 0 && rw > 0 && rh as usize >= oh && rw as usize >= ow
}

/// Resizes `1 × 3 × H × W` 8-bit pixels (any kind, on any device) with libtorch's antialiased
/// bicubic filter (`_upsample_bicubic2d_aa`, PIL's filter in floating point, without PIL's
/// rounding to 8 bits between the two passes), rounds half up to 8-bit values and centre-crops
/// as `spec` says. Returns `1 × 3 × h × w` `f32` holding integer values, ready for
/// [`normalize_nchw`]. On the tests' photo-like images (on the CPU) every value is within two
/// levels of the exact host path ([`resize_crop`]) and 84 % are equal. Fails for images
/// [`device_resize_supported`] rejects.
///
/// [`resize_crop`]: embed_core::preprocess::resize_crop
pub fn resize_crop_on_device(pixels: &Tensor, spec: &PreprocessSpec) -> Result<Tensor> {
    let size = pixels.size();
    let &[1, 3, ih, iw] = size.as_slice() else {
        return Err(PipelineError::InvalidOption(format!(
            "device resize takes 1 × 3 × H × W pixels, got {size:?}"
        )));
    };
    let (width, height) = (
        u32::try_from(iw).unwrap_or(u32::MAX),
        u32::try_from(ih).unwrap_or(u32::MAX),
    );
    if !device_resize_supported(spec, width, height) {
        return Err(PipelineError::InvalidOption(format!(
            "a {iw}×{ih} image cannot be resized on the device with this preprocessing"
        )));
    }
    let (rh, rw) = spec.resized_size(width, height);
    let (rh, rw) = (i64::from(rh), i64::from(rw));
    let (oh, ow) = spec.output_size(width, height);
    let (oh, ow) = (oh as i64, ow as i64);
    let x = pixels.f_to_kind(Kind::Float)?;
    let x = if (rh, rw) == (ih, iw) {
        x
    } else {
        x.f_internal_upsample_bicubic2d_aa([rh, rw], false, None::<f64>, None::<f64>)?
            .f_add_scalar(0.5)?
            .f_floor()?
            .f_clamp(0.0, 255.0)?
    };
    Ok(x.f_narrow(2, (rh - oh) / 2, oh)?
        .f_narrow(3, (rw - ow) / 2, ow)?)
}

/// Fills a slot of the device-resize ring: the decoded image when the device can resize it and
/// it fits, else (also for a reduced-size decode) the exact host resize and crop.
fn load_raw(
    spec: &PreprocessSpec,
    decode: &DecodeOptions,
    max_pixels: usize,
    (h, w): (usize, usize),
    path: &Path,
    slot: &mut [u8],
) -> Result<(u32, u32), String> {
    let image = embed_core::decode_file(path, decode).map_err(|e| crate::error::reason(&e))?;
    let full_size = image.full_size();
    let (iw, ih) = (image.width(), image.height());
    let pixels = iw as usize * ih as usize;
    let (header, body) = slot
        .split_at_mut_checked(SLOT_HEADER)
        .ok_or_else(|| "slot smaller than its header".to_string())?;
    // A reduced-size decode (fast JPEG mode) needs its source box for the exact geometry,
    // which libtorch's resize has no argument for: it is resized on the host (small by then).
    let (sh, sw, done, data) = if device_resize_supported(spec, iw, ih)
        && !image.is_reduced()
        && pixels <= max_pixels
        && pixels * 3 <= body.len()
    {
        (ih, iw, 0u32, image.into_raw())
    } else {
        let out = embed_core::preprocess::resize_crop(spec, &image)
            .map_err(|e| crate::error::reason(&e))?;
        (h as u32, w as u32, 1, out)
    };
    if data.len() != sh as usize * sw as usize * 3 || data.len() > body.len() {
        return Err(format!(
            "{} bytes of pixels for a {sw}×{sh} slot of {} bytes",
            data.len(),
            body.len()
        ));
    }
    header[0..4].copy_from_slice(&sh.to_le_bytes());
    header[4..8].copy_from_slice(&sw.to_le_bytes());
    header[8..12].copy_from_slice(&done.to_le_bytes());
    body[..data.len()].copy_from_slice(&data);
    Ok(full_size)
}

/// Reads a slot header written by [`load_raw`]: `(height, width, resized on the host)`.
fn read_header(slot: &[u8]) -> Option<(usize, usize, bool)> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(slot.get(i..i + 4)?.try_into().ok()?))
    };
    Some((word(0)? as usize, word(4)? as usize, word(8)? == 1))
}

struct InFlight {
    start: usize,
    len: usize,
    rows: Vec<usize>,
    sizes: Vec<(u32, u32)>,
    failed: Vec<(usize, String)>,
    out: Tensor,
    /// On CUDA: the embeddings' asynchronous copy into pinned host memory, and an event after
    /// it (waiting for it does not wait for the batches queued later).
    copy: Option<(Tensor, CudaEvent)>,
    /// Time the model thread spent queuing this batch's upload, normalisation and forward pass.
    queued: std::time::Duration,
}

struct DeviceConsumer<'a, 'o, P> {
    model: &'a dyn TorchEmbedder,
    spec: &'a PreprocessSpec,
    buffers: &'a [Tensor],
    paths: &'a [P],
    batch: usize,
    /// Device-resize ring: slots of this many bytes, each a header and a decoded image.
    raw_slot_len: Option<usize>,
    /// Drop each batch as it arrives (no upload, no model): [`crate::decode_only`].
    discard: bool,
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
        let waited = Instant::now();
        let result = match &f.copy {
            Some((host, done)) => {
                done.wait(EVENT_POLL).map_err(|e| PipelineError::Model {
                    first: f.start,
                    last: f.start + f.len,
                    source: embed_core::Error::Model(Box::new(e)),
                })?;
                host
            }
            None => &f.out,
        };
        let rows = if f.rows.is_empty() {
            ndarray::Array2::zeros((0, self.model.dim()))
        } else {
            embed_torch::tensor_to_array2(result).map_err(|e| PipelineError::Model {
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
        self.tracker.batch_done(f.len, f.queued + waited.elapsed());
        (self.sink)(BatchResult {
            start: f.start,
            len: f.len,
            embeddings: rows,
            rows: f.rows,
            sizes: f.sizes,
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
        if self.discard {
            self.tracker.discard(len);
            return Ok(());
        }
        let started = Instant::now();
        let device = self.model.device();
        let out = if b.rows == 0 {
            Tensor::f_zeros([0i64, self.model.dim() as i64], (Kind::Float, device))?
        } else {
            let host = &self.buffers[b.index % self.buffers.len()];
            let pixels = match self.raw_slot_len {
                None => {
                    // The ring compacted the good images to the front of the buffer.
                    let host = host.f_narrow(0, 0, b.rows as i64)?;
                    // From pinned memory this copy is asynchronous: it overlaps the batch in
                    // flight.
                    let on_device = host.f_to_device_(device, Kind::Uint8, true, false)?;
                    normalize_u8_nhwc(&on_device, self.spec)?
                }
                Some(slot_len) => {
                    let mut crops = Vec::with_capacity(b.rows);
                    for r in 0..b.rows {
                        let slot = &b.data[r * slot_len..(r + 1) * slot_len];
                        let (ih, iw, done) = read_header(slot).ok_or_else(|| {
                            PipelineError::InvalidOption("truncated device-resize slot".into())
                        })?;
                        // Only the decoded bytes travel, asynchronously from pinned memory.
                        let px = host
                            .f_select(0, r as i64)?
                            .f_narrow(0, SLOT_HEADER as i64, (ih * iw * 3) as i64)?
                            .f_view([ih as i64, iw as i64, 3])?
                            .f_to_device_(device, Kind::Uint8, true, false)?
                            .f_permute([2i64, 0, 1])?
                            .f_unsqueeze(0)?;
                        crops.push(if done {
                            px.f_to_kind(Kind::Float)?
                        } else {
                            resize_crop_on_device(&px, self.spec)?
                        });
                    }
                    normalize_nchw(&Tensor::f_cat(&crops, 0)?, self.spec)?
                }
            };
            self.model
                .embed_tensor(&pixels)
                .map_err(|source| PipelineError::Model {
                    first: start,
                    last: start + len,
                    source,
                })?
        };
        // On CUDA the embeddings come back asynchronously, behind an event, so that landing
        // this batch will not wait for the next one too.
        let copy = if b.rows > 0 && device.is_cuda() && embed_torch::cuda_events_available() {
            let host =
                out.f_to_kind(Kind::Float)?
                    .f_to_device_(Device::Cpu, Kind::Float, true, false)?;
            let done = CudaEvent::record(device).map_err(|e| PipelineError::Model {
                first: start,
                last: start + len,
                source: embed_core::Error::Model(Box::new(e)),
            })?;
            done.map(|done| (host, done))
        } else {
            None
        };
        let queued = started.elapsed();
        // The new batch is queued on the device: now wait for the previous one.
        self.land()?;
        self.in_flight = Some(InFlight {
            start,
            len,
            rows: b.good,
            sizes: b.sizes,
            failed: b.failed,
            out,
            copy,
            queued,
        });
        self.tracker.free();
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
    resize_on_device: bool,
    discard: bool,
    tracker: &mut Tracker<'_>,
    sink: &mut dyn FnMut(BatchResult) -> Result<()>,
) -> Result<()> {
    let _guard = tch::no_grad_guard();
    let device = model.device();
    // One batch in flight on the device keeps its buffer until it lands.
    let lag = 1;
    let k = ring_buffers(workers, batch, lag);
    // Device resize: a slot holds a header and a decoded image of up to `max_pixels` (larger
    // images are resized on the host); the default keeps the pinned ring near 1 GiB.
    let max_pixels = match tracker.options.device_resize_max_pixels {
        0 => (DEVICE_RESIZE_BUDGET / (3 * k * batch)).min(DEVICE_RESIZE_MAX_PIXELS),
        n => n,
    };
    let slot_len = if resize_on_device {
        // Room for the host-resized crop too.
        SLOT_HEADER + 3 * max_pixels.max(h * w)
    } else {
        h * w * 3
    };
    let layout = RingLayout {
        batch,
        slot_len,
        n: paths.len(),
    };
    let shape: Vec<i64> = if resize_on_device {
        vec![batch as i64, slot_len as i64]
    } else {
        vec![batch as i64, h as i64, w as i64, 3]
    };
    let buffers: Vec<Tensor> = (0..k)
        .map(|_| -> Result<Tensor> {
            let t = Tensor::f_zeros(shape.as_slice(), (Kind::Uint8, Device::Cpu))?;
            Ok(if device.is_cuda() {
                // `_pin_memory`, the op `pin_memory` ends in: `pin_memory` itself warns (twice,
                // with `is_pinned`) that its `device` argument is deprecated, and tch always
                // passes one. Same allocator (CUDA's caching host allocator), no warnings.
                t.f_internal_pin_memory(device)?
            } else {
                t
            })
        })
        .collect::<Result<_>>()?;
    let ptrs: Vec<BufPtr<u8>> = buffers
        .iter()
        .map(|t| BufPtr(t.data_ptr().cast::<u8>()))
        .collect();
    let decode = tracker.options.decode_options(spec);
    let load = |path: &Path, slot: &mut [u8]| {
        if resize_on_device {
            load_raw(spec, &decode, max_pixels, (h, w), path, slot)
        } else {
            load_u8(spec, &decode, path, slot)
        }
    };
    tracker.setup_done();
    let mut consumer = DeviceConsumer {
        model,
        spec,
        buffers: &buffers,
        paths,
        batch,
        raw_slot_len: resize_on_device.then_some(slot_len),
        discard,
        tracker,
        sink,
        in_flight: None,
    };
    // SAFETY: each tensor in `buffers` is a distinct, contiguous, initialised (zeroed)
    // `batch × slot_len` u8 host tensor, alive until after `run_ring` returns; nothing else
    // touches its memory meanwhile (uploads read it only after the ring hands it over, and the
    // ring keeps it reserved until the upload has landed, `lag = 1`).
    unsafe { run_ring(paths, &layout, &ptrs, workers, lag, &load, &mut consumer) }
}
