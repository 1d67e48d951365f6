//! PIL's two-pass resampling (`ImagingResample`), computed only for the pixels the centre crop
//! keeps.
//!
//! PIL resizes horizontally, then vertically, with per-output-pixel filter weights normalised in
//! `f64`, converted to fixed point (22 fractional bits) and applied in integer arithmetic,
//! rounding to 8 bits between the passes. Reproducing that exactly (not a "similar" bicubic) is
//! what makes our tensors equal to `transformers`' value for value. Every output pixel depends
//! only on its own filter window, so pixels the crop discards need not be computed: memory and
//! time stay bounded for any aspect ratio (a 1×20000 image would otherwise resize to 224×4.5M).

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use super::spec::{Geometry, PreprocessSpec, Region, Resample};
use crate::decode::{RgbImage, window_lacks_pixels};
use crate::error::{Error, Result};

/// Fractional bits of PIL's fixed-point weights (`PRECISION_BITS = 32 - 8 - 2`).
pub(super) const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Resizes and centre-crops `image` as `spec` says, returning interleaved RGB8 of
/// `spec.output_size(..)`. Pixels outside the resized image (a crop larger than it) are zero,
/// as `transformers`' `center_crop` pads them.
pub fn resize_crop(spec: &PreprocessSpec, image: &RgbImage) -> Result<Vec<u8>> {
    with_scratch(|s| {
        let placed = resize_window(spec, image, s)?;
        let mut planar = Vec::with_capacity(placed.out_h * placed.out_w * 3);
        placed.emit(&s.window, |_, seg| match seg {
            Segment::Pad(n) => planar.resize(planar.len() + n, 0),
            Segment::Pixels(p) => planar.extend_from_slice(p),
        });
        let plane = placed.out_h * placed.out_w;
        let (r, gb) = planar.split_at(plane);
        let (g, b) = gb.split_at(plane);
        let mut out = Vec::with_capacity(plane * 3);
        for ((&r, &g), &b) in r.iter().zip(g).zip(b) {
            out.extend_from_slice(&[r, g, b]);
        }
        Ok(out)
    })
}

/// Where the computed window of the resized image lands in the (cropped) output.
pub(super) struct Placement {
    /// Output height.
    pub(super) out_h: usize,
    /// Output width.
    pub(super) out_w: usize,
    /// Output row and column of the window's first pixel.
    top: usize,
    left: usize,
    /// Window size; outside it the output is padding (a crop larger than the resized image).
    rows: usize,
    cols: usize,
}

/// A run of one output row of one channel: padding (zero pixels) or computed pixels.
pub(super) enum Segment<'a> {
    Pad(usize),
    Pixels(&'a [u8]),
}

impl Placement {
    /// Calls `f(channel, segment)` for the whole output in `C × H × W` order. `window` is the
    /// row-planar window [`resize_window`] left in the scratch.
    pub(super) fn emit<'a>(&self, window: &'a [u8], mut f: impl FnMut(usize, Segment<'a>)) {
        let right = self.out_w - self.left - self.cols;
        for c in 0..3 {
            for y in 0..self.out_h {
                match y.checked_sub(self.top).filter(|&i| i < self.rows) {
                    Some(i) => {
                        let o = (i * 3 + c) * self.cols;
                        if self.left > 0 {
                            f(c, Segment::Pad(self.left));
                        }
                        f(c, Segment::Pixels(&window[o..o + self.cols]));
                        if right > 0 {
                            f(c, Segment::Pad(right));
                        }
                    }
                    None => f(c, Segment::Pad(self.out_w)),
                }
            }
        }
    }
}

/// Buffers reused from one image to the next on a thread: fresh allocations of these sizes
/// cost page faults on every image.
#[derive(Default)]
pub(super) struct Scratch {
    /// The horizontal pass's output (input rows × window columns, row-planar).
    temp: Vec<u8>,
    /// The computed window of the resized image (row-planar).
    pub(super) window: Vec<u8>,
    /// The SIMD horizontal pass's transposed strip.
    transposed: Vec<u8>,
    /// Recently used filter weights: a run of images of one size reuses them.
    coeffs: Vec<(CoeffsKey, Rc<Coeffs>)>,
    /// The last value tables and the spec values they were made for.
    pub(super) tables: Option<(TablesKey, Rc<super::spec::Tables>)>,
}

/// What a [`Coeffs`] depends on: input size, the image's first index, source box (bits),
/// output size, output range, filter.
type CoeffsKey = (usize, usize, (u64, u64), usize, usize, usize, Resample);

/// What the value tables depend on: the rescale factor and the normalisation.
pub(super) type TablesKey = (Option<f64>, Option<([f64; 3], [f64; 3])>);

impl Scratch {
    /// Filter weights cached; a handful of entries (both axes of a few sizes).
    const KEEP_COEFFS: usize = 8;

