//! PIL's two-pass resampling (`ImagingResample`), computed only for the pixels the centre crop
//! keeps.
//!
//! PIL resizes horizontally, then vertically, with per-output-pixel filter weights normalised in
//! `f64`, converted to fixed point (22 fractional bits) and applied in integer arithmetic,
//! rounding to 8 bits between the passes. Reproducing that exactly (not a "similar" bicubic) is
//! what makes our tensors equal to `transformers`' value for value. Every output pixel depends
//! only on its own filter window, so pixels the crop discards need not be computed: memory and
//! time stay bounded for any aspect ratio (a 1×20000 image would otherwise resize to 224×4.5M).

use super::spec::{PreprocessSpec, Resample};
use crate::decode::RgbImage;
use crate::error::{Error, Result};

/// Fractional bits of PIL's fixed-point weights (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Resizes and centre-crops `image` as `spec` says, returning interleaved RGB8 of
/// `spec.output_size(..)`. Pixels outside the resized image (a crop larger than it) are zero,
/// as `transformers`' `center_crop` pads them.
pub fn resize_crop(spec: &PreprocessSpec, image: &RgbImage) -> Result<Vec<u8>> {
    let (in_w, in_h) = (image.width() as usize, image.height() as usize);
    if in_w == 0 || in_h == 0 {
        return Err(Error::InvalidArgument("empty image".into()));
    }
    let (rh, rw) = spec.resized_size(image.width(), image.height());
    let (res_h, res_w) = (rh as usize, rw as usize);
    if res_h == 0 || res_w == 0 {
        return Err(Error::InvalidArgument(format!(
            "a {in_w}×{in_h} image resizes to nothing ({res_w}×{res_h})"
        )));
    }
    let (out_h, out_w) = spec.output_size(image.width(), image.height());
    // Offsets of the crop window in the resized image: Python's floor division, possibly
    // negative (then the crop pads).
    let (top, left) = match spec.crop {
        Some(_) => (
            (res_h as i64 - out_h as i64).div_euclid(2),
            (res_w as i64 - out_w as i64).div_euclid(2),
        ),
        None => (0, 0),
    };
    // Window of resized rows/columns that land inside the output.
    let rows = clip_range(top, out_h, res_h);
    let cols = clip_range(left, out_w, res_w);
    let mut out = vec![0u8; out_h * out_w * 3];
    if rows.is_empty() || cols.is_empty() {
        return Ok(out);
    }

    let resized = if spec.resize.is_none() || (res_w == in_w && res_h == in_h) {
        copy_window(image, &rows, &cols)
    } else {
        resample_window(image, spec.resample, (res_w, res_h), &rows, &cols)?
    };

    let win_w = cols.len();
    for (i, ry) in rows.clone().enumerate() {
        let oy = (ry as i64 - top) as usize;
        let ox = (cols.start as i64 - left) as usize;
        let dst = (oy * out_w + ox) * 3;
        out[dst..dst + win_w * 3].copy_from_slice(&resized[i * win_w * 3..(i + 1) * win_w * 3]);
    }
    Ok(out)
}

/// Resized-image indices `[offset, offset + len) ∩ [0, size)`.
fn clip_range(offset: i64, len: usize, size: usize) -> std::ops::Range<usize> {
    let start = offset.max(0) as usize;
    let end = (offset + len as i64).clamp(0, size as i64) as usize;
    start.min(end)..end
}

fn copy_window(
    image: &RgbImage,
    rows: &std::ops::Range<usize>,
    cols: &std::ops::Range<usize>,
) -> Vec<u8> {
    let w = image.width() as usize;
    let src = image.as_raw();
    let mut out = Vec::with_capacity(rows.len() * cols.len() * 3);
    for y in rows.clone() {
        out.extend_from_slice(&src[(y * w + cols.start) * 3..(y * w + cols.end) * 3]);
    }
    out
}

/// Filter weights of a range of output pixels along one axis, in PIL's fixed point.
struct Coeffs {
    /// Taps per output pixel (the stride of `weights`).
    ksize: usize,
    /// For each output pixel: first input index and number of taps.
    bounds: Vec<(usize, usize)>,
    /// `bounds.len() × ksize` weights.
    weights: Vec<i32>,
}

impl Coeffs {
    /// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc`, for outputs `range` of `out_size`.
    fn new(
        in_size: usize,
        out_size: usize,
        range: std::ops::Range<usize>,
        filter: Resample,
    ) -> Result<Self> {
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
        let scale = f64::from(in_size as f32) / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = support * filterscale;
        let ksize = (support.ceil() as usize) * 2 + 1;
        if ksize > in_size.saturating_mul(2) + 3 && ksize > 1 << 20 {
            return Err(Error::InvalidArgument(format!(
                "filter of {ksize} taps is too large"
            )));
        }
        let mut bounds = Vec::with_capacity(range.len());
        let mut weights = vec![0i32; range.len() * ksize];
        let mut k = vec![0f64; ksize];
        for (i, xx) in range.enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's `(int)` truncates toward zero; negatives clamp to 0 right after.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin).min(ksize);
            let mut ww = 0.0;
            for (x, slot) in k.iter_mut().enumerate().take(n) {
                let w = kernel(((x + xmin) as f64 - center + 0.5) * ss);
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
        })
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (start, n) = self.bounds[i];
        (start, &self.weights[i * self.ksize..i * self.ksize + n])
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

const ROUND: i32 = 1 << (PRECISION_BITS - 1);

/// The resized window `rows × cols` of `image` resized to `res_w × res_h`.
fn resample_window(
    image: &RgbImage,
    filter: Resample,
    (res_w, res_h): (usize, usize),
    rows: &std::ops::Range<usize>,
    cols: &std::ops::Range<usize>,
) -> Result<Vec<u8>> {
    let (in_w, in_h) = (image.width() as usize, image.height() as usize);
    if filter == Resample::Nearest {
        return Ok(nearest_window(image, (res_w, res_h), rows, cols));
    }
    let need_h = res_w != in_w;
    let need_v = res_h != in_h;
    let src = image.as_raw();
    let win_w = cols.len();

    // Input rows the vertical pass reads (or the output rows themselves without one).
    let vert = if need_v {
        Some(Coeffs::new(in_h, res_h, rows.clone(), filter)?)
    } else {
        None
    };
    let (first_row, last_row) = match &vert {
        Some(v) => {
            let first = v.bounds.iter().map(|b| b.0).min().unwrap_or(0);
            let last = v.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0);
            (first, last)
        }
        None => (rows.start, rows.end),
    };

