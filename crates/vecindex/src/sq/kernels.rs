//! Distances on scalar-quantised codes without decoding them to a buffer: the inner product of
//! a float weight vector with 8-bit codes (`Σ w[i] · c[i]`) or with half floats, for one query
//! or four at once (one code row loaded and converted once, four accumulating products: the
//! batched search's inner loop). AVX-512, AVX2 (+F16C for halves) or a portable loop, chosen
//! once per process like the float kernels ([`crate::kernels::simd_level`], capped by
//! `VECINDEX_SIMD`).

use std::sync::OnceLock;

/// `Σ w[i] · c[i]` over `c.len()` 8-bit codes (`w` at least as long).
pub type DotU8 = fn(&[f32], &[u8]) -> f32;
/// Four weight vectors against one code row.
pub type DotU8x4 = fn([&[f32]; 4], &[u8]) -> [f32; 4];
/// `Σ q[i] · h[i]` over the `c.len() / 2` little-endian halves in `c` (`q` at least as long).
pub type DotF16 = fn(&[f32], &[u8]) -> f32;
/// Four queries against one row of halves.
pub type DotF16x4 = fn([&[f32]; 4], &[u8]) -> [f32; 4];

/// One instruction set's kernels.
#[derive(Clone, Copy)]
pub(crate) struct SqKernels {
    pub(crate) name: &'static str,
    pub(crate) dot_u8: DotU8,
    pub(crate) dot_u8_x4: DotU8x4,
    pub(crate) dot_f16: DotF16,
    pub(crate) dot_f16_x4: DotF16x4,
}

const LANES: usize = 16;

fn reduce(acc: [f32; LANES]) -> f32 {
    let mut a = acc;
    let mut w = LANES / 2;
    while w > 0 {
        for i in 0..w {
            a[i] += a[i + w];
        }
        w /= 2;
    }
    a[0]
}

fn dot_u8_portable(w: &[f32], c: &[u8]) -> f32 {
    let w = &w[..c.len()];
    let mut acc = [0.0f32; LANES];
    let (cc, cw) = (c.chunks_exact(LANES), w.chunks_exact(LANES));
    let (rc, rw) = (cc.remainder(), cw.remainder());
    for (x, y) in cc.zip(cw) {
        for i in 0..LANES {
            acc[i] += x[i] as f32 * y[i];
        }
    }
    let tail: f32 = rc.iter().zip(rw).map(|(x, y)| *x as f32 * y).sum();
    reduce(acc) + tail
}

fn dot_u8_x4_portable(w: [&[f32]; 4], c: &[u8]) -> [f32; 4] {
    w.map(|w| dot_u8_portable(w, c))
}

fn half(c: &[u8], i: usize) -> f32 {
    super::codec::f16_to_f32(u16::from_le_bytes([c[2 * i], c[2 * i + 1]]))
}

fn dot_f16_portable(q: &[f32], c: &[u8]) -> f32 {
    let n = c.len() / 2;
    let q = &q[..n];
    let mut acc = [0.0f32; LANES];
    let mut i = 0;
    while i + LANES <= n {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += q[i + l] * half(c, i + l);
        }
        i += LANES;
    }
    let tail: f32 = (i..n).map(|j| q[j] * half(c, j)).sum();
    reduce(acc) + tail
}

fn dot_f16_x4_portable(q: [&[f32]; 4], c: &[u8]) -> [f32; 4] {
    q.map(|q| dot_f16_portable(q, c))
}

