//! The IVF-PQ index (FAISS `IndexIVFPQ`, 8-bit codes, residuals by the coarse centroid).

use rayon::prelude::*;

use super::kmeans::{self, KMeans};
use super::pq::{KSUB, ProductQuantizer};
use crate::error::{Error, Result};
use crate::ids::IdMap;
use crate::topk::TopK;
use crate::{Hit, MAX_DIM, Metric, VectorIndex, check_queries, check_rows};

/// Rows encoded per block by `add` (bounds the residual buffer).
const ADD_BLOCK: usize = 16384;
/// Largest L2 precomputed table (FAISS's `precomputed_table_max_bytes`); above it the terms
/// are computed per visited list instead.
const MAX_PRECOMPUTED_BYTES: usize = 2 << 30;

/// Options of an [`IvfPqIndex`]. The defaults suit about 10⁵–10⁶ vectors of dimension 512–768.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfPqOptions {
    /// Number of inverted lists (coarse centroids), FAISS's `nlist`.
    pub nlist: usize,
    /// Number of sub-quantisers = bytes per vector; must divide the dimension.
    pub m: usize,
    /// Lists searched per query unless [`IvfPqIndex::search_with_nprobe`] says otherwise.
    pub nprobe: usize,
    /// k-means rounds of the coarse quantiser (FAISS's IVF default: 10).
    pub niter: usize,
    /// Seed of the training samples and k-means initialisations.
    pub seed: u64,
}

impl Default for IvfPqOptions {
    fn default() -> Self {
        Self {
            nlist: 1024,
            m: 64,
            nprobe: 16,
            niter: 10,
            seed: 1234,
        }
    }
}

/// One inverted list: codes (`m` bytes each) and their rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InvList {
    pub(crate) codes: Vec<u8>,
    pub(crate) rows: Vec<u32>,
}

/// Approximate search over product-quantised vectors grouped by a coarse k-means: FAISS's
/// `IndexIVFPQ` (8-bit codes, `by_residual`), whose files (`IwPQ`) it reads and writes.
///
/// A vector is stored in the list of its nearest coarse centroid `c` as the PQ code of its
/// residual `x − c`, `m` bytes. A query visits the `nprobe` lists whose centroids score best
/// and scores each code as FAISS does: for inner product `q·c + Σ_s T[s][code_s]` with
/// `T[s][j] = q_s · C_sj` computed once per query; for L2 `|q − c|² + Σ_s (P_c[s][code_s] −
/// 2 T[s][code_s])`, with FAISS's precomputed table `P_c[s][j] = |C_sj|² + 2 c_s · C_sj` per list.
///
/// ```
/// use vecindex::ivf::{IvfPqIndex, IvfPqOptions};
/// use vecindex::{Metric, VectorIndex};
/// let (n, d) = (600, 8);
/// let data: Vec<f32> = (0..n * d).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
/// let ids: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
/// let options = IvfPqOptions { nlist: 4, m: 4, nprobe: 4, ..Default::default() };
/// let index = IvfPqIndex::build(d, Metric::L2, options, &ids, &data)?;
/// let hits = index.search(&data[5 * d..6 * d], 1)?;
/// assert_eq!(index.id(hits[0][0].row), Some("v5"));
/// # Ok::<(), vecindex::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct IvfPqIndex {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) nprobe: usize,
    /// `nlist × dim` coarse centroids.
    pub(crate) centroids: Vec<f32>,
    pub(crate) pq: ProductQuantizer,
    pub(crate) lists: Vec<InvList>,
    /// L2: `nlist × m × 256` precomputed terms (see the type's doc); empty for inner product
    /// and above [`MAX_PRECOMPUTED_BYTES`].
    pub(crate) precomputed: Vec<f32>,
    pub(crate) ids: IdMap,
    /// FAISS labels of the rows when they are not the row numbers (files written with
    /// `add_with_ids`).
    pub(crate) labels: Option<Vec<i64>>,
    pub(crate) model_id: String,
}

