//! AVX2 kernels of the resize passes, chosen at run time (x86-64 only).
//!
//! The horizontal pass's taps run along a row of 3-byte pixels, which vectorises badly. Here a
//! strip of 8 rows is transposed first (8×8 blocks of RGBX `u32` pixels), so that one input
//! column becomes one 32-byte vector: R of the 8 rows, G, B (and an unused X). Each output
//! column is then a sum of whole vectors times a broadcast weight, as in the vertical pass, and
//! 8 output columns are transposed back to rows in registers, channel by channel. Sums of
//! integers are exact, so the result is the scalar kernel's (and PIL's) bit for bit whatever
//! the order; `kernels::tests` checks it on random inputs.

use std::arch::x86_64::{
    __m256i, _mm_loadl_epi64, _mm_loadu_si128, _mm_setr_epi8, _mm_shuffle_epi8, _mm256_add_epi32,
    _mm256_cvtepu8_epi32, _mm256_mullo_epi32, _mm256_packus_epi16, _mm256_packus_epi32,
    _mm256_permute2x128_si256, _mm256_permutevar8x32_epi32, _mm256_set_m128i, _mm256_set1_epi32,
    _mm256_setr_epi8, _mm256_setr_epi32, _mm256_setzero_si256, _mm256_shuffle_epi8,
    _mm256_srai_epi32, _mm256_storeu_si256, _mm256_unpackhi_epi32, _mm256_unpackhi_epi64,
    _mm256_unpacklo_epi32, _mm256_unpacklo_epi64,
};
use std::ops::Range;

use super::coeffs::{Coeffs, PRECISION_BITS, ROUND, clip8};

/// Bytes of one transposed input column of a strip: 8 rows × RGBX, stored channel by channel.
const COL: usize = 32;

/// Horizontal pass of rows `rows` of `src` (interleaved RGB, `in_w` pixels a row) for the output
/// columns of `coeffs`, into `temp`: one row-planar row (R… G… B…) per input row. `t` is
/// scratch.
#[target_feature(enable = "avx2")]
pub(super) fn horizontal(
    src: &[u8],
    in_w: usize,
    rows: Range<usize>,
    temp: &mut [u8],
    coeffs: &Coeffs,
    t: &mut Vec<u8>,
) {
    let out_w = coeffs.bounds.len();
    let Some(x0) = coeffs.bounds.iter().map(|b| b.0).min() else {
        return;
    };
    let x1 = coeffs
        .bounds
        .iter()
        .map(|b| b.0 + b.1)
        .max()
        .unwrap_or(x0)
        .min(in_w);
    let blocks = (x1 - x0).div_ceil(8);
    // Every byte is written below before it is read.
    t.resize(blocks * 8 * COL, 0);
    let stride = out_w * 3;
    // Within a 128-bit lane: 4 × 4 bytes from "4 of one thing, 4 times" to the transpose
    // (pixels RGBX → channels; columns of 4 rows → rows of 4 columns).
    let by4 = _mm256_setr_epi8(
        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10,
        14, 3, 7, 11, 15,
    );
    let halves = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);

    for r0 in rows.clone().step_by(8) {
        // Transpose the strip's needed columns into `t`, each as R of rows 0..8, G, B, X.
        for (b, dst) in t.chunks_exact_mut(8 * COL).enumerate() {
            let x = x0 + b * 8;
            let mut v = [_mm256_setzero_si256(); 8];
            for (k, slot) in v.iter_mut().enumerate() {
                let r = r0 + k;
                if r < rows.end {
                    *slot = load_rgbx8(src, (r * in_w + x) * 3);
                }
            }
            for (col, chunk) in transpose8(v).iter().zip(dst.chunks_exact_mut(COL)) {
                let planar = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(*col, by4), halves);
                store32(chunk, planar);
            }
        }
        // Output columns, 8 at a time; per channel, an 8 × 8 byte transpose back to rows.
        for ox in (0..out_w).step_by(8) {
            let n = (out_w - ox).min(8);
            let mut sums = [[_mm256_setzero_si256(); 3]; 8];
            for (i, sum) in sums.iter_mut().enumerate().take(n) {
                let (start, taps) = coeffs.taps(ox + i);
                let base = (start - x0) * COL;
                *sum = weighted_sum3(&t[base..base + taps.len() * COL], taps);
            }
            // Indexing, not `sums.map(..)`: that copies all 768 bytes through memcpy per channel.
            #[allow(clippy::needless_range_loop)]
            for c in 0..3 {
                let x: [__m256i; 8] = std::array::from_fn(|i| sums[i][c]);
                // Lane halves: columns 0..4 (then 4..8), rows 0..4 | rows 4..8, column-major.
                let a = _mm256_packus_epi16(
                    _mm256_packus_epi32(x[0], x[1]),
                    _mm256_packus_epi32(x[2], x[3]),
                );
                let b = _mm256_packus_epi16(
                    _mm256_packus_epi32(x[4], x[5]),
                    _mm256_packus_epi32(x[6], x[7]),
                );
                let (a, b) = (_mm256_shuffle_epi8(a, by4), _mm256_shuffle_epi8(b, by4));
                // 8-byte rows (columns 0..8) in the order 0 1 4 5, then 2 3 6 7.
                let mut buf = [0u8; 64];
                let (lo, hi) = buf.split_at_mut(32);
                store32(lo, _mm256_unpacklo_epi32(a, b));
                store32(hi, _mm256_unpackhi_epi32(a, b));
                for (&k, row) in [0, 1, 4, 5, 2, 3, 6, 7].iter().zip(buf.chunks_exact(8)) {
                    let r = r0 + k;
                    if r < rows.end {
                        let o = (r - rows.start) * stride + c * out_w + ox;
                        let dst = &mut temp[o..o + n];
                        match <&mut [u8; 8]>::try_from(&mut *dst) {
                            // A fixed-size copy is one store; a variable one calls memcpy.
                            Ok(d) => d.copy_from_slice(row),
                            Err(_) => dst.copy_from_slice(&row[..n]),
                        }
                    }
                }
            }
        }
    }
}