const PORTABLE: SqKernels = SqKernels {
    name: "portable",
    dot_u8: dot_u8_portable,
    dot_u8_x4: dot_u8_x4_portable,
    dot_f16: dot_f16_portable,
    dot_f16_x4: dot_f16_x4_portable,
};

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! Each kernel walks the row in steps of two vectors (two independent accumulators per
    //! query, eight in the four-query kernels, to cover the FMA latency), then single vectors,
    //! then a scalar tail.
    use std::arch::x86_64::*;

    use super::{SqKernels, half};

    #[target_feature(enable = "avx512f")]
    fn hsum512(v: __m512) -> f32 {
        _mm512_reduce_add_ps(v)
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum256(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Generates a one-query and a four-query kernel for one instruction set.
    /// `$load(ptr, i)` loads `$w` code values at element `i` as floats; `$one(c, i)` decodes
    /// element `i` for the tail.
    macro_rules! kernels {
        ($feat:literal, $one_name:ident, $four_name:ident, $vt:ty, $w:expr, $zero:expr,
         $fma:ident, $loadf:ident, $add:ident, $hsum:ident, $bytes:expr, $load:expr, $one:expr) => {
            #[target_feature(enable = $feat)]
            fn $one_name(q: &[f32], c: &[u8]) -> f32 {
                let n = (c.len() / $bytes).min(q.len());
                let (pq, pc) = (q.as_ptr(), c.as_ptr());
                let mut a0: $vt = $zero;
                let mut a1: $vt = $zero;
                let mut i = 0;
                // SAFETY (all loads): `i + 2 * W <= n` or `i + W <= n`; `q` holds at least
                // `n` floats and `c` at least `n * bytes` bytes.
                unsafe {
                    while i + 2 * $w <= n {
                        a0 = $fma($load(pc, i), $loadf(pq.add(i)), a0);
                        a1 = $fma($load(pc, i + $w), $loadf(pq.add(i + $w)), a1);
                        i += 2 * $w;
                    }
                    while i + $w <= n {
                        a0 = $fma($load(pc, i), $loadf(pq.add(i)), a0);
                        i += $w;
                    }
                }
                let mut tail = 0.0f32;
                for j in i..n {
                    tail += q[j] * $one(c, j);
                }
                $hsum($add(a0, a1)) + tail
            }

            #[target_feature(enable = $feat)]
            fn $four_name(q: [&[f32]; 4], c: &[u8]) -> [f32; 4] {
                let n = q.iter().fold(c.len() / $bytes, |n, q| n.min(q.len()));
                let pc = c.as_ptr();
                let p = q.map(|q| q.as_ptr());
                let mut a: [$vt; 8] = [$zero; 8];
                let mut i = 0;
                // SAFETY: as in the one-query kernel, for each of the four queries.
                unsafe {
                    while i + 2 * $w <= n {
                        let x0 = $load(pc, i);
                        let x1 = $load(pc, i + $w);
                        for j in 0..4 {
                            a[j] = $fma(x0, $loadf(p[j].add(i)), a[j]);
                            a[4 + j] = $fma(x1, $loadf(p[j].add(i + $w)), a[4 + j]);
                        }
                        i += 2 * $w;
                    }
                    while i + $w <= n {
                        let x0 = $load(pc, i);
                        for j in 0..4 {
                            a[j] = $fma(x0, $loadf(p[j].add(i)), a[j]);
                        }
                        i += $w;
                    }
                }
                let mut out = [0.0f32; 4];
                for j in 0..4 {
                    let mut tail = 0.0f32;
                    for e in i..n {
                        tail += q[j][e] * $one(c, e);
                    }
                    out[j] = $hsum($add(a[j], a[4 + j])) + tail;
                }
                out
            }
        };
    }

    #[inline(always)]
    unsafe fn u8x16(p: *const u8, i: usize) -> __m512 {
        // SAFETY: the caller guarantees 16 readable bytes at `p + i`.
        unsafe { _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(p.add(i).cast()))) }
    }
    #[inline(always)]
    unsafe fn f16x16(p: *const u8, i: usize) -> __m512 {
        // SAFETY: the caller guarantees 32 readable bytes at `p + 2i`.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.add(2 * i).cast())) }
    }
    #[inline(always)]
    unsafe fn u8x8(p: *const u8, i: usize) -> __m256 {
        // SAFETY: the caller guarantees 8 readable bytes at `p + i`.
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(i).cast()))) }
    }
    #[inline(always)]
    unsafe fn f16x8(p: *const u8, i: usize) -> __m256 {
        // SAFETY: the caller guarantees 16 readable bytes at `p + 2i`.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.add(2 * i).cast())) }
    }

    fn u8_at(c: &[u8], i: usize) -> f32 {
        c[i] as f32
    }

    kernels!(
        "avx512f",
        dot_u8_avx512,
        dot_u8_x4_avx512,
        __m512,
        16,
        _mm512_setzero_ps(),
        _mm512_fmadd_ps,
        _mm512_loadu_ps,
        _mm512_add_ps,
        hsum512,
        1,
        u8x16,
        u8_at
    );
    kernels!(
        "avx512f",
        dot_f16_avx512,
        dot_f16_x4_avx512,
        __m512,
        16,
        _mm512_setzero_ps(),
        _mm512_fmadd_ps,
        _mm512_loadu_ps,
        _mm512_add_ps,
        hsum512,
        2,
        f16x16,
        half
    );
    kernels!(
        "avx2,fma",
        dot_u8_avx2,
        dot_u8_x4_avx2,
        __m256,
        8,
        _mm256_setzero_ps(),
        _mm256_fmadd_ps,
        _mm256_loadu_ps,
        _mm256_add_ps,
        hsum256,
        1,
        u8x8,
        u8_at
    );
    kernels!(
        "avx2,fma,f16c",
        dot_f16_avx2,
        dot_f16_x4_avx2,
        __m256,
        8,
        _mm256_setzero_ps(),
        _mm256_fmadd_ps,
        _mm256_loadu_ps,
        _mm256_add_ps,
        hsum256,
        2,
        f16x8,
        half
    );

    /// The kernels for the instruction set the float kernels run with (`level`).
    pub(super) fn pick(level: &str) -> Option<SqKernels> {
        // SAFETY (every call below): the CPU has the features these functions are compiled
        // for, detected just before.
        if level == "avx512" && is_x86_feature_detected!("avx512f") {
            return Some(SqKernels {
                name: "avx512",
                dot_u8: |w, c| unsafe { dot_u8_avx512(w, c) },
                dot_u8_x4: |w, c| unsafe { dot_u8_x4_avx512(w, c) },
                dot_f16: |w, c| unsafe { dot_f16_avx512(w, c) },
                dot_f16_x4: |w, c| unsafe { dot_f16_x4_avx512(w, c) },
            });
        }
        if (level == "avx512" || level == "avx2")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            let f16c = is_x86_feature_detected!("f16c");
            return Some(SqKernels {
                name: "avx2",
                dot_u8: |w, c| unsafe { dot_u8_avx2(w, c) },
                dot_u8_x4: |w, c| unsafe { dot_u8_x4_avx2(w, c) },
                dot_f16: if f16c {
                    |w, c| unsafe { dot_f16_avx2(w, c) }
                } else {
                    super::dot_f16_portable
                },
                dot_f16_x4: if f16c {
                    |w, c| unsafe { dot_f16_x4_avx2(w, c) }
                } else {
                    super::dot_f16_x4_portable
                },
            });
        }
        None
    }

    /// Every kernel set this CPU runs, for tests.
    #[cfg(test)]
    pub(super) fn all() -> Vec<SqKernels> {
        pick("avx512").into_iter().chain(pick("avx2")).collect()
    }
}