impl IvfPqIndex {
    /// An empty index trained on `training` (row-major, at least `max(nlist, 256)` vectors):
    /// k-means on up to `256 × nlist` of them for the coarse centroids (spherical for inner
    /// product, as FAISS), then PQ k-means on the residuals of up to 65,536.
    pub fn train(
        dim: usize,
        metric: Metric,
        options: IvfPqOptions,
        training: &[f32],
    ) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension(dim));
        }
        let n = check_rows(training, dim)?;
        // Cosine compares the normalised vectors: train on what will be encoded.
        let training = &*metric.prepared(training, dim);
        let nlist = options.nlist;
        if nlist == 0
            || nlist > u32::MAX as usize
            || options.m == 0
            || !dim.is_multiple_of(options.m)
        {
            return Err(Error::InvalidParams(format!(
                "IVF-PQ needs nlist >= 1 and m dividing the dimension {dim}: nlist {nlist}, m {}",
                options.m
            )));
        }
        if n < nlist.max(KSUB) {
            return Err(Error::InvalidParams(format!(
                "IVF-PQ training needs at least max(nlist, 256) = {} vectors, got {n}",
                nlist.max(KSUB)
            )));
        }
        let l2 = metric == Metric::L2;
        let coarse_sample = gather(training, dim, &kmeans::sample(n, 256 * nlist, options.seed));
        let ns = coarse_sample.len() / dim;
        let km = KMeans {
            k: nlist,
            niter: options.niter,
            spherical: !l2,
            l2,
            seed: options.seed,
        };
        let centroids = km.train(&coarse_sample, dim, ns, dim);
        let pq_rows = kmeans::sample(n, 256 * KSUB, options.seed.wrapping_add(1));
        let mut residuals = gather(training, dim, &pq_rows);
        let assigned = kmeans::assign(
            &residuals,
            dim,
            pq_rows.len(),
            &centroids,
            dim,
            nlist,
            dim,
            l2,
        );
        subtract_centroids(&mut residuals, dim, &centroids, &assigned);
        let pq = ProductQuantizer::train(dim, options.m, &residuals, pq_rows.len(), options.seed)?;
        Self::from_parts(dim, metric, options.nprobe, centroids, pq)
    }

    /// An empty index from trained parts.
    pub(crate) fn from_parts(
        dim: usize,
        metric: Metric,
        nprobe: usize,
        centroids: Vec<f32>,
        pq: ProductQuantizer,
    ) -> Result<Self> {
        let nlist = centroids.len() / dim;
        let mut index = Self {
            dim,
            metric,
            nprobe: nprobe.max(1),
            centroids,
            pq,
            lists: vec![InvList::default(); nlist],
            precomputed: Vec::new(),
            ids: IdMap::new(),
            labels: None,
            model_id: String::new(),
        };
        index.precompute();
        Ok(index)
    }

    /// FAISS's table for L2 (`use_precomputed_table` 1): per list, `|C_sj|² + 2 c_s · C_sj`.
    fn precompute(&mut self) {
        let bytes = self.nlist().saturating_mul(self.m() * KSUB * 4);
        if self.metric != Metric::L2 || bytes > MAX_PRECOMPUTED_BYTES {
            return;
        }
        let cn = self.pq.centroid_norms();
        let tables: Vec<Vec<f32>> = self
            .centroids
            .par_chunks_exact(self.dim)
            .map(|c| {
                let mut t = Vec::new();
                self.pq.ip_table(c, &mut t);
                t.iter().zip(&cn).map(|(ip, n)| n + 2.0 * ip).collect()
            })
            .collect();
        self.precomputed = tables.concat();
    }

    /// Trains on `vectors` (as [`IvfPqIndex::train`]) and adds them.
    pub fn build<S: AsRef<str>>(
        dim: usize,
        metric: Metric,
        options: IvfPqOptions,
        ids: &[S],
        vectors: &[f32],
    ) -> Result<Self> {
        let mut index = Self::train(dim, metric, options, vectors)?;
        index.add(ids, vectors)?;
        Ok(index)
    }

    /// Records the model id the vectors came from.
    pub fn with_model_id(mut self, model_id: impl Into<String>) -> Self {
        self.model_id = model_id.into();
        self
    }

    /// Number of inverted lists.
    pub fn nlist(&self) -> usize {
        self.lists.len()
    }

    /// Bytes per code (sub-quantisers).
    pub fn m(&self) -> usize {
        self.pq.m()
    }

    /// Lists visited per query by [`VectorIndex::search`].
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// Sets the lists visited per query by [`VectorIndex::search`] (at least 1).
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.nprobe = nprobe.max(1);
    }

    /// The ids in row order.
    pub fn ids(&self) -> &IdMap {
        &self.ids
    }

    /// Bytes held by the search structures: codes, their rows (4 bytes each), coarse and PQ
    /// centroids, and for L2 the precomputed table (not counting the ids).
    pub fn memory_bytes(&self) -> usize {
        let lists: usize = self
            .lists
            .iter()
            .map(|l| l.codes.len() + 4 * l.rows.len())
            .sum();
        // PQ centroids twice: as stored and transposed for the tables.
        lists + 4 * (self.centroids.len() + 2 * self.pq.centroids().len() + self.precomputed.len())
    }

    /// The vector of `row` as the index holds it (coarse centroid plus decoded residual);
    /// looks the row up in every list, so O(len).
    pub fn reconstruct(&self, row: usize) -> Option<Vec<f32>> {
        for (l, list) in self.lists.iter().enumerate() {
            if let Some(i) = list.rows.iter().position(|&r| r as usize == row) {
                let mut out = self.centroids[l * self.dim..(l + 1) * self.dim].to_vec();
                self.pq
                    .decode_add(&list.codes[i * self.m()..(i + 1) * self.m()], &mut out);
                return Some(out);
            }
        }
        None
    }

    /// Searches with `nprobe` lists per query (clamped to `1..=nlist`).
    pub fn search_with_nprobe(
        &self,
        queries: &[f32],
        k: usize,
        nprobe: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        let nq = check_queries(queries, self.dim, k)?;
        let queries = &*self.metric.prepared(queries, self.dim);
        let nprobe = nprobe.clamp(1, self.nlist());
        let probes = self.coarse(queries, nq, nprobe);
        let cnorms = if self.metric == Metric::L2 && self.precomputed.is_empty() {
            self.pq.centroid_norms()
        } else {
            Vec::new()
        };
        // Tables for a few queries at a time: their computation then reads the PQ centroids
        // once per block (see `ip_tables`), and a block's tables still fit the second-level
        // cache for the scans that follow.
        const BLOCK: usize = 4;
        let blocks: Vec<Vec<Vec<Hit>>> = queries
            .par_chunks(BLOCK * self.dim)
            .zip(probes.par_chunks(BLOCK))
            .map(|(qs, ps)| {
                let mut tables = Vec::new();
                self.pq.ip_tables(qs, &mut tables);
                tables
                    .chunks_exact(self.m() * KSUB)
                    .zip(ps)
                    .map(|(qtab, p)| self.scan(qtab, &cnorms, p, k))
                    .collect()
            })
            .collect();
        Ok(blocks.into_iter().flatten().collect())
    }

    /// The `nprobe` best lists of each query, with FAISS's coarse distance (`q·c`, or `|q − c|²`).
    fn coarse(&self, queries: &[f32], nq: usize, nprobe: usize) -> Vec<Vec<(u32, f32)>> {
        let (d, nlist) = (self.dim, self.nlist());
        let l2 = self.metric == Metric::L2;
        let cn = if l2 {
            kmeans::norms(&self.centroids, d, nlist, d)
        } else {
            Vec::new()
        };
        let mut out = Vec::with_capacity(nq);
        let mut buf = Vec::new();
        let block = (1 << 22) / nlist.max(1);
        for q0 in (0..nq).step_by(block.max(1)) {
            let q1 = (q0 + block.max(1)).min(nq);
            crate::matmul::dots(
                &queries[q0 * d..],
                d,
                q1 - q0,
                &self.centroids,
                d,
                nlist,
                d,
                &mut buf,
            );
            let part: Vec<Vec<(u32, f32)>> = buf
                .par_chunks(nlist)
                .enumerate()
                .map(|(i, row)| {
                    let q = &queries[(q0 + i) * d..(q0 + i + 1) * d];
                    let qn = if l2 { crate::kernels::dot(q, q) } else { 0.0 };
                    // Ordered by score (greater is better) to pick with one comparison.
                    let mut all: Vec<(u32, f32)> = row
                        .iter()
                        .enumerate()
                        .map(|(j, &ip)| {
                            let s = if l2 {
                                -(qn + cn[j] - 2.0 * ip).max(0.0)
                            } else {
                                ip
                            };
                            (j as u32, s)
                        })
                        .collect();
                    let by_score =
                        |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
                    if nprobe < all.len() {
                        all.select_nth_unstable_by(nprobe - 1, by_score);
                        all.truncate(nprobe);
                    }
                    all.sort_unstable_by(by_score);
                    for p in &mut all {
                        p.1 = self.metric.faiss_distance(p.1);
                    }
                    all
                })
                .collect();
            out.extend(part);
        }
        out
    }

    /// The best `k` of the lists `probes` for a query whose inner-product table is `qtab`
    /// (`cnorms`: the PQ centroids' squared norms where L2 has no precomputed table).
    fn scan(&self, qtab: &[f32], cnorms: &[f32], probes: &[(u32, f32)], k: usize) -> Vec<Hit> {
        let m = self.m();
        let mut top = TopK::new(k);
        let mut tab: Vec<f32> = Vec::new();
        let mut ctab: Vec<f32> = Vec::new();
        for &(list, coarse) in probes {
            let l = &self.lists[list as usize];
            let table: &[f32] = match self.metric {
                Metric::InnerProduct | Metric::Cosine => qtab,
                Metric::L2 => {
                    let li = list as usize;
                    tab.resize(m * KSUB, 0.0);
                    if self.precomputed.is_empty() {
                        let c = &self.centroids[li * self.dim..(li + 1) * self.dim];
                        self.pq.ip_table(c, &mut ctab);
                        for (((t, ip), n), q) in tab.iter_mut().zip(&ctab).zip(cnorms).zip(qtab) {
                            *t = n + 2.0 * ip - 2.0 * q;
                        }
                    } else {
                        let pre = &self.precomputed[li * m * KSUB..(li + 1) * m * KSUB];
                        for ((t, p), q) in tab.iter_mut().zip(pre).zip(qtab) {
                            *t = p - 2.0 * q;
                        }
                    }
                    &tab
                }
            };
            let (table, _) = table.as_chunks::<KSUB>();
            let l2 = self.metric == Metric::L2;
            let mut bar = top.bar_score();
            for (code, &row) in l.codes.chunks_exact(m).zip(&l.rows) {
                let dis = coarse + table_sum(table, code);
                let s = if l2 { -dis } else { dis };
                if s >= bar || s.is_nan() {
                    top.push(row as usize, s);
                    bar = top.bar_score();
                }
            }
        }
        top.into_sorted()
    }
}

