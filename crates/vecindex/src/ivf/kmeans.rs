//! k-means as FAISS's `Clustering` runs it, and the nearest-centroid searches built on the same
//! matrix product: rows against centroids in blocks ([`crate::matmul::dots`], multi-threaded),
//! then the best per row.
//!
//! The algorithm: `k` distinct training points picked at random (seeded) as the first centroids;
//! then `niter` rounds of assigning every point to its nearest centroid and moving each centroid
//! to the mean of its points. A centroid left without points takes half of a large cluster: it
//! copies that cluster's centroid and the two move apart by a factor `1 ± 1/1024` on alternate
//! coordinates. With `spherical` (FAISS's default for inner-product IVF) centroids are
//! normalised after each round.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{kernels, matmul};

/// Rows per block of the assignment's matrix product.
const BLOCK: usize = 4096;

/// Squared norms of `n` rows of `len` floats every `stride`.
pub(crate) fn norms(x: &[f32], stride: usize, n: usize, len: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let r = &x[i * stride..i * stride + len];
            kernels::dot(r, r)
        })
        .collect()
}

/// The nearest centroid of each row and its distance as FAISS reports it (inner product, or
/// squared L2 `|x|² + |c|² − 2 x·c`). `c_norms` holds the centroids' squared norms (L2).
#[allow(clippy::too_many_arguments)]
pub(crate) fn assign(
    x: &[f32],
    x_stride: usize,
    n: usize,
    c: &[f32],
    c_stride: usize,
    nc: usize,
    len: usize,
    l2: bool,
) -> Vec<(u32, f32)> {
    let c_norms = if l2 {
        norms(c, c_stride, nc, len)
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(n);
    let mut buf = Vec::new();
    for r0 in (0..n).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(n);
        matmul::dots(
            &x[r0 * x_stride..],
            x_stride,
            r1 - r0,
            c,
            c_stride,
            nc,
            len,
            &mut buf,
        );
        let best: Vec<(u32, f32)> = buf
            .par_chunks(nc)
            .enumerate()
            .map(|(i, row)| {
                if l2 {
                    let r = &x[(r0 + i) * x_stride..(r0 + i) * x_stride + len];
                    let xn = kernels::dot(r, r);
                    let (j, v) = row
                        .iter()
                        .zip(&c_norms)
                        .map(|(d, cn)| cn - 2.0 * d)
                        .enumerate()
                        .fold(
                            (0, f32::INFINITY),
                            |b, (j, v)| if v < b.1 { (j, v) } else { b },
                        );
                    (j as u32, (xn + v).max(0.0))
                } else {
                    let (j, v) =
                        row.iter()
                            .enumerate()
                            .fold(
                                (0, f32::NEG_INFINITY),
                                |b, (j, &v)| if v > b.1 { (j, v) } else { b },
                            );
                    (j as u32, v)
                }
            })
            .collect();
        out.extend(best);
    }
    out
}

/// k-means parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KMeans {
    pub(crate) k: usize,
    pub(crate) niter: usize,
    pub(crate) spherical: bool,
    pub(crate) l2: bool,
    pub(crate) seed: u64,
}

impl KMeans {
    /// Trains on `n` rows of `len` floats every `stride` floats of `x` (`n >= k`); returns the
    /// `k × len` centroids.
    pub(crate) fn train(&self, x: &[f32], stride: usize, n: usize, len: usize) -> Vec<f32> {
        let k = self.k;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut rng);
        let mut c: Vec<f32> = perm[..k]
            .iter()
            .flat_map(|&i| x[i * stride..i * stride + len].iter().copied())
            .collect();
        if self.spherical {
            normalise(&mut c, len);
        }
        for _ in 0..self.niter {
            // Assignment with the true metric (inner product for spherical clustering too).
            // 256 short centroids (the product quantiser's): the transposed kernel beats a
            // matrix product with an inner dimension of a few floats.
            let a = if k == super::pq::KSUB && self.l2 && len <= 32 {
                super::small::assign_256(x, stride, n, &c, len)
            } else {
                assign(x, stride, n, &c, len, k, len, self.l2)
            };
            let mut sums = vec![0.0f64; k * len];
            let mut counts = vec![0usize; k];
            for (i, &(j, _)) in a.iter().enumerate() {
                let j = j as usize;
                counts[j] += 1;
                let row = &x[i * stride..i * stride + len];
                for (s, v) in sums[j * len..(j + 1) * len].iter_mut().zip(row) {
                    *s += *v as f64;
                }
            }
            for j in 0..k {
                if counts[j] > 0 {
                    let inv = 1.0 / counts[j] as f64;
                    for (cv, s) in c[j * len..(j + 1) * len]
                        .iter_mut()
                        .zip(&sums[j * len..(j + 1) * len])
                    {
                        *cv = (*s * inv) as f32;
                    }
                }
            }
            split_empty(&mut c, &mut counts, len, n, &mut rng);
            if self.spherical {
                normalise(&mut c, len);
            }
        }
        c
    }
}