    /// The weights for outputs `range` of `out_size` from `in_box` of an axis of `in_size`
    /// pixels, for an image holding that axis from index `origin` up to `held` (its first
    /// taps `origin` lower: [`Coeffs::shifted`]). Fails when a tap lies outside what is held,
    /// i.e. the image is a window decoded for other preprocessing.
    fn coeffs(
        &mut self,
        (in_size, origin, held): (usize, usize, usize),
        in_box: (f64, f64),
        out_size: usize,
        range: Range<usize>,
        filter: Resample,
    ) -> Result<Rc<Coeffs>> {
        let bits = (in_box.0.to_bits(), in_box.1.to_bits());
        let key = (
            in_size,
            origin,
            bits,
            out_size,
            range.start,
            range.end,
            filter,
        );
        let c = match self.coeffs.iter().find(|(k, _)| *k == key) {
            Some((_, c)) => Rc::clone(c),
            None => {
                let c = Coeffs::new_boxed(in_size, in_box, out_size, range, filter)?
                    .shifted(origin)
                    .ok_or_else(window_lacks_pixels)?;
                let c = Rc::new(c);
                if self.coeffs.len() >= Self::KEEP_COEFFS {
                    self.coeffs.remove(0);
                }
                self.coeffs.push((key, Rc::clone(&c)));
                c
            }
        };
        if c.end() > held {
            return Err(window_lacks_pixels());
        }
        Ok(c)
    }
}

impl Scratch {
    /// Buffers larger than this are freed after use, so one huge image does not pin memory.
    const KEEP_BYTES: usize = 8 << 20;

    fn trim(&mut self) {
        for buf in [&mut self.temp, &mut self.window, &mut self.transposed] {
            if buf.capacity() > Self::KEEP_BYTES {
                *buf = Vec::new();
            }
        }
        // The weights of a huge image are as large as its buffers.
        self.coeffs
            .retain(|(_, c)| c.weights.len() * 4 <= Self::KEEP_BYTES);
    }
}

/// Runs `f` with this thread's scratch buffers (fresh ones if they are in use or gone).
pub(super) fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> Result<T>) -> Result<T> {
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    }
    let mut f = Some(f);
    let pooled = SCRATCH.try_with(|cell| {
        let mut s = cell.try_borrow_mut().ok()?;
        let f = f.take()?;
        let out = f(&mut s);
        s.trim();
        Some(out)
    });
    match (pooled, f.take()) {
        (Ok(Some(out)), _) => out,
        (_, Some(f)) => f(&mut Scratch::default()),
        (_, None) => Err(Error::InvalidArgument("scratch buffers unavailable".into())),
    }
}

/// The crop window of a resize, in resized-image coordinates, and where it lands.
struct Plan {
    /// Resized size `(width, height)`.
    res: (usize, usize),
    /// Resized rows and columns that land inside the output.
    rows: Range<usize>,
    cols: Range<usize>,
    placed: Placement,
}

/// Where `geometry`'s crop falls in the resized `full_w × full_h` picture.
fn plan(geometry: &Geometry, full_w: u32, full_h: u32) -> Result<Plan> {
    let (rh, rw) = geometry.resized_size(full_w, full_h);
    let (res_h, res_w) = (rh as usize, rw as usize);
    if res_h == 0 || res_w == 0 {
        return Err(Error::InvalidArgument(format!(
            "a {full_w}×{full_h} image resizes to nothing ({res_w}×{res_h})"
        )));
    }
    let (out_h, out_w) = geometry.output_size(full_w, full_h);
    // Offsets of the crop window in the resized image: Python's floor division, possibly
    // negative (then the crop pads).
    let (top, left) = match geometry.crop {
        Some(_) => (
            (res_h as i64 - out_h as i64).div_euclid(2),
            (res_w as i64 - out_w as i64).div_euclid(2),
        ),
        None => (0, 0),
    };
    let rows = clip_range(top, out_h, res_h);
    let cols = clip_range(left, out_w, res_w);
    let placed = if rows.is_empty() || cols.is_empty() {
        Placement {
            out_h,
            out_w,
            top: 0,
            left: 0,
            rows: 0,
            cols: 0,
        }
    } else {
        Placement {
            out_h,
            out_w,
            top: (rows.start as i64 - top) as usize,
            left: (cols.start as i64 - left) as usize,
            rows: rows.len(),
            cols: cols.len(),
        }
    };
    Ok(Plan {
        res: (res_w, res_h),
        rows,
        cols,
        placed,
    })
}

/// Whether a resize to `res` of a `full` picture is a plain copy (no filter pass at all); never
/// for a reduced-size decode, whose pixels are not the picture's.
fn is_copy(geometry: &Geometry, reduced: bool, res: (usize, usize), full: (u32, u32)) -> bool {
    !reduced && (geometry.resize.is_none() || res == (full.0 as usize, full.1 as usize))
}

