//! PIL's filter weights along one axis (`precompute_coeffs` and `normalize_coeffs_8bpc` in
//! Pillow's `Resample.c`): which input pixels each output pixel reads, and with which
//! fixed-point weights.

use std::ops::Range;

use super::spec::Resample;
use crate::error::{Error, Result};

/// Fractional bits of PIL's fixed-point weights (`PRECISION_BITS = 32 - 8 - 2`).
pub(super) const PRECISION_BITS: u32 = 32 - 8 - 2;

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
    pub(super) fn new(
        in_size: usize,
        out_size: usize,
        range: std::ops::Range<usize>,
        filter: Resample,
    ) -> Result<Self> {
        Self::new_boxed(
            in_size,
            super::plan::whole_axis(in_size),
            out_size,
            range,
            filter,
        )
    }

    /// The same from the input region `in_box` (PIL's `box`: `(in0, in1)` in input pixels;
    /// taps stay clamped to `0..in_size`).
    pub(super) fn new_boxed(
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
    pub(super) fn shifted(mut self, origin: usize) -> Option<Self> {
        if origin > 0 {
            for b in &mut self.bounds {
                b.0 = b.0.checked_sub(origin)?;
            }
        }
        Some(self)
    }

    /// The first input index any tap reads.
    pub(super) fn start(&self) -> usize {
        self.bounds.iter().map(|b| b.0).min().unwrap_or(0)
    }

    /// One past the last input index any tap reads.
    pub(super) fn end(&self) -> usize {
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
pub(super) struct AxisFilter {
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
    pub(super) fn new(
        in_size: usize,
        in_box: (f64, f64),
        out_size: usize,
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
    pub(super) fn span(&self, range: Range<usize>) -> Option<Range<usize>> {
        let (start, end) = range.fold((usize::MAX, 0), |(s, e), xx| {
            let (_, xmin, n) = self.taps(xx);
            (s.min(xmin), e.max(xmin + n))
        });
        (start < end).then_some(start..end)
    }
}

/// PIL's `clip8`: a fixed-point sum to 8 bits, clamped.
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

/// Half of one 8-bit level in fixed point: every sum starts from it, so the shift rounds.
pub(super) const ROUND: i32 = 1 << (PRECISION_BITS - 1);

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
