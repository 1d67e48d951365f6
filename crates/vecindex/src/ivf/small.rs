//! Sub-vector kernels of the product quantiser: a short vector (`dsub` floats) against the
//! 256 centroids of one sub-quantiser, held transposed (`ct[t * 256 + j]` = coordinate `t` of
//! centroid `j`), so each step is one multiply-add across all 256 centroids. The inner
//! products are plain loops compiled three times (AVX-512, AVX2+FMA, baseline; fused
//! multiply-adds only where the CPU has them) for the compiler to vectorise; the nearest
//! centroid is written out in intrinsics for AVX-512 and AVX2, with the plain loop as the
//! baseline and the reference of the tests. The variant the float kernels use
//! ([`crate::kernels::simd_level`]) is picked once.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::pq::KSUB;

/// `out[j] = Σ_t x[t] · ct[t * 256 + j]`.
#[inline(always)]
fn ip_body<const FMA: bool>(x: &[f32], ct: &[f32], out: &mut [f32; KSUB]) {
    *out = [0.0; KSUB];
    for (t, &xt) in x.iter().enumerate() {
        let row: &[f32; KSUB] = match ct[t * KSUB..(t + 1) * KSUB].try_into() {
            Ok(r) => r,
            Err(_) => return,
        };
        for j in 0..KSUB {
            out[j] = if FMA {
                xt.mul_add(row[j], out[j])
            } else {
                out[j] + xt * row[j]
            };
        }
    }
}

/// The nearest centroid by L2 (`cn` = squared centroid norms) and its squared distance less
/// `|x|²` (which does not change the choice).
#[inline(always)]
fn nearest_body<const FMA: bool>(x: &[f32], ct: &[f32], cn: &[f32; KSUB]) -> (u32, f32) {
    let mut acc = *cn;
    for (t, &xt) in x.iter().enumerate() {
        let row: &[f32; KSUB] = match ct[t * KSUB..(t + 1) * KSUB].try_into() {
            Ok(r) => r,
            Err(_) => break,
        };
        let m2 = -2.0 * xt;
        for j in 0..KSUB {
            acc[j] = if FMA {
                m2.mul_add(row[j], acc[j])
            } else {
                acc[j] + m2 * row[j]
            };
        }
    }
    // Arg-min in 16 lanes (vectorised compares and blends), then across the lanes: the
    // smallest value, the first index among equals.
    const L: usize = 16;
    let mut vals = [f32::INFINITY; L];
    let mut idx = [0u32; L];
    for (c, chunk) in acc.chunks_exact(L).enumerate() {
        for l in 0..L {
            if chunk[l] < vals[l] {
                vals[l] = chunk[l];
                idx[l] = (c * L + l) as u32;
            }
        }
    }
    let mut best = (0u32, f32::INFINITY);
    for l in 0..L {
        if vals[l] < best.1 || (vals[l] == best.1 && idx[l] < best.0) {
            best = (idx[l], vals[l]);
        }
    }
    best
}

