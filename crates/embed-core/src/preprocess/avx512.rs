//! AVX-512 kernels, chosen at run time (x86-64 only).
//!
//! [`lookup_f32`] maps 8-bit values through a 256-entry `f32` table — the rescale and
//! normalisation step, whose values depend only on the byte — 64 values per step: the table
//! is held as 4 byte planes (byte `b` of every entry), each plane in four 64-byte registers,
//! and `vpermi2b` (AVX-512 VBMI) looks up 64 bytes of a plane at once. The four looked-up
//! planes are then interleaved back into 64 `f32`. A table lookup is exact by construction:
//! the bytes are those of the scalar table.
//!
//! [`horizontal_gather`] is the horizontal resampling pass without a transpose: 16 output
//! pixels of one row and channel are 16 lanes (8 or 4 for larger downscales), each lane's taps
//! are gathered from a 128-byte window of the interleaved RGB row with one `vpermi2b` per 4
//! taps, and `vpdpbusd` (AVX-512 VNNI) multiplies 4 pixels by 4 weight bytes and adds them
//! into the lane's sum. PIL's 22-bit weights are split into three signed bytes
//! (`w = d2·2¹⁶ + d1·2⁸ + d0`), so a sum is `2¹⁶ Σ p·d2 + 2⁸ Σ p·d1 + Σ p·d0`: integers,
//! exact, equal to the scalar kernel's.

use std::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_mask_blend_epi8,
    _mm512_mask_cvtusepi32_storeu_epi8, _mm512_mask_storeu_epi32, _mm512_maskz_loadu_epi8,
    _mm512_max_epi32, _mm512_movepi8_mask, _mm512_permutex2var_epi8, _mm512_permutexvar_epi8,
    _mm512_set1_epi32, _mm512_setzero_si512, _mm512_slli_epi32, _mm512_srai_epi32,
    _mm512_unpackhi_epi8, _mm512_unpackhi_epi16, _mm512_unpacklo_epi8, _mm512_unpacklo_epi16,
};

use std::ops::Range;

use super::coeffs::Coeffs;

/// A 256-entry `f32` table as 4 byte planes in 64-byte quarters: `planes[b][v / 64][v % 64]`
/// is byte `b` (little-endian) of entry `v`.
pub(super) type BytePlanes = [[[u8; 64]; 4]; 4];

/// The byte planes of `table`.
pub(super) fn byte_planes(table: &[f32; 256]) -> BytePlanes {
    let mut planes = [[[0u8; 64]; 4]; 4];
    for (v, x) in table.iter().enumerate() {
        for (b, byte) in x.to_le_bytes().into_iter().enumerate() {
            planes[b][v / 64][v % 64] = byte;
        }
    }
    planes
}

