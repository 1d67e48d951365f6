//! The resize passes' inner loops in portable Rust: the reference every SIMD kernel
//! ([`super::avx2`], [`super::avx512`]) must equal byte for byte, and what runs on CPUs without
//! them.

use std::ops::Range;

use super::coeffs::{Coeffs, ROUND, clip8};

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
/// sum of rows of `src` (`pitch` bytes apart, the first one input row `first_row`; each
/// row's first `stride` bytes are read).
pub(super) fn vertical_scalar(
    src: &[u8],
    pitch: usize,
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
            let line = &src[row * pitch..row * pitch + stride];
            for (a, &p) in acc.iter_mut().zip(line) {
                *a += i32::from(p) * w;
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
}