    // Horizontal pass over the rows needed, for the window's columns only.
    let temp: Vec<u8> = if need_h {
        let horiz = Coeffs::new(in_w, res_w, cols.clone(), filter)?;
        let mut temp = vec![0u8; (last_row - first_row) * win_w * 3];
        let lines = src[first_row * in_w * 3..last_row * in_w * 3].chunks_exact(in_w * 3);
        kernels::horizontal(lines, &mut temp, win_w * 3, &horiz);
        temp
    } else {
        copy_window(image, &(first_row..last_row), cols)
    };

    let Some(vert) = vert else { return Ok(temp) };
    // Vertical pass: each output row is a weighted sum of temp rows, all columns at once.
    let mut out = vec![0u8; rows.len() * win_w * 3];
    kernels::vertical(&temp, first_row, &mut out, win_w * 3, &vert);
    Ok(out)
}

mod kernels {
    //! The two passes' inner loops. They are plain Rust that LLVM vectorises; on x86-64 a copy
    //! compiled for AVX2 is chosen at run time (integer multiply-add on 8 lanes), since the
    //! baseline target (SSE2) has no 32-bit vector multiply.

    use super::{Coeffs, ROUND, clip8};

    #[inline(always)]
    fn horizontal_generic<'a>(
        lines: impl Iterator<Item = &'a [u8]>,
        temp: &mut [u8],
        stride: usize,
        coeffs: &Coeffs,
    ) {
        // Pixels padded to 4 bytes so each tap is one 4-lane multiply-add.
        let mut padded: Vec<[u8; 4]> = Vec::new();
        for (line, dst) in lines.zip(temp.chunks_exact_mut(stride)) {
            padded.clear();
            padded.extend(line.chunks_exact(3).map(|p| [p[0], p[1], p[2], 0]));
            for (x, out) in dst.chunks_exact_mut(3).enumerate() {
                let (start, taps) = coeffs.taps(x);
                let px = &padded[start..start + taps.len()];
                let mut acc = [ROUND; 4];
                for (p, &w) in px.iter().zip(taps) {
                    for c in 0..4 {
                        acc[c] += i32::from(p[c]) * w;
                    }
                }
                out[0] = clip8(acc[0]);
                out[1] = clip8(acc[1]);
                out[2] = clip8(acc[2]);
            }
        }
    }

    #[inline(always)]
    fn vertical_generic(
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

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn horizontal_avx2<'a>(
        lines: impl Iterator<Item = &'a [u8]>,
        temp: &mut [u8],
        stride: usize,
        coeffs: &Coeffs,
    ) {
        horizontal_generic(lines, temp, stride, coeffs);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn vertical_avx2(
        temp: &[u8],
        first_row: usize,
        out: &mut [u8],
        stride: usize,
        coeffs: &Coeffs,
    ) {
        vertical_generic(temp, first_row, out, stride, coeffs);
    }

    pub(super) fn horizontal<'a>(
        lines: impl Iterator<Item = &'a [u8]>,
        temp: &mut [u8],
        stride: usize,
        coeffs: &Coeffs,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { horizontal_avx2(lines, temp, stride, coeffs) };
            return;
        }
        horizontal_generic(lines, temp, stride, coeffs);
    }

    pub(super) fn vertical(
        temp: &[u8],
        first_row: usize,
        out: &mut [u8],
        stride: usize,
        coeffs: &Coeffs,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { vertical_avx2(temp, first_row, out, stride, coeffs) };
            return;
        }
        vertical_generic(temp, first_row, out, stride, coeffs);
    }
}

/// PIL's NEAREST resize: source index `floor((x + 0.5) * in / out)`.
fn nearest_window(
    image: &RgbImage,
    (res_w, res_h): (usize, usize),
    rows: &std::ops::Range<usize>,
    cols: &std::ops::Range<usize>,
) -> Vec<u8> {
    let (in_w, in_h) = (image.width() as usize, image.height() as usize);
    let src = image.as_raw();
    let map = |o: usize, in_size: usize, out_size: usize| {
        let s = ((o as f64 + 0.5) * in_size as f64 / out_size as f64) as usize;
        s.min(in_size - 1)
    };
    let mut out = Vec::with_capacity(rows.len() * cols.len() * 3);
    for y in rows.clone() {
        let sy = map(y, in_h, res_h);
        for x in cols.clone() {
            let sx = map(x, in_w, res_w);
            let o = (sy * in_w + sx) * 3;
            out.extend_from_slice(&src[o..o + 3]);
        }
    }
    out
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