/// Whether the CPU runs [`lookup_f32`].
pub(super) fn have_lookup() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// `dst[i] = table[src[i]]` for `i < min(src.len(), dst.len())`, `planes` being
/// [`byte_planes`] of `table`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(super) fn lookup_f32(src: &[u8], planes: &BytePlanes, dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    let quarters: [[__m512i; 4]; 4] =
        std::array::from_fn(|b| std::array::from_fn(|q| load64(&planes[b][q])));
    // Input byte order such that the interleaving below writes the values in order: position
    // 16L + 4k + i (128-bit lane L) takes value 16k + 4L + i.
    let order: [u8; 64] = std::array::from_fn(|p| {
        let (lane, k, i) = (p / 16, p % 16 / 4, p % 4);
        (16 * k + 4 * lane + i) as u8
    });
    let order = load64(&order);
    for (s, d) in src.chunks(64).zip(dst.chunks_mut(64)) {
        let len = s.len();
        let mask = if len == 64 {
            u64::MAX
        } else {
            (1u64 << len) - 1
        };
        // SAFETY: the mask covers the `len` bytes of `s`; masked-off bytes are not read.
        let x = unsafe { _mm512_maskz_loadu_epi8(mask, s.as_ptr().cast()) };
        let x = _mm512_permutexvar_epi8(order, x);
        // Entries 0..128 come from the first two quarters, 128..256 from the last two.
        let high = _mm512_movepi8_mask(x);
        let p: [__m512i; 4] = std::array::from_fn(|b| {
            let [q0, q1, q2, q3] = quarters[b];
            let lo = _mm512_permutex2var_epi8(q0, x, q1);
            let hi = _mm512_permutex2var_epi8(q2, x, q3);
            _mm512_mask_blend_epi8(high, lo, hi)
        });
        let (b01l, b01h) = (
            _mm512_unpacklo_epi8(p[0], p[1]),
            _mm512_unpackhi_epi8(p[0], p[1]),
        );
        let (b23l, b23h) = (
            _mm512_unpacklo_epi8(p[2], p[3]),
            _mm512_unpackhi_epi8(p[2], p[3]),
        );
        let values = [
            _mm512_unpacklo_epi16(b01l, b23l),
            _mm512_unpackhi_epi16(b01l, b23l),
            _mm512_unpacklo_epi16(b01h, b23h),
            _mm512_unpackhi_epi16(b01h, b23h),
        ];
        for (k, v) in values.into_iter().enumerate() {
            let here = len.saturating_sub(16 * k).min(16);
            if here == 0 {
                break;
            }
            let mask = ((1u32 << here) - 1) as u16;
            // SAFETY: the mask covers values 16k..16k + here of `d`, all within it.
            unsafe { _mm512_mask_storeu_epi32(d[16 * k..].as_mut_ptr().cast(), mask, v) };
        }
    }
}

/// Output pixels per group of [`horizontal_gather`]: the 16 lanes of a 512-bit vector of
/// `i32`, or 8 or 4 of them where the taps of 16 outputs do not fit one window.
const LANES: [usize; 3] = [16, 8, 4];

/// Bytes of the window a group's taps are gathered from (two 512-bit registers).
const WINDOW: usize = 128;

/// [`Coeffs`] in the form [`horizontal_gather`] reads: per group of output pixels, per 4
/// taps, the byte indices into the group's window for each channel and the weights' three
/// signed bytes. `None` from [`GatherCoeffs::new`] where the filter does not fit (more than 16
/// taps — a downscale by more than 4× with PIL's bicubic — taps of 4 outputs spanning more
/// than the window, or a weight of 2²³ or more); the other kernels handle those.
pub(super) struct GatherCoeffs {
    /// Taps per output, in fours (the same for every output; shorter windows get zero weights).
    quads: usize,
    /// Output pixels per group (16, 8 or 4; the other lanes have zero weights).
    lanes: usize,
    /// Output pixels.
    out_w: usize,
    /// Per group: its first input pixel (the window starts at its first byte).
    first: Vec<usize>,
    /// Per group, per quad: indices for R, G, B, then weight bytes d0, d1, d2.
    vectors: Vec<[u8; 64]>,
}

impl GatherCoeffs {
    pub(super) fn new(c: &Coeffs) -> Option<Self> {
        LANES.iter().find_map(|&lanes| Self::with_lanes(c, lanes))
    }

