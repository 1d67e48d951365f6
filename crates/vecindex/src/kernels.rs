//! Dot product and squared L2 distance, compiled for the best instruction set the CPU offers
//! (chosen once at run time). Both accumulate in 32 independent lanes so the compiler can keep
//! several vector registers busy instead of waiting on one add chain.

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
    #[target_feature(enable = "avx2,fma")]
    fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        super::dot_body::<true>(a, b)
    }
    #[target_feature(enable = "avx2,fma")]
    fn l2_avx2(a: &[f32], b: &[f32]) -> f32 {
        super::l2_body::<true>(a, b)
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        super::dot_body::<true>(a, b)
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn l2_avx512(a: &[f32], b: &[f32]) -> f32 {
        super::l2_body::<true>(a, b)
    }

    pub(super) fn pick() -> Option<(super::Kernel, super::Kernel)> {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports every feature these functions are compiled for.
            Some((
                |a, b| unsafe { dot_avx512(a, b) },
                |a, b| unsafe { l2_avx512(a, b) },
            ))
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            Some((
                |a, b| unsafe { dot_avx2(a, b) },
                |a, b| unsafe { l2_avx2(a, b) },
            ))
        } else {
            None
        }
    }
}

fn kernels() -> &'static (Kernel, Kernel) {
    static KERNELS: OnceLock<(Kernel, Kernel)> = OnceLock::new();
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = x86::pick() {
            return k;
        }
        (dot_portable as Kernel, l2_portable as Kernel)
    })
}

/// Inner product of two vectors (over the shorter length).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().0)(a, b)
}

/// Squared Euclidean distance of two vectors (over the shorter length).
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    (kernels().1)(a, b)
}

/// The kernel [`dot`] calls, for loops that want to look it up once.
#[inline]
pub fn dot_kernel() -> Kernel {
    kernels().0
}

/// The kernel [`l2_squared`] calls, for loops that want to look it up once.
#[inline]
pub fn l2_kernel() -> Kernel {
    kernels().1
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #[test]
    fn kernels_match_naive() {
        for n in [0usize, 1, 5, 31, 32, 33, 100, 768] {
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
        }
    }
}