type IpFn = fn(&[f32], &[f32], &mut [f32; KSUB]);
type NearestFn = fn(&[f32], &[f32], &[f32; KSUB]) -> (u32, f32);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::*;

    #[target_feature(enable = "avx512f")]
    fn ip_avx512(x: &[f32], ct: &[f32], out: &mut [f32; KSUB]) {
        ip_body::<true>(x, ct, out)
    }
    /// [`nearest_body`] written out: the 256 distances stay in 16 registers, their minimum is
    /// a tree of 15 `min`s and one reduction, and the index the first lane equal to it. The
    /// generic body keeps per-lane minima and indices and ends in 16 scalar steps: at a
    /// `dsub` of 8 that bookkeeping cost more than the distances.
    #[target_feature(enable = "avx512f")]
    fn nearest_avx512(x: &[f32], ct: &[f32], cn: &[f32; KSUB]) -> (u32, f32) {
        const V: usize = 16;
        let load = |v: &[f32]| -> __m512 {
            let v: &[f32; V] = v.try_into().unwrap_or(&[f32::INFINITY; V]);
            // SAFETY: `v` is 16 readable floats.
            unsafe { _mm512_loadu_ps(v.as_ptr()) }
        };
        let mut acc: [__m512; KSUB / V] = std::array::from_fn(|c| load(&cn[c * V..(c + 1) * V]));
        for (t, &xt) in x.iter().enumerate() {
            let Some(row) = ct.get(t * KSUB..(t + 1) * KSUB) else {
                break;
            };
            let m2 = _mm512_set1_ps(-2.0 * xt);
            for (c, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(m2, load(&row[c * V..(c + 1) * V]), *a);
            }
        }
        // A NaN distance never wins (as in the generic body): it becomes +∞.
        let inf = _mm512_set1_ps(f32::INFINITY);
        for a in &mut acc {
            *a = _mm512_mask_mov_ps(*a, _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(*a, *a), inf);
        }
        let mut level = acc;
        let mut width = KSUB / V;
        while width > 1 {
            width /= 2;
            for c in 0..width {
                level[c] = _mm512_min_ps(level[c], level[c + width]);
            }
        }
        let best = _mm512_reduce_min_ps(level[0]);
        if best == f32::INFINITY {
            return (0, f32::INFINITY);
        }
        let best_v = _mm512_set1_ps(best);
        for (c, a) in acc.iter().enumerate() {
            let hit = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(*a, best_v);
            if hit != 0 {
                return ((c * V) as u32 + hit.trailing_zeros(), best);
            }
        }
        (0, f32::INFINITY)
    }
    #[target_feature(enable = "avx2,fma")]
    fn ip_avx2(x: &[f32], ct: &[f32], out: &mut [f32; KSUB]) {
        ip_body::<true>(x, ct, out)
    }
    /// [`nearest_avx512`] for 16 registers of 8 lanes: 256 distances would not fit, so the
    /// centroids go in four passes of 64 (8 accumulators each), whose distances are kept in
    /// memory for the index search after the minimum.
    #[target_feature(enable = "avx2,fma")]
    fn nearest_avx2(x: &[f32], ct: &[f32], cn: &[f32; KSUB]) -> (u32, f32) {
        const V: usize = 8;
        const PASS: usize = 64;
        let load = |v: &[f32]| -> __m256 {
            let v: &[f32; V] = v.try_into().unwrap_or(&[f32::INFINITY; V]);
            // SAFETY: `v` is 8 readable floats.
            unsafe { _mm256_loadu_ps(v.as_ptr()) }
        };
        let inf = _mm256_set1_ps(f32::INFINITY);
        let mut dist = [f32::INFINITY; KSUB];
        let mut mins = inf;
        for (p, pass_dist) in dist.chunks_exact_mut(PASS).enumerate() {
            let first = p * PASS;
            let mut acc: [__m256; PASS / V] =
                std::array::from_fn(|c| load(&cn[first + c * V..first + (c + 1) * V]));
            for (t, &xt) in x.iter().enumerate() {
                let Some(row) = ct.get(t * KSUB + first..t * KSUB + first + PASS) else {
                    break;
                };
                let m2 = _mm256_set1_ps(-2.0 * xt);
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(m2, load(&row[c * V..(c + 1) * V]), *a);
                }
            }
            for (a, out) in acc.iter().zip(pass_dist.chunks_exact_mut(V)) {
                // A NaN distance never wins (as in the generic body): it becomes +∞.
                let a = _mm256_blendv_ps(*a, inf, _mm256_cmp_ps::<_CMP_UNORD_Q>(*a, *a));
                mins = _mm256_min_ps(mins, a);
                let out: &mut [f32; V] = match out.try_into() {
                    Ok(o) => o,
                    Err(_) => continue,
                };
                // SAFETY: `out` is 8 writable floats.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), a) };
            }
        }
        let mut lanes = [f32::INFINITY; V];
        // SAFETY: `lanes` is 8 writable floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mins) };
        let best = lanes.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        if best == f32::INFINITY {
            return (0, f32::INFINITY);
        }
        let best_v = _mm256_set1_ps(best);
        for (c, d) in dist.chunks_exact(V).enumerate() {
            let hit = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(load(d), best_v));
            if hit != 0 {
                return ((c * V) as u32 + hit.trailing_zeros(), best);
            }
        }
        (0, f32::INFINITY)
    }

    /// Every nearest-of-256 kernel this CPU can run, by name, for the tests to hold against
    /// the generic body.
    #[cfg(test)]
    pub(super) fn nearest_variants() -> Vec<(&'static str, NearestFn)> {
        let mut all: Vec<(&'static str, NearestFn)> = Vec::new();
        // SAFETY (both): the feature is detected before the kernel is listed.
        if is_x86_feature_detected!("avx512f") {
            all.push(("avx512", |x, ct, cn| unsafe { nearest_avx512(x, ct, cn) }));
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            all.push(("avx2", |x, ct, cn| unsafe { nearest_avx2(x, ct, cn) }));
        }
        all
    }

    pub(super) fn pick(level: &str) -> Option<(IpFn, NearestFn)> {
        // SAFETY (every call below): the CPU has the features the functions are compiled for,
        // detected just before.
        if level == "avx512" && is_x86_feature_detected!("avx512f") {
            return Some((
                |x, ct, out| unsafe { ip_avx512(x, ct, out) },
                |x, ct, cn| unsafe { nearest_avx512(x, ct, cn) },
            ));
        }
        if (level == "avx512" || level == "avx2")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            return Some((
                |x, ct, out| unsafe { ip_avx2(x, ct, out) },
                |x, ct, cn| unsafe { nearest_avx2(x, ct, cn) },
            ));
        }
        None
    }
}

fn kernels() -> &'static (IpFn, NearestFn) {
    static K: OnceLock<(IpFn, NearestFn)> = OnceLock::new();
    K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = x86::pick(crate::kernels::simd_level()) {
            return k;
        }
        (
            |x, ct, out| ip_body::<false>(x, ct, out),
            |x, ct, cn| nearest_body::<false>(x, ct, cn),
        )
    })
}

