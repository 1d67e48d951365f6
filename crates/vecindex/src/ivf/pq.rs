//! The product quantiser (FAISS `ProductQuantizer` with 8-bit codes): a vector of dimension
//! `d` is cut into `m` sub-vectors of `d / m` floats, each coded by the index of its nearest
//! centroid among 256 learnt by k-means on that sub-space (25 rounds, as FAISS).

use rayon::prelude::*;

use super::kmeans::KMeans;
use super::small;
use crate::error::{Error, Result};

/// Centroids per sub-quantiser (8-bit codes).
pub const KSUB: usize = 256;

/// A trained product quantiser. Centroid `j` of sub-quantiser `s` is
/// `centroids[(s * 256 + j) * dsub..][..dsub]`, FAISS's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuantizer {
    d: usize,
    m: usize,
    dsub: usize,
    centroids: Vec<f32>,
    /// Per sub-quantiser, its centroids transposed (`dsub × 256`), for the distance tables.
    transposed: Vec<f32>,
    /// Per sub-quantiser, the squared norms of its centroids.
    norms: Vec<[f32; KSUB]>,
}

impl ProductQuantizer {
    /// A quantiser from its centroids (`d * 256` floats); `m` must divide `d`.
    pub fn from_centroids(d: usize, m: usize, centroids: Vec<f32>) -> Result<Self> {
        Self::check(d, m)?;
        if centroids.len() != d * KSUB {
            return Err(Error::InvalidParams(format!(
                "{} PQ centroid floats, expected d * 256 = {}",
                centroids.len(),
                d * KSUB
            )));
        }
        Ok(Self::with_transposed(d, m, centroids))
    }

    fn with_transposed(d: usize, m: usize, centroids: Vec<f32>) -> Self {
        let dsub = d / m;
        let mut transposed = Vec::with_capacity(centroids.len());
        let mut norms = Vec::with_capacity(m);
        for c in centroids.chunks_exact(KSUB * dsub) {
            let (t, n) = small::transpose(c, dsub);
            transposed.extend(t);
            norms.push(n);
        }
        Self {
            d,
            m,
            dsub,
            centroids,
            transposed,
            norms,
        }
    }

    fn check(d: usize, m: usize) -> Result<()> {
        if m == 0 || d == 0 || !d.is_multiple_of(m) {
            return Err(Error::InvalidParams(format!(
                "PQ with {m} sub-quantisers needs a dimension divisible by it, got {d}"
            )));
        }
        Ok(())
    }

    /// Trains on `n` rows of `x` (`n * d` floats, at least 256 rows) with k-means per sub-space,
    /// the sub-spaces in parallel.
    pub(crate) fn train(d: usize, m: usize, x: &[f32], n: usize, seed: u64) -> Result<Self> {
        Self::check(d, m)?;
        if n < KSUB {
            return Err(Error::InvalidParams(format!(
                "PQ training needs at least {KSUB} vectors, got {n}"
            )));
        }
        let dsub = d / m;
        let parts: Vec<Vec<f32>> = (0..m)
            .into_par_iter()
            .map(|s| {
                let km = KMeans {
                    k: KSUB,
                    niter: 25,
                    spherical: false,
                    l2: true,
                    seed: seed.wrapping_add(s as u64),
                };
                // The sub-vectors copied together: k-means reads them 25 times, and strided
                // reads would pull a cache line per 4-64 bytes used.
                let sub: Vec<f32> = (0..n)
                    .flat_map(|i| x[i * d + s * dsub..i * d + (s + 1) * dsub].iter().copied())
                    .collect();
                km.train(&sub, dsub, n, dsub)
            })
            .collect();
        Ok(Self::with_transposed(d, m, parts.concat()))
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Number of sub-quantisers (= bytes per code).
    pub fn m(&self) -> usize {
        self.m
    }

    /// Floats per sub-vector.
    pub fn dsub(&self) -> usize {
        self.dsub
    }

    /// All centroids, FAISS's layout.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    fn centroid(&self, s: usize, j: usize) -> &[f32] {
        let at = (s * KSUB + j) * self.dsub;
        &self.centroids[at..at + self.dsub]
    }