    fn with_lanes(c: &Coeffs, lanes: usize) -> Option<Self> {
        let out_w = c.bounds.len();
        let max_taps = c.bounds.iter().map(|b| b.1).max()?;
        let quads = max_taps.div_ceil(4);
        if !(1..=MAX_QUADS).contains(&quads) {
            return None;
        }
        let groups = out_w.div_ceil(lanes);
        let mut first = Vec::with_capacity(groups);
        let mut vectors = vec![[0u8; 64]; groups * quads * 6];
        for g in 0..groups {
            let outs = g * lanes..(g * lanes + lanes).min(out_w);
            let s0 = c.bounds[outs.start].0;
            first.push(s0);
            let v = &mut vectors[g * quads * 6..(g + 1) * quads * 6];
            for (lane, o) in outs.enumerate() {
                let (start, taps) = c.taps(o);
                // Windows start in order, so `start >= s0`.
                let rel = start.checked_sub(s0)?;
                for t in 0..quads * 4 {
                    let (q, j) = (t / 4, t % 4);
                    let byte = 4 * lane + j;
                    let w = taps.get(t).copied().unwrap_or(0);
                    for ch in 0..3 {
                        // Zero-weight padding taps may point anywhere in the window.
                        let idx = if t < taps.len() {
                            3 * (rel + t) + ch
                        } else {
                            ch
                        };
                        if idx >= WINDOW {
                            return None;
                        }
                        v[q * 6 + ch][byte] = idx as u8;
                    }
                    let d0 = w as i8;
                    let w1 = (w - i32::from(d0)) >> 8;
                    let d1 = w1 as i8;
                    let d2 = i8::try_from((w1 - i32::from(d1)) >> 8).ok()?;
                    for (d, digit) in [d0, d1, d2].into_iter().enumerate() {
                        v[q * 6 + 3 + d][byte] = digit as u8;
                    }
                }
            }
        }
        Some(Self {
            quads,
            lanes,
            out_w,
            first,
            vectors,
        })
    }
}

#[cfg(test)]
impl GatherCoeffs {
    /// Output pixels per group.
    pub(super) fn lanes(&self) -> usize {
        self.lanes
    }
}

/// The largest number of quads (taps / 4) [`horizontal_gather`] has a loop for.
const MAX_QUADS: usize = 4;

/// Whether the CPU runs [`horizontal_gather`].
pub(super) fn have_gather() -> bool {
    have_lookup() && std::arch::is_x86_feature_detected!("avx512vnni")
}