/// See [`Geometry::source_region`]: the input pixels `plan`'s window reads, as PIL's filter
/// taps reach them.
pub(super) fn source_region(geometry: &Geometry, full_w: u32, full_h: u32) -> Option<Region> {
    if full_w == 0 || full_h == 0 || geometry.resample == Resample::Nearest {
        return None;
    }
    let plan = plan(geometry, full_w, full_h).ok()?;
    if plan.rows.is_empty() || plan.cols.is_empty() {
        return None;
    }
    let (res_w, res_h) = plan.res;
    let copy = is_copy(geometry, false, plan.res, (full_w, full_h));
    let span = |in_size: u32, out_size: usize, range: &Range<usize>| -> Option<Range<usize>> {
        let in_size = in_size as usize;
        if copy || out_size == in_size {
            return Some(range.clone());
        }
        AxisFilter::new(in_size, whole_axis(in_size), out_size, geometry.resample)
            .ok()?
            .span(range.clone())
    };
    let xs = span(full_w, res_w, &plan.cols)?;
    let ys = span(full_h, res_h, &plan.rows)?;
    Some(Region {
        x: xs.start as u32,
        y: ys.start as u32,
        width: xs.len() as u32,
        height: ys.len() as u32,
    })
}

/// Computes the part of the resized image that the crop keeps into `s.window` (row-planar:
/// each row is its R bytes, then G, then B) and says where it lands in the output. See
/// [`resize_crop`].
pub(super) fn resize_window(
    spec: &PreprocessSpec,
    image: &RgbImage,
    s: &mut Scratch,
) -> Result<Placement> {
    if image.width() == 0 || image.height() == 0 {
        return Err(Error::InvalidArgument("empty image".into()));
    }
    // The geometry is the full picture's, also for a reduced-size decode or a window.
    let geometry = spec.geometry();
    let (full_w, full_h) = image.full_size();
    let Plan {
        res,
        rows,
        cols,
        placed,
    } = plan(&geometry, full_w, full_h)?;
    if rows.is_empty() || cols.is_empty() {
        return Ok(placed);
    }
    if is_copy(&geometry, image.is_reduced(), res, (full_w, full_h)) {
        let canvas = image.canvas();
        let rows = canvas.rows(&rows, image.height() as usize)?;
        let cols = canvas.cols(&cols, image.width() as usize)?;
        copy_window(image, &rows, &cols, &mut s.window);
    } else {
        let boxes = SourceBox::of(image);
        resample_window(image, spec.resample, res, boxes, &rows, &cols, s)?;
    }
    Ok(placed)
}

/// The region of the input that the resize maps onto the output, per axis `(start, end)` in
/// input pixels — PIL's `box` argument of `Image.resize`. The whole image, except for a
/// reduced-size decode, whose picture can end inside its last row or column of pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SourceBox {
    x: (f64, f64),
    y: (f64, f64),
}

impl SourceBox {
    /// The box of `image`: where a reduced-size decode's picture lies, else the whole image.
    fn of(image: &RgbImage) -> Self {
        let (w, h) = image.canvas().size;
        match image.reduced() {
            Some(r) => {
                let (x, y) = r.picture_box(w, h);
                Self { x, y }
            }
            None => Self {
                x: whole_axis(w as usize),
                y: whole_axis(h as usize),
            },
        }
    }
}

/// PIL's box along one axis of a plain resize: `(0, size)`, held as `f32` as PIL holds it.
fn whole_axis(size: usize) -> (f64, f64) {
    (0.0, f64::from(size as f32))
}

/// Resized-image indices `[offset, offset + len) ∩ [0, size)`.
fn clip_range(offset: i64, len: usize, size: usize) -> Range<usize> {
    let start = offset.max(0) as usize;
    let end = (offset + len as i64).clamp(0, size as i64) as usize;
    start.min(end)..end
}

/// `rows × cols` of `image` (its own pixel indices) into `out`, row-planar.
fn copy_window(image: &RgbImage, rows: &Range<usize>, cols: &Range<usize>, out: &mut Vec<u8>) {
    let w = image.width() as usize;
    let src = image.as_raw();
    let win_w = cols.len();
    // Every byte is written below; resizing to the same length as last time costs nothing.
    out.resize(rows.len() * win_w * 3, 0);
    for (y, dst) in rows.clone().zip(out.chunks_exact_mut(win_w * 3)) {
        let line = &src[(y * w + cols.start) * 3..(y * w + cols.end) * 3];
        deinterleave_row(line, dst);
    }
}

/// One interleaved RGB row into its row-planar form (`dst` = R… G… B…).
fn deinterleave_row(line: &[u8], dst: &mut [u8]) {
    let n = line.len() / 3;
    let (r, gb) = dst.split_at_mut(n);
    let (g, b) = gb.split_at_mut(n);
    for (i, px) in line.chunks_exact(3).enumerate() {
        r[i] = px[0];
        g[i] = px[1];
        b[i] = px[2];
    }
}