/// [`weighted_sum`] for a transposed strip column (R, G, B of 8 rows; X ignored), one vector of
/// `acc >> 22` (8 rows, `i32`) per channel; the packs that follow clamp it to 8 bits.
#[inline]
#[target_feature(enable = "avx2")]
fn weighted_sum3(cols: &[u8], taps: &[i32]) -> [__m256i; 3] {
    let mut acc = [_mm256_set1_epi32(ROUND); 3];
    for (px, &w) in cols.chunks_exact(COL).zip(taps) {
        let w = _mm256_set1_epi32(w);
        for (q, a) in acc.iter_mut().enumerate() {
            let bytes = &px[q * 8..q * 8 + 8];
            // SAFETY: `bytes` is 8 bytes long, what `_mm_loadl_epi64` reads.
            let v = _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(bytes.as_ptr().cast()) });
            *a = _mm256_add_epi32(*a, _mm256_mullo_epi32(v, w));
        }
    }
    acc.map(|a| _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(a))
}

/// `Σ bytes × weight` over the taps, for 32 bytes side by side, rounded and clipped to 8 bits
/// like PIL's `clip8`. Tap `j`'s bytes are `lines[j * stride..][..32]`. The 4-byte groups of
/// the result come out in the order 0 2 4 6 1 3 5 7 (the packs interleave 128-bit halves).
#[inline]
#[target_feature(enable = "avx2")]
fn weighted_sum(lines: &[u8], stride: usize, taps: &[i32]) -> __m256i {
    let mut acc = [_mm256_set1_epi32(ROUND); 4];
    for (j, &w) in taps.iter().enumerate() {
        let px = &lines[j * stride..j * stride + 32];
        let w = _mm256_set1_epi32(w);
        for (q, a) in acc.iter_mut().enumerate() {
            let bytes = &px[q * 8..q * 8 + 8];
            // SAFETY: `bytes` is 8 bytes long, what `_mm_loadl_epi64` reads.
            let v = _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(bytes.as_ptr().cast()) });
            *a = _mm256_add_epi32(*a, _mm256_mullo_epi32(v, w));
        }
    }
    // `clip8` is `clamp(acc >> 22, 0, 255)`; the unsigned saturating packs do the clamp
    // (`acc >> 22` stays within ±512, so it never wraps in 16 bits).
    let [a0, a1, a2, a3] = acc.map(|a| _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(a));
    _mm256_packus_epi16(_mm256_packus_epi32(a0, a1), _mm256_packus_epi32(a2, a3))
}