    /// Codes (`m` bytes each) of `n` rows of `x`, rows in parallel.
    pub(crate) fn encode(&self, x: &[f32], n: usize) -> Vec<u8> {
        // Rows a task encodes together: the sub-quantiser is the outer loop, so its centroids
        // (256 × dsub floats) stay in the first-level cache for all of them, instead of each
        // row sweeping all m sub-quantisers' (3 KB × dsub, more than that cache holds).
        const ROWS: usize = 64;
        let mut codes = vec![0u8; n * self.m];
        let tsize = KSUB * self.dsub;
        codes
            .par_chunks_mut(ROWS * self.m)
            .zip(x[..n * self.d].par_chunks(ROWS * self.d))
            .for_each(|(codes, rows)| {
                for s in 0..self.m {
                    let ct = &self.transposed[s * tsize..(s + 1) * tsize];
                    for (code, row) in codes
                        .chunks_exact_mut(self.m)
                        .zip(rows.chunks_exact(self.d))
                    {
                        let sub = &row[s * self.dsub..(s + 1) * self.dsub];
                        code[s] = small::nearest_256(sub, ct, &self.norms[s]).0 as u8;
                    }
                }
            });
        codes
    }

    /// Adds the decoded `code` to `out` (`d` floats).
    pub(crate) fn decode_add(&self, code: &[u8], out: &mut [f32]) {
        for (s, &j) in code.iter().enumerate() {
            for (o, c) in out[s * self.dsub..(s + 1) * self.dsub]
                .iter_mut()
                .zip(self.centroid(s, j as usize))
            {
                *o += c;
            }
        }
    }

    /// `table[s * 256 + j] = x_s · centroid(s, j)`.
    pub(crate) fn ip_table(&self, x: &[f32], table: &mut Vec<f32>) {
        self.ip_tables(x, table);
    }

    /// [`Self::ip_table`] of each of the vectors `xs` (`d` floats each), one table after the
    /// other. The sub-quantiser is the outer loop, so its 256 centroids are read from memory
    /// once for all the vectors instead of once each (all `m` of them, 3 KB × `dsub`, exceed
    /// the first-level cache).
    pub(crate) fn ip_tables(&self, xs: &[f32], tables: &mut Vec<f32>) {
        let d = self.m * self.dsub;
        let size = self.m * KSUB;
        tables.clear();
        tables.resize(xs.len() / d * size, 0.0);
        for s in 0..self.m {
            let ct = &self.transposed[s * KSUB * self.dsub..(s + 1) * KSUB * self.dsub];
            for (x, table) in xs.chunks_exact(d).zip(tables.chunks_exact_mut(size)) {
                let (rows, _) = table.as_chunks_mut::<KSUB>();
                small::ip_256(&x[s * self.dsub..(s + 1) * self.dsub], ct, &mut rows[s]);
            }
        }
    }

    /// `|centroid(s, j)|²` for every centroid, in table order.
    pub(crate) fn centroid_norms(&self) -> Vec<f32> {
        self.centroids
            .chunks_exact(self.dsub)
            .map(|c| c.iter().map(|v| v * v).sum())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Tables computed five vectors at a time are, vector by vector, `x_s · centroid(s, j)`.
    #[test]
    fn ip_tables_of_a_block_are_each_vectors_dot_products() {
        let (d, m, n) = (24, 4, 5);
        let value = |i: usize| ((i * 7919 % 1009) as f32 / 1009.0) - 0.5;
        let pq =
            ProductQuantizer::from_centroids(d, m, (0..d * KSUB).map(value).collect()).unwrap();
        let xs: Vec<f32> = (0..n * d).map(|i| value(i + 31)).collect();
        let mut tables = Vec::new();
        pq.ip_tables(&xs, &mut tables);
        assert_eq!(tables.len(), n * m * KSUB);
        for (x, table) in xs.chunks_exact(d).zip(tables.chunks_exact(m * KSUB)) {
            for s in 0..m {
                for j in 0..KSUB {
                    let want: f32 = x[s * pq.dsub..(s + 1) * pq.dsub]
                        .iter()
                        .zip(pq.centroid(s, j))
                        .map(|(a, b)| a * b)
                        .sum();
                    let got = table[s * KSUB + j];
                    assert!((got - want).abs() <= 1e-5, "s {s} j {j}: {got} vs {want}");
                }
            }
        }
    }
}