/// Filter weights of a range of output pixels along one axis, in PIL's fixed point.
pub(super) struct Coeffs {
    /// Taps per output pixel (the stride of `weights`).
    ksize: usize,
    /// For each output pixel: first input index and number of taps.
    pub(super) bounds: Vec<(usize, usize)>,
    /// `bounds.len() × ksize` weights.
    pub(super) weights: Vec<i32>,
    /// The same weights for the AVX-512 gather kernel, where they fit it; made on the first
    /// horizontal pass that runs that kernel (never for the vertical axis or other CPUs).
    #[cfg(target_arch = "x86_64")]
    gather: std::cell::OnceCell<Option<super::avx512::GatherCoeffs>>,
}

impl Coeffs {
    /// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc`, for outputs `range` of `out_size`
    /// from the whole input.
    #[cfg(test)]
    fn new(
        in_size: usize,
        out_size: usize,
        range: std::ops::Range<usize>,
        filter: Resample,
    ) -> Result<Self> {
        Self::new_boxed(in_size, whole_axis(in_size), out_size, range, filter)
    }

    /// The same from the input region `in_box` (PIL's `box`: `(in0, in1)` in input pixels;
    /// taps stay clamped to `0..in_size`).
    fn new_boxed(
        in_size: usize,
        in_box: (f64, f64),
        out_size: usize,
        range: std::ops::Range<usize>,
        filter: Resample,
    ) -> Result<Self> {
        let axis = AxisFilter::new(in_size, in_box, out_size, filter)?;
        let ksize = axis.ksize;
        let mut bounds = Vec::with_capacity(range.len());
        let mut weights = vec![0i32; range.len() * ksize];
        let mut k = vec![0f64; ksize];
        let ss = 1.0 / axis.filterscale;
        for (i, xx) in range.enumerate() {
            let (center, xmin, n) = axis.taps(xx);
            let mut ww = 0.0;
            for (x, slot) in k.iter_mut().enumerate().take(n) {
                let w = (axis.kernel)(((x + xmin) as f64 - center + 0.5) * ss);
                *slot = w;
                ww += w;
            }
            let row = &mut weights[i * ksize..i * ksize + n];
            for (slot, &w) in row.iter_mut().zip(&k) {
                let w = if ww != 0.0 { w / ww } else { w };
                let fixed = w * f64::from(1u32 << PRECISION_BITS);
                *slot = if w < 0.0 {
                    (-0.5 + fixed) as i32
                } else {
                    (0.5 + fixed) as i32
                };
            }
            bounds.push((xmin, n));
        }
        Ok(Self {
            ksize,
            bounds,
            weights,
            #[cfg(target_arch = "x86_64")]
            gather: std::cell::OnceCell::new(),
        })
    }

    /// These weights for an image that holds the input from index `origin` on: the same
    /// weights, each first tap `origin` lower. Fails where a tap lies before `origin`.
    fn shifted(mut self, origin: usize) -> Option<Self> {
        if origin > 0 {
            for b in &mut self.bounds {
                b.0 = b.0.checked_sub(origin)?;
            }
        }
        Some(self)
    }

    /// One past the last input index any tap reads.
    fn end(&self) -> usize {
        self.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0)
    }

    /// The gather kernel's form of these weights, `None` where they do not fit it.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn gather(&self) -> Option<&super::avx512::GatherCoeffs> {
        self.gather
            .get_or_init(|| super::avx512::GatherCoeffs::new(self))
            .as_ref()
    }

    pub(super) fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (start, n) = self.bounds[i];
        (start, &self.weights[i * self.ksize..i * self.ksize + n])
    }
}

/// PIL's filter geometry along one axis (`precompute_coeffs` before the weights): which
/// input pixels each output pixel reads.
struct AxisFilter {
    in_size: usize,
    in0: f64,
    scale: f64,
    filterscale: f64,
    support: f64,
    /// Taps per output pixel at most.
    ksize: usize,
    kernel: fn(f64) -> f64,
}

impl AxisFilter {
    fn new(in_size: usize, in_box: (f64, f64), out_size: usize, filter: Resample) -> Result<Self> {
        let (support, kernel): (f64, fn(f64) -> f64) = match filter {
            Resample::Box => (0.5, box_filter),
            Resample::Bilinear => (1.0, bilinear_filter),
            Resample::Hamming => (1.0, hamming_filter),
            Resample::Bicubic => (2.0, bicubic_filter),
            Resample::Lanczos => (3.0, lanczos_filter),
            Resample::Nearest => {
                return Err(Error::Config(
                    "nearest resampling has no filter weights".into(),
                ));
            }
        };
        // PIL computes `in1 - in0` in float (the box is float), then divides in double.
        let (in0, in1) = in_box;
        let scale = (in1 - in0) / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = support * filterscale;
        let ksize = (support.ceil() as usize) * 2 + 1;
        if ksize > in_size.saturating_mul(2) + 3 && ksize > 1 << 20 {
            return Err(Error::InvalidArgument(format!(
                "filter of {ksize} taps is too large"
            )));
        }
        Ok(Self {
            in_size,
            in0,
            scale,
            filterscale,
            support,
            ksize,
            kernel,
        })
    }

