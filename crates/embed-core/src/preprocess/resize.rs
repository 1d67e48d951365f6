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

fn copy_window(image: &RgbImage, rows: &std::ops::Range<usize>, cols: &std::ops::Range<usize>) -> Vec<u8> {
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
    fn new(in_size: usize, out_size: usize, range: std::ops::Range<usize>, filter: Resample) -> Result<Self> {
        let (support, kernel): (f64, fn(f64) -> f64) = match filter {
            Resample::Box => (0.5, box_filter),
            Resample::Bilinear => (1.0, bilinear_filter),
            Resample::Hamming => (1.0, hamming_filter),
            Resample::Bicubic => (2.0, bicubic_filter),
            Resample::Lanczos => (3.0, lanczos_filter),
            Resample::Nearest => {
                return Err(Error::Config("nearest resampling has no filter weights".into()));
            }
        };
        // PIL computes `in1 - in0` in float (the box is float), then divides in double.
        let scale = f64::from(in_size as f32) / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = support * filterscale;
        let ksize = (support.ceil() as usize) * 2 + 1;
        if ksize > in_size.saturating_mul(2) + 3 && ksize > 1 << 20 {
            return Err(Error::InvalidArgument(format!("filter of {ksize} taps is too large")));
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
                *slot = if w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
            }
            bounds.push((xmin, n));
        }
        Ok(Self { ksize, bounds, weights })
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
    let vert = if need_v { Some(Coeffs::new(in_h, res_h, rows.clone(), filter)?) } else { None };
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
        for (t, y) in (first_row..last_row).enumerate() {
            let line = &src[y * in_w * 3..(y + 1) * in_w * 3];
            let dst = &mut temp[t * win_w * 3..(t + 1) * win_w * 3];
            for (x, out) in dst.chunks_exact_mut(3).enumerate() {
                let (start, taps) = horiz.taps(x);
                let px = &line[start * 3..(start + taps.len()) * 3];
                let (mut r, mut g, mut b) = (ROUND, ROUND, ROUND);
                for (p, &w) in px.chunks_exact(3).zip(taps) {
                    r += i32::from(p[0]) * w;
                    g += i32::from(p[1]) * w;
                    b += i32::from(p[2]) * w;
                }
                out[0] = clip8(r);
                out[1] = clip8(g);
                out[2] = clip8(b);
            }
        }
        temp
    } else {
        copy_window(image, &(first_row..last_row), cols)
    };

    let Some(vert) = vert else { return Ok(temp) };
    // Vertical pass: each output row is a weighted sum of temp rows, all columns at once.
    let stride = win_w * 3;
    let mut out = vec![0u8; rows.len() * stride];
    let mut acc = vec![0i32; stride];
    for (i, dst) in out.chunks_exact_mut(stride).enumerate() {
        let (start, taps) = vert.taps(i);
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
    Ok(out)
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
    if (-3.0..3.0).contains(&x) { sinc(x) * sinc(x / 3.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::spec::{CropSize, ResizeSpec};

    fn gradient(w: u32, h: u32) -> RgbImage {
        let data = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x + y) * 3 % 256) as u8]
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
        let full_spec = PreprocessSpec { crop: None, ..spec.clone() };
        let full = resize_crop(&full_spec, &img).unwrap();
        let (top, left) = ((rh as usize - 224) / 2, (rw as usize - 224) / 2);
        let mut cropped = Vec::new();
        for y in top..top + 224 {
            cropped.extend_from_slice(&full[(y * rw as usize + left) * 3..(y * rw as usize + left + 224) * 3]);
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
            crop: Some(CropSize { height: 14, width: 12 }),
            ..PreprocessSpec::clip()
        };
        let out = resize_crop(&spec, &img).unwrap();
        // 2 rows of padding on top, 1 column on the left (ceil of half the difference).
        assert_eq!(&out[..12 * 3 * 2], &[0u8; 72][..]);
        assert_eq!(&out[(2 * 12 + 1) * 3..(2 * 12 + 1) * 3 + 3], &img.as_raw()[..3]);
        let _ = ResizeSpec::ShortestEdge(1);
    }
}
