//! Which implementation of the resize passes' inner loops runs. The portable ones
//! ([`super::scalar`]) are the reference; on x86-64 SIMD kernels are chosen at run time (the
//! baseline target, SSE2, has no 32-bit vector multiply): AVX2 ([`super::avx2`]) for both
//! passes, and for the horizontal pass the AVX-512 VBMI + VNNI gather kernel
//! ([`super::avx512`]) where the CPU has it. All give the same bytes: integer sums are exact.

use std::ops::Range;

use super::coeffs::Coeffs;
use super::scalar::{horizontal_scalar, vertical_scalar};
use super::{SimdLevel, simd_cap};

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
    /// [`super::avx512`].
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
            if super::avx512::have_gather() {
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
            unsafe { super::avx512::horizontal_gather(src, in_w, rows, temp, g) };
            return;
        }
        (Horizontal::Avx2 | Horizontal::Gather, _) => {
            // SAFETY: `available` lists both only where the CPU has AVX2.
            unsafe { super::avx2::horizontal(src, in_w, rows, temp, coeffs, scratch) };
            return;
        }
    }
    let _ = (kind, scratch);
    horizontal_scalar(src, in_w, rows, temp, coeffs);
}

/// [`vertical_scalar`], with AVX2 where the CPU has it (and [`simd_cap`] allows it).
pub(super) fn vertical(
    src: &[u8],
    pitch: usize,
    first_row: usize,
    out: &mut [u8],
    stride: usize,
    coeffs: &Coeffs,
) {
    #[cfg(target_arch = "x86_64")]
    if have_avx2() && simd_cap() >= SimdLevel::Avx2 {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { super::avx2::vertical(src, pitch, first_row, out, stride, coeffs) };
        return;
    }
    vertical_scalar(src, pitch, first_row, out, stride, coeffs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::spec::Resample;

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
        let kinds = Horizontal::available();
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
                            horizontal_scalar(&src, in_w, rows.clone(), &mut want, &coeffs);
                            for &kind in &kinds {
                                let mut got = vec![1u8; len];
                                let mut scratch = Vec::new();
                                horizontal_with(
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
        if kinds.contains(&Horizontal::Gather) {
            for lanes in [16, 8, 4] {
                assert!(gathered.contains_key(&lanes), "{lanes} lanes: {gathered:?}");
            }
        }
    }

    #[test]
    fn simd_vertical_pass_equals_scalar() {
        // Row widths below, at and around the 32-byte vector width; 1×N and N×1 cases. Rows
        // read from wider ones (the vertical-first pass reads part of each image row) give the
        // same bytes as the same rows packed.
        let mut case = 100u64;
        for &stride in &[1usize, 3, 31, 32, 33, 96, 100, 672] {
            for &(in_h, out_h) in &[(1, 1), (1, 7), (9, 1), (400, 224), (37, 613), (5, 2)] {
                for filter in [Resample::Bicubic, Resample::Lanczos, Resample::Bilinear] {
                    case += 1;
                    let pitch = stride + (case % 3) as usize * 5;
                    let wide = noise(case, in_h * pitch);
                    let packed: Vec<u8> = wide
                        .chunks_exact(pitch)
                        .flat_map(|row| &row[..stride])
                        .copied()
                        .collect();
                    for rows in [0..out_h, out_h / 2..out_h] {
                        let coeffs = Coeffs::new(in_h, out_h, rows.clone(), filter).unwrap();
                        let first = coeffs.start();
                        let used = &packed[first * stride..];
                        let mut want = vec![0u8; rows.len() * stride];
                        vertical_scalar(used, stride, first, &mut want, stride, &coeffs);
                        let what = format!("stride {stride} {in_h} → {out_h} {rows:?} {filter:?}");
                        let mut got = vec![1u8; rows.len() * stride];
                        vertical(used, stride, first, &mut got, stride, &coeffs);
                        assert_eq!(got, want, "{what}");
                        let used = &wide[first * pitch..];
                        for pass in [vertical_scalar, vertical] {
                            let mut got = vec![1u8; rows.len() * stride];
                            pass(used, pitch, first, &mut got, stride, &coeffs);
                            assert_eq!(got, want, "{what} pitch {pitch}");
                        }
                    }
                }
            }
        }
    }
}