    /// Output pixel `xx`'s filter centre, first input index and number of taps.
    fn taps(&self, xx: usize) -> (f64, usize, usize) {
        let center = self.in0 + (xx as f64 + 0.5) * self.scale;
        // C's `(int)` truncates toward zero; negatives clamp to 0 right after.
        let xmin = ((center - self.support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + self.support + 0.5) as i64).min(self.in_size as i64) as usize;
        (center, xmin, xmax.saturating_sub(xmin).min(self.ksize))
    }

    /// The input indices the output pixels `range` read, `None` for an empty range.
    fn span(&self, range: Range<usize>) -> Option<Range<usize>> {
        let (start, end) = range.fold((usize::MAX, 0), |(s, e), xx| {
            let (_, xmin, n) = self.taps(xx);
            (s.min(xmin), e.max(xmin + n))
        });
        (start < end).then_some(start..end)
    }
}

#[inline]
pub(super) fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

pub(super) const ROUND: i32 = 1 << (PRECISION_BITS - 1);

/// Computes the window `rows × cols` of `image` resized to `res_w × res_h` into `s.window`,
/// row-planar.
fn resample_window(
    image: &RgbImage,
    filter: Resample,
    (res_w, res_h): (usize, usize),
    boxes: SourceBox,
    rows: &Range<usize>,
    cols: &Range<usize>,
    s: &mut Scratch,
) -> Result<()> {
    let canvas = image.canvas();
    let (in_w, in_h) = (canvas.size.0 as usize, canvas.size.1 as usize);
    let (held_w, held_h) = (image.width() as usize, image.height() as usize);
    if filter == Resample::Nearest {
        return nearest_window(image, (res_w, res_h), boxes, rows, cols, &mut s.window);
    }
    let need_h = res_w != in_w || boxes.x != whole_axis(in_w);
    let need_v = res_h != in_h || boxes.y != whole_axis(in_h);
    let src = image.as_raw();
    let win_w = cols.len();

    // Input rows the vertical pass reads (or the output rows themselves without one), in the
    // image's own rows.
    let vert = if need_v {
        let axis = (in_h, canvas.origin.1, held_h);
        Some(s.coeffs(axis, boxes.y, res_h, rows.clone(), filter)?)
    } else {
        None
    };
    let (first_row, last_row) = match &vert {
        Some(v) => {
            let first = v.bounds.iter().map(|b| b.0).min().unwrap_or(0);
            (first, v.end())
        }
        None => {
            let held = canvas.rows(rows, held_h)?;
            (held.start, held.end)
        }
    };

    // Horizontal pass over the rows needed, for the window's columns only.
    if need_h {
        let axis = (in_w, canvas.origin.0, held_w);
        let horiz = s.coeffs(axis, boxes.x, res_w, cols.clone(), filter)?;
        s.temp.resize((last_row - first_row) * win_w * 3, 0);
        kernels::horizontal(
            src,
            held_w,
            first_row..last_row,
            &mut s.temp,
            &horiz,
            &mut s.transposed,
        );
    } else {
        let cols = canvas.cols(cols, held_w)?;
        copy_window(image, &(first_row..last_row), &cols, &mut s.temp);
    }

    match vert {
        // Vertical pass: each output row is a weighted sum of temp rows, all columns at once.
        Some(vert) => {
            s.window.resize(rows.len() * win_w * 3, 0);
            kernels::vertical(&s.temp, first_row, &mut s.window, win_w * 3, &vert);
        }
        None => std::mem::swap(&mut s.temp, &mut s.window),
    }
    Ok(())
}

mod kernels {
    //! The two passes' inner loops. The scalar versions are the reference; on x86-64 the SIMD
    //! kernels are chosen at run time (the baseline target, SSE2, has no 32-bit vector
    //! multiply): AVX2 ([`super::super::avx2`]) for both passes, and for the horizontal pass
    //! the AVX-512 VBMI + VNNI gather kernel ([`super::super::avx512`]) where the CPU has it.
    //! All give the same bytes: integer sums are exact.

    use std::ops::Range;

    use super::{Coeffs, ROUND, clip8};
    use crate::preprocess::{SimdLevel, simd_cap};

    /// Horizontal pass of `rows` of `src` (RGB, `in_w` pixels a row) into `temp`, one
    /// row-planar row (R… G… B…, `coeffs.bounds.len()` pixels each) per input row.
    pub(super) fn horizontal_scalar(
        src: &[u8],
        in_w: usize,
        rows: Range<usize>,
        temp: &mut [u8],
        coeffs: &Coeffs,
    ) {
        let win_w = coeffs.bounds.len();
        let lines = src[rows.start * in_w * 3..rows.end * in_w * 3].chunks_exact(in_w * 3);
        // Pixels padded to 4 bytes so each tap is one 4-lane multiply-add.
        let mut padded: Vec<[u8; 4]> = Vec::new();
        for (line, dst) in lines.zip(temp.chunks_exact_mut(win_w * 3)) {
            padded.clear();
            padded.extend(line.chunks_exact(3).map(|p| [p[0], p[1], p[2], 0]));
            for x in 0..win_w {
                let (start, taps) = coeffs.taps(x);
                let px = &padded[start..start + taps.len()];
                let mut acc = [ROUND; 4];
                for (p, &w) in px.iter().zip(taps) {
                    for c in 0..4 {
                        acc[c] += i32::from(p[c]) * w;
                    }
                }
                dst[x] = clip8(acc[0]);
                dst[win_w + x] = clip8(acc[1]);
                dst[2 * win_w + x] = clip8(acc[2]);
            }
        }
    }