/// `out[j] = x · centroid j` for the 256 centroids transposed in `ct` (`x.len() * 256`).
#[inline]
pub(crate) fn ip_256(x: &[f32], ct: &[f32], out: &mut [f32; KSUB]) {
    (kernels().0)(x, ct, out)
}

/// The nearest of the 256 centroids transposed in `ct` (`cn` their squared norms), with the
/// squared distance less `|x|²`.
#[inline]
pub(crate) fn nearest_256(x: &[f32], ct: &[f32], cn: &[f32; KSUB]) -> (u32, f32) {
    (kernels().1)(x, ct, cn)
}

/// The 256 centroids (`256 × len`, row-major) transposed, and their squared norms.
pub(crate) fn transpose(c: &[f32], len: usize) -> (Vec<f32>, [f32; KSUB]) {
    let mut ct = vec![0.0; len * KSUB];
    let mut cn = [0.0; KSUB];
    for j in 0..KSUB {
        let row = &c[j * len..(j + 1) * len];
        for (t, &v) in row.iter().enumerate() {
            ct[t * KSUB + j] = v;
        }
        cn[j] = row.iter().map(|v| v * v).sum();
    }
    (ct, cn)
}

/// Nearest of 256 centroids (`256 × len`) for `n` rows of `len` floats every `stride`, with
/// the squared distance less `|x|²`.
pub(crate) fn assign_256(
    x: &[f32],
    stride: usize,
    n: usize,
    c: &[f32],
    len: usize,
) -> Vec<(u32, f32)> {
    let (ct, cn) = transpose(c, len);
    let nearest = kernels().1;
    (0..n)
        .into_par_iter()
        .with_min_len(1024)
        .map(|i| nearest(&x[i * stride..i * stride + len], &ct, &cn))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every kernel this CPU runs (and the one picked) chooses the centroid the generic body
    /// does: the first of equal distances, never a NaN one. Values are multiples of 1/2, so
    /// every variant computes the distances exactly and only the choice can differ.
    #[test]
    fn nearest_kernels_choose_as_the_generic_body_on_ties_and_nans() {
        let len = 8;
        let mut c: Vec<f32> = (0..KSUB * len)
            .map(|i| ((i * 7 % 9) as f32 - 4.0) / 2.0)
            .collect();
        // Centroid 200 repeats 40 (a tie across lanes and chunks), 41 is NaN.
        let dup: Vec<f32> = c[40 * len..41 * len].to_vec();
        c[200 * len..201 * len].copy_from_slice(&dup);
        c[41 * len] = f32::NAN;
        let (ct, cn) = transpose(&c, len);
        let mut rows: Vec<Vec<f32>> = (0..50)
            .map(|r| {
                (0..len)
                    .map(|t| (((r + t * 5) % 7) as f32 - 3.0) / 2.0)
                    .collect()
            })
            .collect();
        rows.push(dup);
        #[allow(unused_mut)]
        let mut kernels: Vec<(&str, NearestFn)> = vec![("picked", nearest_256)];
        #[cfg(target_arch = "x86_64")]
        kernels.extend(x86::nearest_variants());
        for x in &rows {
            let want = nearest_body::<false>(x, &ct, &cn);
            for (name, kernel) in &kernels {
                assert_eq!(kernel(x, &ct, &cn), want, "{name} {x:?}");
            }
            assert_ne!(want.0, 41);
        }
        // The repeated row is at distance 0 from centroids 40 and 200 (and any equal one
        // before): the first of them wins.
        let (j, _) = nearest_256(rows.last().unwrap(), &ct, &cn);
        assert!(j <= 40 && c[j as usize * len..(j as usize + 1) * len] == c[40 * len..41 * len]);
    }

    /// The transposed kernels equal direct sums.
    #[test]
    fn transposed_kernels_equal_direct_sums() {
        let len = 12;
        let c: Vec<f32> = (0..KSUB * len)
            .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
            .collect();
        let x: Vec<f32> = (0..3 * len)
            .map(|i| ((i * 13 % 17) as f32 / 17.0) - 0.4)
            .collect();
        let (ct, _) = transpose(&c, len);
        let mut out = [0.0; KSUB];
        ip_256(&x[..len], &ct, &mut out);
        for j in 0..KSUB {
            let want: f32 = x[..len].iter().zip(&c[j * len..]).map(|(a, b)| a * b).sum();
            assert!((out[j] - want).abs() < 1e-5);
        }
        for (i, (j, dist)) in assign_256(&x, len, 3, &c, len).into_iter().enumerate() {
            let row = &x[i * len..(i + 1) * len];
            let d: Vec<f32> = (0..KSUB)
                .map(|j| {
                    row.iter()
                        .zip(&c[j * len..(j + 1) * len])
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum()
                })
                .collect();
            let best = d.iter().cloned().fold(f32::INFINITY, f32::min);
            let xn: f32 = row.iter().map(|v| v * v).sum();
            assert!((d[j as usize] - best).abs() < 1e-5 && (dist + xn - best).abs() < 1e-4);
        }
    }
}