/// The kernels chosen for this process.
pub(crate) fn sq_kernels() -> &'static SqKernels {
    static K: OnceLock<SqKernels> = OnceLock::new();
    K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = x86::pick(crate::kernels::simd_level()) {
            return k;
        }
        PORTABLE
    })
}

/// The instruction set the code kernels run with: `"avx512"`, `"avx2"` or `"portable"`.
pub fn sq_simd_level() -> &'static str {
    sq_kernels().name
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sets() -> Vec<SqKernels> {
        #[allow(unused_mut)]
        let mut v = vec![PORTABLE];
        #[cfg(target_arch = "x86_64")]
        v.extend(x86::all());
        v
    }

    /// Every kernel set gives the f64 sums at every length across the vector widths, for one
    /// and four queries.
    #[test]
    fn code_kernels_match_f64_sums() {
        for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 100, 768] {
            let c: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let h: Vec<u8> = (0..n)
                .flat_map(|i| {
                    super::super::codec::f32_to_f16((i as f32 - 40.0) / 7.0).to_le_bytes()
                })
                .collect();
            let w: Vec<Vec<f32>> = (0..4)
                .map(|j| {
                    (0..n)
                        .map(|i| ((i * 7 + j * 3) % 13) as f32 / 13.0 - 0.4)
                        .collect()
                })
                .collect();
            let want_u8 =
                |w: &[f32]| -> f64 { w.iter().zip(&c).map(|(a, b)| *a as f64 * *b as f64).sum() };
            let want_f16 = |w: &[f32]| -> f64 {
                w.iter()
                    .enumerate()
                    .map(|(i, a)| *a as f64 * half(&h, i) as f64)
                    .sum()
            };
            for k in sets() {
                let ws = [&w[0][..], &w[1], &w[2], &w[3]];
                let four = (k.dot_u8_x4)(ws, &c);
                let four_h = (k.dot_f16_x4)(ws, &h);
                for j in 0..4 {
                    let (u, f) = (want_u8(&w[j]), want_f16(&w[j]));
                    let tol = 1e-3 * (1.0 + u.abs());
                    assert!(
                        ((k.dot_u8)(&w[j], &c) as f64 - u).abs() < tol,
                        "{} u8 n={n}",
                        k.name
                    );
                    assert!((four[j] as f64 - u).abs() < tol, "{} u8x4 n={n}", k.name);
                    let tol = 1e-3 * (1.0 + f.abs());
                    assert!(
                        ((k.dot_f16)(&w[j], &h) as f64 - f).abs() < tol,
                        "{} f16 n={n}",
                        k.name
                    );
                    assert!((four_h[j] as f64 - f).abs() < tol, "{} f16x4 n={n}", k.name);
                }
            }
        }
    }
}