    /// Vertical pass: row `i` of `out` (rows of `stride` bytes, any layout) is the weighted
    /// sum of rows of `temp` (whose first row is input row `first_row`).
    pub(super) fn vertical_scalar(
        temp: &[u8],
        first_row: usize,
        out: &mut [u8],
        stride: usize,
        coeffs: &Coeffs,
    ) {
        let mut acc = vec![0i32; stride];
        for (i, dst) in out.chunks_exact_mut(stride).enumerate() {
            let (start, taps) = coeffs.taps(i);
            acc.fill(ROUND);
            for (j, &w) in taps.iter().enumerate() {
                let row = start + j - first_row;
                let line = &temp[row * stride..(row + 1) * stride];
                for (a, &p) in acc.iter_mut().zip(line) {
                    *a += i32::from(p) * w;
                }
            }
            for (d, &a) in dst.iter_mut().zip(&acc) {
                *d = clip8(a);
            }
        }
    }

    fn have_avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The horizontal pass's implementations; all give the same bytes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Horizontal {
        /// [`horizontal_scalar`], the reference.
        Scalar,
        /// AVX2, one tap per 32-bit lane (`pmulld`).
        Avx2,
        /// AVX-512 VBMI + VNNI, taps gathered from the row (no transpose); see
        /// [`super::super::avx512`].
        Gather,
    }

    impl Horizontal {
        /// The implementations this CPU can run, fastest last.
        pub(super) fn available() -> Vec<Self> {
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
            let mut out = vec![Self::Scalar];
            #[cfg(target_arch = "x86_64")]
            if have_avx2() {
                out.push(Self::Avx2);
                if super::super::avx512::have_gather() {
                    out.push(Self::Gather);
                }
            }
            out
        }

        /// The SIMD level this kernel needs.
        fn level(self) -> SimdLevel {
            match self {
                Self::Scalar => SimdLevel::Scalar,
                Self::Avx2 => SimdLevel::Avx2,
                Self::Gather => SimdLevel::Avx512,
            }
        }

        /// The one [`horizontal`] uses: the fastest available within [`simd_cap`].
        fn best() -> Self {
            use std::sync::OnceLock;
            static BEST: OnceLock<Horizontal> = OnceLock::new();
            *BEST.get_or_init(|| {
                let cap = simd_cap();
                Self::available()
                    .into_iter()
                    .rfind(|k| k.level() <= cap)
                    .unwrap_or(Self::Scalar)
            })
        }
    }

    /// [`horizontal_scalar`], with the fastest SIMD kernel the CPU has. `scratch` is working
    /// memory.
    pub(super) fn horizontal(
        src: &[u8],
        in_w: usize,
        rows: Range<usize>,
        temp: &mut [u8],
        coeffs: &Coeffs,
        scratch: &mut Vec<u8>,
    ) {
        horizontal_with(Horizontal::best(), src, in_w, rows, temp, coeffs, scratch);
    }

    /// The horizontal pass with implementation `kind`, which must be one of
    /// [`Horizontal::available`]. [`Horizontal::Gather`] falls back to [`Horizontal::Avx2`]
    /// for weights without a gather form (a downscale by more than 4×).
    pub(super) fn horizontal_with(
        kind: Horizontal,
        src: &[u8],
        in_w: usize,
        rows: Range<usize>,
        temp: &mut [u8],
        coeffs: &Coeffs,
        scratch: &mut Vec<u8>,
    ) {
        #[cfg(target_arch = "x86_64")]
        let gather = match kind {
            Horizontal::Gather => coeffs.gather(),
            _ => None,
        };
        #[cfg(target_arch = "x86_64")]
        match (kind, gather) {
            (Horizontal::Scalar, _) => {}
            (Horizontal::Gather, Some(g)) => {
                // SAFETY: `available` lists `Gather` only where `have_gather` found the CPU
                // features its kernel enables.
                unsafe { super::super::avx512::horizontal_gather(src, in_w, rows, temp, g) };
                return;
            }
            (Horizontal::Avx2 | Horizontal::Gather, _) => {
                // SAFETY: `available` lists both only where the CPU has AVX2.
                unsafe { super::super::avx2::horizontal(src, in_w, rows, temp, coeffs, scratch) };
                return;
            }
        }
        let _ = (kind, scratch);
        horizontal_scalar(src, in_w, rows, temp, coeffs);
    }

    /// [`vertical_scalar`], with AVX2 where the CPU has it (and [`simd_cap`] allows it).
    pub(super) fn vertical(
        temp: &[u8],
        first_row: usize,
        out: &mut [u8],
        stride: usize,
        coeffs: &Coeffs,
    ) {
        #[cfg(target_arch = "x86_64")]
        if have_avx2() && simd_cap() >= SimdLevel::Avx2 {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { super::super::avx2::vertical(temp, first_row, out, stride, coeffs) };
            return;
        }
        vertical_scalar(temp, first_row, out, stride, coeffs);
    }
}