/// Gives each empty cluster half of a cluster picked with probability growing with its size.
fn split_empty(c: &mut [f32], counts: &mut [usize], len: usize, n: usize, rng: &mut ChaCha8Rng) {
    const EPS: f32 = 1.0 / 1024.0;
    let k = counts.len();
    for empty in 0..k {
        if counts[empty] != 0 {
            continue;
        }
        // Pick a cluster with probability (size - 1) / (n - k), as FAISS does.
        let mut target = rng.gen_range(0.0..1.0f64) * (n.saturating_sub(k)).max(1) as f64;
        let mut pick = None;
        for (j, &cnt) in counts.iter().enumerate() {
            let w = cnt.saturating_sub(1) as f64;
            if target < w {
                pick = Some(j);
                break;
            }
            target -= w;
        }
        // Rounding can leave the target past the end: then the largest cluster.
        let big = pick.unwrap_or_else(|| {
            counts
                .iter()
                .enumerate()
                .max_by_key(|(_, c)| **c)
                .map_or(0, |(j, _)| j)
        });
        for i in 0..len {
            let v = c[big * len + i];
            let (a, b) = if i % 2 == 0 {
                (1.0 + EPS, 1.0 - EPS)
            } else {
                (1.0 - EPS, 1.0 + EPS)
            };
            c[empty * len + i] = v * a;
            c[big * len + i] = v * b;
        }
        counts[empty] = counts[big] / 2;
        counts[big] -= counts[empty];
    }
}

fn normalise(c: &mut [f32], len: usize) {
    for row in c.chunks_exact_mut(len) {
        let n = kernels::dot(row, row).sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
}

/// Up to `max` of the `n` row indices, chosen at random (all of them, in order, if `n <= max`).
pub(crate) fn sample(n: usize, max: usize, seed: u64) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, max).into_vec();
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Well separated blobs: every centroid lands on one blob's centre, and the assignment by
    /// matrix product equals the one by direct distances.
    #[test]
    fn kmeans_finds_separated_blobs() {
        let (d, k, per) = (5, 4, 50);
        let centres: Vec<f32> = (0..k * d)
            .map(|i| if i % (d + 1) == 0 { 10.0 } else { 0.0 })
            .collect();
        let mut x = Vec::new();
        for j in 0..k {
            for p in 0..per {
                for i in 0..d {
                    x.push(centres[j * d + i] + ((p * 31 + i * 7) % 11) as f32 / 50.0);
                }
            }
        }
        let c = KMeans {
            k,
            niter: 10,
            spherical: false,
            l2: true,
            seed: 1,
        }
        .train(&x, d, k * per, d);
        let a = assign(&x, d, k * per, &c, d, k, d, true);
        for j in 0..k {
            let first = a[j * per].0;
            assert!(
                a[j * per..(j + 1) * per].iter().all(|p| p.0 == first),
                "blob {j} split"
            );
        }
        for (i, &(j, dist)) in a.iter().enumerate() {
            let row = &x[i * d..(i + 1) * d];
            let direct: Vec<f32> = c
                .chunks_exact(d)
                .map(|cj| kernels::l2_squared(row, cj))
                .collect();
            let best = direct.iter().cloned().fold(f32::INFINITY, f32::min);
            assert!((direct[j as usize] - best).abs() < 1e-3 && (dist - best).abs() < 1e-2);
        }
    }
}
