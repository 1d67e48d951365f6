//! Dot product and squared L2 distance, compiled for the best instruction set the CPU offers
//! (chosen once at run time): AVX-512, else AVX2 with FMA, through explicit intrinsics, else a
//! portable loop accumulating in 32 independent lanes. `VECINDEX_SIMD=avx2` or `portable`
//! caps the choice (for comparisons; read once per process).

use std::sync::OnceLock;

const LANES: usize = 32;

/// A distance kernel: two vectors in, one value out (over the shorter length).
pub type Kernel = fn(&[f32], &[f32]) -> f32;

#[inline(always)]
fn dot_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] = if FMA {
                x[i].mul_add(y[i], acc[i])
            } else {
                acc[i] + x[i] * y[i]
            };
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    reduce(acc) + tail
}

#[inline(always)]
fn l2_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] = if FMA {
                d.mul_add(d, acc[i])
            } else {
                acc[i] + d * d
            };
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += (x - y) * (x - y);
    }
    reduce(acc) + tail
}

#[inline(always)]
fn reduce(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_body::<false>(a, b)
}
fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    l2_body::<false>(a, b)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! Explicit intrinsics: written with plain arrays, the compiler turned the 32-lane loops
    //! into 2-float (`xmm`, `vmovsd`) FMAs, a quarter of what AVX2 offers. AVX-512 where the
    //! CPU has it: half the instructions per row, and on Intel Xeons with two 512-bit FMA
    //! units twice the arithmetic per cycle. On an Intel Xeon with AMX (Sapphire Rapids or
    //! later) HNSW searches ran 1.15-1.21x faster than with the AVX2 kernels, which had left
    //! FAISS (AVX-512 there) ahead (docs/BENCHMARKS-LOG.md, 2026-11-27 22:30). Zen 4
    //! splits 512-bit FMAs in two, so there it saves instructions, not cycles of arithmetic.
    use std::arch::x86_64::*;

    /// Sum of the eight accumulators, pairwise.
    #[target_feature(enable = "avx2,fma")]
    fn sum8(acc: &[__m256; 8]) -> __m256 {
        let a = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let b = _mm256_add_ps(_mm256_add_ps(acc[4], acc[5]), _mm256_add_ps(acc[6], acc[7]));
        _mm256_add_ps(a, b)
    }

    /// Horizontal sum of eight floats.
    #[target_feature(enable = "avx2,fma")]
    fn hsum256(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// An AVX2 reduction over two slices: eight 8-float accumulators (64 floats per step cover
    /// the FMA latency on both FMA pipes), then one accumulator, then a scalar tail.
    /// `$vec(x, y, acc)` folds 8 floats of each slice into an accumulator, `$one(x, y, t)` one
    /// float of each into the tail sum.
    macro_rules! avx2_reduction {
        ($(#[$doc:meta])* $name:ident, $vec:expr, $one:expr) => {
            $(#[$doc])*
            #[target_feature(enable = "avx2,fma")]
            fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = [_mm256_setzero_ps(); 8];
                let mut i = 0;
                // SAFETY (all loads): `i + 8 * j + 8 <= n`; both slices hold at least `n` floats.
                while i + 64 <= n {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let (x, y) = unsafe {
                            (
                                _mm256_loadu_ps(pa.add(i + 8 * j)),
                                _mm256_loadu_ps(pb.add(i + 8 * j)),
                            )
                        };
                        *acc = $vec(x, y, *acc);
                    }
                    i += 64;
                }
                while i + 8 <= n {
                    let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
                    acc[0] = $vec(x, y, acc[0]);
                    i += 8;
                }
                let s = sum8(&acc);
                let mut tail = 0.0f32;
                for (x, y) in a[i..n].iter().zip(&b[i..n]) {
                    tail = $one(*x, *y, tail);
                }
                hsum256(s) + tail
            }
        };
    }

    avx2_reduction!(
        /// Inner product.
        dot_avx2,
        |x, y, acc| _mm256_fmadd_ps(x, y, acc),
        |x: f32, y: f32, t: f32| x.mul_add(y, t)
    );

    avx2_reduction!(
        /// Squared L2 distance: `Σ (a - b)²`.
        l2_avx2,
        |x, y, acc| {
            let d = _mm256_sub_ps(x, y);
            _mm256_fmadd_ps(d, d, acc)
        },
        |x: f32, y: f32, t: f32| {
            let d = x - y;
            d.mul_add(d, t)
        }
    );

    /// An AVX-512 reduction over two slices: four 16-float accumulators (64 floats per step:
    /// the loads, two per FMA, bound it before the FMA latency does), one more for 16-float
    /// steps, then the last `< 16` floats through a masked load (zeros elsewhere, which add
    /// nothing to either sum). `$vec(x, y, acc)` folds 16 floats of each slice into `acc`.
    macro_rules! avx512_reduction {
        ($(#[$doc:meta])* $name:ident, $vec:expr) => {
            $(#[$doc])*
            #[target_feature(enable = "avx512f")]
            fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut i = 0;
                // SAFETY (all loads): `i + 16 * j + 16 <= n`, or a mask of the `n - i` floats
                // left; both slices hold at least `n` floats.
                while i + 64 <= n {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let (x, y) = unsafe {
                            (
                                _mm512_loadu_ps(pa.add(i + 16 * j)),
                                _mm512_loadu_ps(pb.add(i + 16 * j)),
                            )
                        };
                        *acc = $vec(x, y, *acc);
                    }
                    i += 64;
                }
                while i + 16 <= n {
                    let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
                    acc[0] = $vec(x, y, acc[0]);
                    i += 16;
                }
                if i < n {
                    let mask: __mmask16 = (1u16 << (n - i)) - 1;
                    let (x, y) = unsafe {
                        (
                            _mm512_maskz_loadu_ps(mask, pa.add(i)),
                            _mm512_maskz_loadu_ps(mask, pb.add(i)),
                        )
                    };
                    acc[1] = $vec(x, y, acc[1]);
                }
                let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
                _mm512_reduce_add_ps(s)
            }
        };
    }

    avx512_reduction!(
        /// Inner product.
        dot_avx512,
        |x, y, acc| _mm512_fmadd_ps(x, y, acc)
    );

    avx512_reduction!(
        /// Squared L2 distance: `Σ (a - b)²`.
        l2_avx512,
        |x, y, acc| {
            let d = _mm512_sub_ps(x, y);
            _mm512_fmadd_ps(d, d, acc)
        }
    );

    fn has_avx512() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    fn has_avx2() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    pub(super) fn pick(cap: super::Simd) -> Option<super::Kernels> {
        // SAFETY (every call below): the CPU supports the features these functions are
        // compiled for, detected just before.
        if cap >= super::Simd::Avx512 && has_avx512() {
            return Some(super::Kernels {
                name: "avx512",
                dot: |a, b| unsafe { dot_avx512(a, b) },
                l2: |a, b| unsafe { l2_avx512(a, b) },
            });
        }
        if cap >= super::Simd::Avx2 && has_avx2() {
            return Some(super::Kernels {
                name: "avx2",
                dot: |a, b| unsafe { dot_avx2(a, b) },
                l2: |a, b| unsafe { l2_avx2(a, b) },
            });
        }
        None
    }

    /// Every compiled kernel set this CPU can run, for tests.
    #[cfg(test)]
    pub(super) fn all() -> Vec<super::Kernels> {
        let avx512 = pick(super::Simd::Avx512).filter(|k| k.name == "avx512");
        avx512.into_iter().chain(pick(super::Simd::Avx2)).collect()
    }
}