/// PIL's NEAREST resize (source index `floor((x + 0.5) * in / out)`) of the window, into `out`,
/// row-planar.
fn nearest_window(
    image: &RgbImage,
    (res_w, res_h): (usize, usize),
    boxes: SourceBox,
    rows: &Range<usize>,
    cols: &Range<usize>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let canvas = image.canvas();
    let (in_w, in_h) = (canvas.size.0 as usize, canvas.size.1 as usize);
    let (held_w, held_h) = (image.width() as usize, image.height() as usize);
    let src = image.as_raw();
    let map = |o: usize, in_size: usize, (in0, in1): (f64, f64), out_size: usize| {
        let s = (in0 + (o as f64 + 0.5) * (in1 - in0) / out_size as f64) as usize;
        s.min(in_size - 1)
    };
    // Source indices in the image's own pixels (a window's first pixel is its origin).
    let held = |s: usize, origin: usize, held: usize| {
        s.checked_sub(origin)
            .filter(|&i| i < held)
            .ok_or_else(window_lacks_pixels)
    };
    let win_w = cols.len();
    // Every byte is written below; resizing to the same length as last time costs nothing.
    out.resize(rows.len() * win_w * 3, 0);
    for (y, dst) in rows.clone().zip(out.chunks_exact_mut(win_w * 3)) {
        let sy = held(map(y, in_h, boxes.y, res_h), canvas.origin.1, held_h)?;
        for (i, x) in cols.clone().enumerate() {
            let sx = held(map(x, in_w, boxes.x, res_w), canvas.origin.0, held_w)?;
            let o = (sy * held_w + sx) * 3;
            for c in 0..3 {
                dst[c * win_w + i] = src[o + c];
            }
        }
    }
    Ok(())
}

fn box_filter(x: f64) -> f64 {
    if x > -0.5 && x <= 0.5 { 1.0 } else { 0.0 }
}

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

fn hamming_filter(x: f64) -> f64 {
    let x = x.abs();
    if x == 0.0 {
        1.0
    } else if x >= 1.0 {
        0.0
    } else {
        let x = x * std::f64::consts::PI;
        // PIL writes the constants as floats (0.54f, 0.46f).
        x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
    }
}