/// Transposes an 8×8 matrix of `u32`.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
    let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    let u0 = _mm256_unpacklo_epi64(t0, t2);
    let u1 = _mm256_unpackhi_epi64(t0, t2);
    let u2 = _mm256_unpacklo_epi64(t1, t3);
    let u3 = _mm256_unpackhi_epi64(t1, t3);
    let u4 = _mm256_unpacklo_epi64(t4, t6);
    let u5 = _mm256_unpackhi_epi64(t4, t6);
    let u6 = _mm256_unpacklo_epi64(t5, t7);
    let u7 = _mm256_unpackhi_epi64(t5, t7);
    [
        _mm256_permute2x128_si256::<0x20>(u0, u4),
        _mm256_permute2x128_si256::<0x20>(u1, u5),
        _mm256_permute2x128_si256::<0x20>(u2, u6),
        _mm256_permute2x128_si256::<0x20>(u3, u7),
        _mm256_permute2x128_si256::<0x31>(u0, u4),
        _mm256_permute2x128_si256::<0x31>(u1, u5),
        _mm256_permute2x128_si256::<0x31>(u2, u6),
        _mm256_permute2x128_si256::<0x31>(u3, u7),
    ]
}

/// 8 RGB pixels at byte `off` of `src` as RGBX (X = 0). Pixels past the end of `src` are zero.
#[inline]
#[target_feature(enable = "avx2")]
fn load_rgbx8(src: &[u8], off: usize) -> __m256i {
    let mut padded = [0u8; 28];
    let bytes = match src.get(off..off + 28) {
        Some(b) => b,
        None => {
            let rest = src.get(off..).unwrap_or(&[]);
            let n = rest.len().min(24);
            padded[..n].copy_from_slice(&rest[..n]);
            &padded[..]
        }
    };
    // SAFETY: `bytes` holds 28 bytes; the loads read bytes 0..16 and 12..28.
    let (lo, hi) = unsafe {
        (
            _mm_loadu_si128(bytes.as_ptr().cast()),
            _mm_loadu_si128(bytes[12..].as_ptr().cast()),
        )
    };
    let spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    _mm256_set_m128i(_mm_shuffle_epi8(hi, spread), _mm_shuffle_epi8(lo, spread))
}

#[inline]
#[target_feature(enable = "avx2")]
fn store32(dst: &mut [u8], v: __m256i) {
    let dst: &mut [u8; 32] = match dst.try_into() {
        Ok(d) => d,
        Err(_) => return,
    };
    // SAFETY: `dst` is 32 bytes, what the store writes.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) };
}

/// Vertical pass: row `i` of `out` (rows of `stride` bytes, any layout) is the weighted sum of
/// rows of `src` (`pitch` bytes apart, the first one input row `first_row`; each row's first
/// `stride` bytes are read), 32 bytes at a time.
#[target_feature(enable = "avx2")]
pub(super) fn vertical(
    src: &[u8],
    pitch: usize,
    first_row: usize,
    out: &mut [u8],
    stride: usize,
    coeffs: &Coeffs,
) {
    // Puts the 4-byte groups of `weighted_sum` back in order.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let full = stride / 32 * 32;
    for (i, dst) in out.chunks_exact_mut(stride).enumerate() {
        let (start, taps) = coeffs.taps(i);
        let Some(last) = taps.len().checked_sub(1) else {
            dst.fill(clip8(ROUND));
            continue;
        };
        let base = (start - first_row) * pitch;
        let lines = &src[base..base + last * pitch + stride];
        for x in (0..full).step_by(32) {
            let v = _mm256_permutevar8x32_epi32(weighted_sum(&lines[x..], pitch, taps), order);
            store32(&mut dst[x..x + 32], v);
        }
        for (x, d) in dst.iter_mut().enumerate().skip(full) {
            let mut acc = ROUND;
            for (j, &w) in taps.iter().enumerate() {
                acc += i32::from(lines[j * pitch + x]) * w;
            }
            *d = clip8(acc);
        }
    }
}