/// Instruction sets the kernels are compiled for, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Simd {
    Portable,
    Avx2,
    Avx512,
}

/// The environment variable that caps the instruction set: `avx2` or `portable`.
pub const SIMD_ENV: &str = "VECINDEX_SIMD";

/// The cap [`SIMD_ENV`] sets (none: the best the CPU has).
fn simd_cap() -> Simd {
    match std::env::var(SIMD_ENV).as_deref().map(str::trim) {
        Ok("portable") => Simd::Portable,
        Ok("avx2") => Simd::Avx2,
        _ => Simd::Avx512,
    }
}

/// The kernels of one instruction set.
#[derive(Clone, Copy)]
struct Kernels {
    name: &'static str,
    dot: Kernel,
    l2: Kernel,
}

const PORTABLE: Kernels = Kernels {
    name: "portable",
    dot: dot_portable,
    l2: l2_portable,
};

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        let cap = simd_cap();
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = x86::pick(cap) {
            return k;
        }
        let _ = cap;
        PORTABLE
    })
}

/// The instruction set the kernels run with on this CPU: `"avx512"`, `"avx2"` or `"portable"`
/// (after the cap of [`SIMD_ENV`]), for reports and benchmarks.
pub fn simd_level() -> &'static str {
    kernels().name
}

/// Inner product of two vectors (over the shorter length).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// Squared Euclidean distance of two vectors (over the shorter length).
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l2)(a, b)
}

/// The kernel [`dot`] calls, for loops that want to look it up once.
#[inline]
pub fn dot_kernel() -> Kernel {
    kernels().dot
}

/// The kernel [`l2_squared`] calls, for loops that want to look it up once.
#[inline]
pub fn l2_kernel() -> Kernel {
    kernels().l2
}

/// Scales `v` to unit length (zero vectors stay zero). The norm is summed in f64, so that
/// the result does not depend on which kernels run.
pub(crate) fn normalise(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for x in v {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #[test]
    fn kernels_match_naive() {
        fn dot_prefix(a: &[f32], b: &[f32], n: usize) -> f64 {
            a[..n]
                .iter()
                .zip(&b[..n])
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum()
        }
        for n in [
            0usize, 1, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 768, 1000,
        ] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect();
            let d: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            let l: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| ((*x - *y) as f64).powi(2))
                .sum();
            assert!((super::dot(&a, &b) as f64 - d).abs() < 1e-3, "dot n={n}");
            assert!(
                (super::l2_squared(&a, &b) as f64 - l).abs() < 1e-3,
                "l2 n={n}"
            );
            assert!((super::dot_portable(&a, &b) as f64 - d).abs() < 1e-3);
            assert!((super::l2_portable(&a, &b) as f64 - l).abs() < 1e-3);
            #[cfg(target_arch = "x86_64")]
            for k in super::x86::all() {
                let name = k.name;
                assert!(
                    ((k.dot)(&a, &b) as f64 - d).abs() < 1e-3,
                    "{name} dot n={n}"
                );
                assert!(((k.l2)(&a, &b) as f64 - l).abs() < 1e-3, "{name} l2 n={n}");
                // Over the shorter length.
                assert!(((k.dot)(&a, &b[..n / 2]) as f64 - dot_prefix(&a, &b, n / 2)).abs() < 1e-3);
            }
        }
    }

    /// Without a cap, the best instruction set the CPU has is chosen.
    #[test]
    fn the_best_kernels_the_cpu_runs_are_chosen() {
        let level = super::simd_level();
        if std::env::var_os(super::SIMD_ENV).is_some() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        let best = if is_x86_feature_detected!("avx512f") {
            "avx512"
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            "avx2"
        } else {
            "portable"
        };
        #[cfg(not(target_arch = "x86_64"))]
        let best = "portable";
        assert_eq!(level, best);
    }
}