fn bicubic_filter(x: f64) -> f64 {
    // Cubic convolution with a = -0.5, as PIL.
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn lanczos_filter(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::spec::{CropSize, ResizeSpec};

    fn gradient(w: u32, h: u32) -> RgbImage {
        let data = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [
                    (x * 7 % 256) as u8,
                    (y * 13 % 256) as u8,
                    ((x + y) * 3 % 256) as u8,
                ]
            })
            .collect();
        RgbImage::from_raw(w, h, data).unwrap()
    }

    /// xorshift64*: reproducible noise without a dependency.
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn simd_horizontal_pass_equals_scalar() {
        // Odd sizes, single rows and columns, up- and downscaling, windows that start and end
        // inside the row, every filter. Noise (and extreme values) exercise the clipping.
        let sizes = [
            (1, 1),
            (1, 9),
            (9, 1),
            (1, 300),
            (300, 1),
            (7, 5),
            (17, 13),
            (64, 8),
            (501, 37),
            (33, 400),
            (500, 19),
            (1000, 3),
        ];
        let filters = [
            Resample::Bicubic,
            Resample::Bilinear,
            Resample::Lanczos,
            Resample::Box,
            Resample::Hamming,
        ];
        let kinds = kernels::Horizontal::available();
        eprintln!("horizontal kernels on this CPU: {kinds:?}");
        // Cases with a gather form, by lanes per group.
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut gathered = std::collections::BTreeMap::<usize, usize>::new();
        let mut case = 0u64;
        for &(in_w, in_h) in &sizes {
            for &out_w in &[1usize, 3, 8, 9, 23, 224, 260, 613] {
                for &filter in &filters {
                    case += 1;
                    let mut src = noise(case, in_w * in_h * 3);
                    if case.is_multiple_of(3) {
                        src.iter_mut()
                            .for_each(|v| *v = if *v > 127 { 255 } else { 0 });
                    }
                    let cols = [0..out_w, out_w / 3..out_w - out_w / 4];
                    for cols in cols.into_iter().filter(|c| !c.is_empty()) {
                        let coeffs = Coeffs::new(in_w, out_w, cols.clone(), filter).unwrap();
                        #[cfg(target_arch = "x86_64")]
                        if let Some(g) = coeffs.gather() {
                            *gathered.entry(g.lanes()).or_insert(0) += 1;
                        }
                        for rows in [0..in_h, in_h / 2..in_h] {
                            let len = rows.len() * cols.len() * 3;
                            let mut want = vec![0u8; len];
                            kernels::horizontal_scalar(
                                &src,
                                in_w,
                                rows.clone(),
                                &mut want,
                                &coeffs,
                            );
                            for &kind in &kinds {
                                let mut got = vec![1u8; len];
                                let mut scratch = Vec::new();
                                kernels::horizontal_with(
                                    kind,
                                    &src,
                                    in_w,
                                    rows.clone(),
                                    &mut got,
                                    &coeffs,
                                    &mut scratch,
                                );
                                assert_eq!(
                                    got, want,
                                    "{kind:?}: {in_w}×{in_h} → {out_w} cols {cols:?} rows \
                                     {rows:?} {filter:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        // The gather kernel takes 16, 8 or 4 outputs a group as the downscale grows (up to
        // 4×); make sure the cases above run all three.
        eprintln!("weights with a gather form, by lanes: {gathered:?}");
        if kinds.contains(&kernels::Horizontal::Gather) {
            for lanes in [16, 8, 4] {
                assert!(gathered.contains_key(&lanes), "{lanes} lanes: {gathered:?}");
            }
        }
    }

    #[test]
    fn simd_vertical_pass_equals_scalar() {
        // Row widths below, at and around the 32-byte vector width; 1×N and N×1 cases.
        let mut case = 100u64;
        for &stride in &[1usize, 3, 31, 32, 33, 96, 100, 672] {
            for &(in_h, out_h) in &[(1, 1), (1, 7), (9, 1), (400, 224), (37, 613), (5, 2)] {
                for filter in [Resample::Bicubic, Resample::Lanczos, Resample::Bilinear] {
                    case += 1;
                    let temp = noise(case, in_h * stride);
                    for rows in [0..out_h, out_h / 2..out_h] {
                        let coeffs = Coeffs::new(in_h, out_h, rows.clone(), filter).unwrap();
                        let first = coeffs.bounds.iter().map(|b| b.0).min().unwrap();
                        let used = &temp[first * stride..];
                        let mut want = vec![0u8; rows.len() * stride];
                        kernels::vertical_scalar(used, first, &mut want, stride, &coeffs);
                        let mut got = vec![1u8; rows.len() * stride];
                        kernels::vertical(used, first, &mut got, stride, &coeffs);
                        assert_eq!(
                            got, want,
                            "stride {stride} {in_h} → {out_h} {rows:?} {filter:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn identity_size_is_a_copy() {
        let img = gradient(224, 224);
        let out = resize_crop(&PreprocessSpec::clip(), &img).unwrap();
        assert_eq!(out, img.as_raw());
    }

    #[test]
    fn crop_window_equals_full_resize_then_crop() {
        // Computing only the window must give the same pixels as resizing everything.
        let img = gradient(301, 187);
        let spec = PreprocessSpec::dinov2();
        let windowed = resize_crop(&spec, &img).unwrap();
        let (rh, rw) = spec.resized_size(301, 187);
        let full_spec = PreprocessSpec {
            crop: None,
            ..spec.clone()
        };
        let full = resize_crop(&full_spec, &img).unwrap();
        let (top, left) = ((rh as usize - 224) / 2, (rw as usize - 224) / 2);
        let mut cropped = Vec::new();
        for y in top..top + 224 {
            cropped.extend_from_slice(
                &full[(y * rw as usize + left) * 3..(y * rw as usize + left + 224) * 3],
            );
        }
        assert_eq!(windowed, cropped);
    }

    #[test]
    fn extreme_aspect_ratio_is_bounded_and_finite() {
        for (w, h) in [(1, 20_000), (20_000, 1), (1, 1)] {
            let img = gradient(w, h);
            let out = resize_crop(&PreprocessSpec::clip(), &img).unwrap();
            assert_eq!(out.len(), 224 * 224 * 3);
        }
    }

    #[test]
    fn crop_larger_than_image_pads_with_zeros() {
        let img = gradient(10, 10);
        let spec = PreprocessSpec {
            resize: None,
            crop: Some(CropSize {
                height: 14,
                width: 12,
            }),
            ..PreprocessSpec::clip()
        };
        let out = resize_crop(&spec, &img).unwrap();
        // 2 rows of padding on top, 1 column on the left (ceil of half the difference).
        assert_eq!(&out[..12 * 3 * 2], &[0u8; 72][..]);
        assert_eq!(
            &out[(2 * 12 + 1) * 3..(2 * 12 + 1) * 3 + 3],
            &img.as_raw()[..3]
        );
        let _ = ResizeSpec::ShortestEdge(1);
    }
}
