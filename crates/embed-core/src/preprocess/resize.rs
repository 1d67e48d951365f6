//! PIL's two-pass resampling (`ImagingResample`), computed only for the pixels the centre crop
//! keeps.
//!
//! PIL resizes horizontally, then vertically (vertically first when the height shrinks by
//! more than twice as many pixels as the width, since Pillow 13: [`vertical_first`]), with
//! per-output-pixel filter weights normalised in `f64`, converted to fixed point (22
//! fractional bits, [`super::coeffs`]) and applied in integer arithmetic
//! ([`super::kernels`]), rounding to 8 bits between the passes. Reproducing that exactly (not
//! a "similar" bicubic) is what makes our tensors equal to `transformers`' value for value.
//! Every output pixel depends only on its own filter window, so pixels the crop discards need
//! not be computed ([`super::plan`]): memory and time stay bounded for any aspect ratio (a
//! 1×20000 image would otherwise resize to 224×4.5M).

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use super::coeffs::Coeffs;
use super::kernels;
use super::plan::{Placement, Plan, Segment, SourceBox, is_copy, plan, whole_axis};
use super::spec::{PreprocessSpec, Resample};
use crate::decode::{RgbImage, window_lacks_pixels};
use crate::error::{Error, Result};

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
    if need_h && need_v && vertical_first(boxes, (res_w, res_h)) {
        return resample_vertical_first(image, filter, (res_w, res_h), boxes, rows, cols, s);
    }
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
        Some(v) => (v.start(), v.end()),
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
            let stride = win_w * 3;
            kernels::vertical(&s.temp, stride, first_row, &mut s.window, stride, &vert);
        }
        None => std::mem::swap(&mut s.temp, &mut s.window),
    }
    Ok(())
}

/// Whether Pillow (13 and later) runs the vertical pass before the horizontal one: when the
/// height shrinks, by more than twice as many pixels as the width does. The passes round to 8
/// bits in between, so the order changes values; for a shortest-edge resize that shrinks the
/// picture, it is the vertical pass first exactly for pictures more than twice as tall as
/// wide. Sizes as PIL compares them: output pixels against the source box.
fn vertical_first(boxes: SourceBox, (res_w, res_h): (usize, usize)) -> bool {
    let (box_w, box_h) = (boxes.x.1 - boxes.x.0, boxes.y.1 - boxes.y.0);
    let (res_w, res_h) = (res_w as f64, res_h as f64);
    res_h < box_h && box_h - res_h > 2.0 * (box_w - res_w)
}

/// [`resample_window`] in Pillow's other order ([`vertical_first`]): the vertical pass makes
/// the window's rows from the input columns the horizontal taps read, then the horizontal pass
/// makes the window of those rows.
fn resample_vertical_first(
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
    let vert = s.coeffs(
        (in_h, canvas.origin.1, held_h),
        boxes.y,
        res_h,
        rows.clone(),
        filter,
    )?;
    // The input columns the window's horizontal taps read (in the image's own columns), then
    // the same weights with taps counted from the first of them, the vertical pass's output.
    let horiz = s.coeffs(
        (in_w, canvas.origin.0, held_w),
        boxes.x,
        res_w,
        cols.clone(),
        filter,
    )?;
    let (first_col, end_col) = (horiz.start(), horiz.end());
    let span = end_col - first_col;
    let horiz = s.coeffs(
        (in_w, canvas.origin.0 + first_col, span),
        boxes.x,
        res_w,
        cols.clone(),
        filter,
    )?;
    let src = &image.as_raw()[first_col * 3..];
    s.temp.resize(rows.len() * span * 3, 0);
    kernels::vertical(src, held_w * 3, 0, &mut s.temp, span * 3, &vert);
    s.window.resize(rows.len() * cols.len() * 3, 0);
    kernels::horizontal(
        &s.temp,
        span,
        0..rows.len(),
        &mut s.window,
        &horiz,
        &mut s.transposed,
    );
    Ok(())
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

    #[test]
    fn pass_order_is_pillows() {
        // `(input w, h) → (output w, h)` and whether Pillow 13 ran the vertical pass first,
        // found by comparing its output with each order's (it matched exactly one).
        let cases = [
            ((100, 100), (50, 40), false),
            ((100, 100), (120, 50), true),
            ((100, 100), (99, 50), true),
            ((100, 100), (101, 50), true),
            ((100, 100), (50, 120), false),
            ((100, 200), (50, 99), true),
            ((100, 200), (50, 100), false),
            ((100, 200), (50, 101), false),
            ((100, 100), (150, 160), false),
            ((100, 100), (160, 150), false),
            ((60, 100), (50, 80), false),
            ((480, 1000), (224, 466), true),
            ((480, 960), (224, 448), false),
            ((1000, 480), (466, 224), false),
        ];
        for ((w, h), res, want) in cases {
            let boxes = SourceBox {
                x: whole_axis(w),
                y: whole_axis(h),
            };
            assert_eq!(vertical_first(boxes, res), want, "{w}×{h} → {res:?}");
        }
    }

    #[test]
    fn vertical_first_window_equals_full_resize_then_crop() {
        // A picture more than twice as tall as wide: only the window, in Pillow's order for it,
        // gives the pixels of resizing everything (in that order) and cropping.
        for (w, h) in [(301, 700), (257, 3001)] {
            let img = gradient(w, h);
            for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
                let (rh, rw) = spec.resized_size(w, h);
                let boxes = SourceBox::of(&img);
                assert!(vertical_first(boxes, (rw as usize, rh as usize)));
                let windowed = resize_crop(&spec, &img).unwrap();
                let full = resize_crop(
                    &PreprocessSpec {
                        crop: None,
                        ..spec.clone()
                    },
                    &img,
                )
                .unwrap();
                let (top, left) = ((rh as usize - 224) / 2, (rw as usize - 224) / 2);
                let mut cropped = Vec::new();
                for y in top..top + 224 {
                    let row = y * rw as usize;
                    cropped.extend_from_slice(&full[(row + left) * 3..(row + left + 224) * 3]);
                }
                assert_eq!(windowed, cropped, "{w}×{h}");
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