/// `Σ_s table[s * 256 + code[s]]`, four independent sums (the lookups are the cost). The table
/// is taken as rows of 256 so that a byte indexes a row without a bounds check.
#[inline]
fn table_sum(table: &[[f32; KSUB]], code: &[u8]) -> f32 {
    let mut acc = [0.0f32; 4];
    let (quads, rest) = code.as_chunks::<4>();
    let (table_quads, table_rest) = table.as_chunks::<4>();
    for (c, t) in quads.iter().zip(table_quads) {
        for i in 0..4 {
            acc[i] += t[i][c[i] as usize];
        }
    }
    for (&c, t) in rest.iter().zip(table_rest) {
        acc[0] += t[c as usize];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// The rows `idx` of `x` copied together.
fn gather(x: &[f32], d: usize, idx: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        out.extend_from_slice(&x[i * d..(i + 1) * d]);
    }
    out
}

fn subtract_centroids(x: &mut [f32], d: usize, centroids: &[f32], assigned: &[(u32, f32)]) {
    x.par_chunks_exact_mut(d)
        .zip(assigned)
        .for_each(|(row, &(j, _))| {
            let c = &centroids[j as usize * d..(j as usize + 1) * d];
            for (v, cv) in row.iter_mut().zip(c) {
                *v -= cv;
            }
        });
}

impl VectorIndex for IvfPqIndex {
    fn dim(&self) -> usize {
        self.dim
    }
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn metric(&self) -> Metric {
        self.metric
    }
    fn id(&self, row: usize) -> Option<&str> {
        self.ids.id(row)
    }
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn add<S: AsRef<str>>(&mut self, ids: &[S], vectors: &[f32]) -> Result<()> {
        let n = check_rows(vectors, self.dim)?;
        if n != ids.len() {
            return Err(Error::IdCountMismatch {
                ids: ids.len(),
                vectors: n,
            });
        }
        if self.labels.is_some() {
            return Err(Error::Unsupported(
                "adding to an IVF index whose FAISS labels are not row numbers".into(),
            ));
        }
        if self.len() + n > u32::MAX as usize {
            return Err(Error::TooLarge(format!(
                "{} + {n} vectors (at most 2^32 - 1)",
                self.len()
            )));
        }
        self.ids.check_new(ids)?;
        let (d, nlist) = (self.dim, self.nlist());
        let l2 = self.metric == Metric::L2;
        let first = self.len();
        for b0 in (0..n).step_by(ADD_BLOCK) {
            let b1 = (b0 + ADD_BLOCK).min(n);
            let mut block = self
                .metric
                .prepared(&vectors[b0 * d..b1 * d], d)
                .into_owned();
            let assigned = kmeans::assign(&block, d, b1 - b0, &self.centroids, d, nlist, d, l2);
            subtract_centroids(&mut block, d, &self.centroids, &assigned);
            let codes = self.pq.encode(&block, b1 - b0);
            let m = self.m();
            for (i, &(list, _)) in assigned.iter().enumerate() {
                let l = &mut self.lists[list as usize];
                l.codes.extend_from_slice(&codes[i * m..(i + 1) * m]);
                l.rows.push((first + b0 + i) as u32);
            }
        }
        self.ids.extend(ids)
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.search_with_nprobe(queries, k, self.nprobe)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Without the precomputed L2 table (too large to hold), the terms computed per visited
    /// list give the same results.
    #[test]
    fn l2_terms_per_list_equal_the_precomputed_table() {
        let (n, d) = (700, 16);
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5)
            .collect();
        let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let options = IvfPqOptions {
            nlist: 8,
            m: 4,
            nprobe: 3,
            ..Default::default()
        };
        let mut index = IvfPqIndex::build(d, Metric::L2, options, &ids, &x).unwrap();
        assert_eq!(index.precomputed.len(), 8 * 4 * KSUB);
        let q = &x[..20 * d];
        let with = index.search(q, 5).unwrap();
        index.precomputed.clear();
        let without = index.search(q, 5).unwrap();
        for (a, b) in with.iter().flatten().zip(without.iter().flatten()) {
            assert_eq!(a.row, b.row);
            assert!((a.score - b.score).abs() < 1e-5);
        }
    }
}