/// The horizontal pass of `rows` of `src` (interleaved RGB, `in_w` pixels a row) into `temp`
/// (one row-planar row per input row), as [`super::scalar`]'s kernel computes it.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
pub(super) fn horizontal_gather(
    src: &[u8],
    in_w: usize,
    rows: Range<usize>,
    temp: &mut [u8],
    g: &GatherCoeffs,
) {
    match g.quads {
        1 => gather_rows::<1>(src, in_w, rows, temp, g),
        2 => gather_rows::<2>(src, in_w, rows, temp, g),
        3 => gather_rows::<3>(src, in_w, rows, temp, g),
        _ => gather_rows::<MAX_QUADS>(src, in_w, rows, temp, g),
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
fn gather_rows<const Q: usize>(
    src: &[u8],
    in_w: usize,
    rows: Range<usize>,
    temp: &mut [u8],
    g: &GatherCoeffs,
) {
    let stride = g.out_w * 3;
    let row_bytes = in_w * 3;
    // A few rows at a time through all groups: the source is read left to right in a few
    // rows (prefetcher-friendly when the image is not in cache), and each group's constants
    // are loaded once a block.
    for block in rows.clone().step_by(ROW_BLOCK) {
        let block = block..(block + ROW_BLOCK).min(rows.end);
        for (gi, &s0) in g.first.iter().enumerate() {
            let ox = gi * g.lanes;
            let lanes = (g.out_w - ox).min(g.lanes);
            let store_mask = (((1u32 << lanes) - 1) & 0xFFFF) as u16;
            let v = &g.vectors[gi * Q * 6..(gi + 1) * Q * 6];
            // Loop invariants of the row loop, in registers: Q × (3 index + 3 weight) vectors.
            let idx: [[__m512i; 3]; Q] =
                std::array::from_fn(|q| std::array::from_fn(|c| load64(&v[q * 6 + c])));
            let wts: [[__m512i; 3]; Q] =
                std::array::from_fn(|q| std::array::from_fn(|d| load64(&v[q * 6 + 3 + d])));
            for r in block.clone() {
                let (w0, w1) = load_window(src, r * row_bytes + 3 * s0);
                // `c` picks the index vectors and the output plane alike.
                #[allow(clippy::needless_range_loop)]
                for c in 0..3 {
                    let mut a0 = _mm512_set1_epi32(super::coeffs::ROUND);
                    let mut a1 = _mm512_setzero_si512();
                    let mut a2 = _mm512_setzero_si512();
                    for q in 0..Q {
                        let px = _mm512_permutex2var_epi8(w0, idx[q][c], w1);
                        a0 = _mm512_dpbusd_epi32(a0, px, wts[q][0]);
                        a1 = _mm512_dpbusd_epi32(a1, px, wts[q][1]);
                        a2 = _mm512_dpbusd_epi32(a2, px, wts[q][2]);
                    }
                    let acc = _mm512_add_epi32(
                        _mm512_add_epi32(a0, _mm512_slli_epi32::<8>(a1)),
                        _mm512_slli_epi32::<16>(a2),
                    );
                    let out = _mm512_max_epi32(
                        _mm512_srai_epi32::<{ super::coeffs::PRECISION_BITS }>(acc),
                        _mm512_setzero_si512(),
                    );
                    let o = (r - rows.start) * stride + c * g.out_w + ox;
                    let dst = &mut temp[o..o + lanes];
                    // SAFETY: the mask covers `lanes` bytes, all of `dst`; the unsigned
                    // saturating narrowing clamps to 255 (negatives were raised to 0 above).
                    unsafe {
                        _mm512_mask_cvtusepi32_storeu_epi8(dst.as_mut_ptr().cast(), store_mask, out)
                    };
                }
            }
        }
    }
}

/// Rows [`horizontal_gather`] takes through all groups before moving on.
const ROW_BLOCK: usize = 4;

/// 64 bytes as a vector.
#[inline]
#[target_feature(enable = "avx512f")]
fn load64(bytes: &[u8; 64]) -> __m512i {
    // SAFETY: 64 bytes, what the load reads.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}

/// The 128 bytes of `src` from `off`, as two registers; bytes past the end of `src` are zero.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn load_window(src: &[u8], off: usize) -> (__m512i, __m512i) {
    match src.get(off..off + WINDOW) {
        Some(w) => {
            // SAFETY: `w` is 128 bytes; the loads read bytes 0..64 and 64..128.
            unsafe {
                (
                    _mm512_loadu_si512(w.as_ptr().cast()),
                    _mm512_loadu_si512(w[64..].as_ptr().cast()),
                )
            }
        }
        None => {
            let rest = src.get(off..).unwrap_or(&[]);
            let half = |from: usize| {
                let n = rest.len().saturating_sub(from).min(64);
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                // SAFETY: the mask covers the `n` bytes of `rest` from `from`; masked-off
                // bytes are not read.
                unsafe { _mm512_maskz_loadu_epi8(mask, rest.as_ptr().wrapping_add(from).cast()) }
            };
            (half(0), half(64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_equals_the_table() {
        if !have_lookup() {
            eprintln!("no AVX-512 VBMI on this CPU: lookup_f32 not tested");
            return;
        }
        // Distinct bit patterns in every byte, NaN and negative zero included.
        let table: [f32; 256] = std::array::from_fn(|v| match v {
            0 => -0.0,
            1 => f32::NAN,
            _ => f32::from_bits((v as u32).wrapping_mul(0x9E37_79B9) ^ 0x0102_0304),
        });
        let planes = byte_planes(&table);
        let src: Vec<u8> = (0..1000u32).map(|i| (i * 97 + i / 256) as u8).collect();
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 224, 255, 256, 1000] {
            for start in [0, 1, 5] {
                let s = &src[start..(start + len).min(src.len())];
                let mut got = vec![7.5f32; s.len() + 3];
                // SAFETY: `have_lookup` said the CPU has the features.
                unsafe { lookup_f32(s, &planes, &mut got) };
                for (i, &v) in s.iter().enumerate() {
                    assert_eq!(
                        got[i].to_bits(),
                        table[usize::from(v)].to_bits(),
                        "len {len} start {start} index {i}"
                    );
                }
                assert!(
                    got[s.len()..].iter().all(|&x| x == 7.5),
                    "wrote past the end"
                );
            }
        }
    }
}
