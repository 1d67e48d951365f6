//! Exact (brute-force) search.

use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ids::IdMap;
use crate::topk::TopK;
use crate::{Hit, MAX_DIM, Metric, VectorIndex, check_queries, check_query, check_rows, kernels};

/// Where the vectors live: in memory, or in a memory-mapped FAISS file.
#[derive(Debug)]
pub(crate) enum Storage {
    /// Row-major vectors.
    Owned(Vec<f32>),
    /// Little-endian f32 vectors at `offset` in a mapped file (FAISS puts them at unaligned
    /// offsets, so blocks are copied out before use).
    Mapped {
        map: memmap2::Mmap,
        offset: usize,
        rows: usize,
    },
}

/// Rows per reference block in batched search, and per task in single-query search.
const ROW_BLOCK: usize = 4096;
/// Queries per block in batched search.
const QUERY_BLOCK: usize = 1024;
/// Below this many queries, batched search runs the single-query path per query.
const GEMM_MIN_QUERIES: usize = 8;

impl Storage {
    fn rows(&self, dim: usize) -> usize {
        match self {
            Storage::Owned(v) => v.len() / dim,
            Storage::Mapped { rows, .. } => *rows,
        }
    }

    /// Rows `start..end` as a slice, copied into `buf` when mapped.
    pub(crate) fn block<'a>(
        &'a self,
        dim: usize,
        start: usize,
        end: usize,
        buf: &'a mut Vec<f32>,
    ) -> &'a [f32] {
        match self {
            Storage::Owned(v) => &v[start * dim..end * dim],
            Storage::Mapped { map, offset, .. } => {
                let bytes = &map[offset + start * dim * 4..offset + end * dim * 4];
                buf.clear();
                buf.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                buf
            }
        }
    }
}

/// Exact search over all vectors: batched queries go through a multi-threaded matrix product
/// (`gemm`'s f32 kernels) followed by a per-query top-k; a single query is scanned directly.
///
/// Build it with [`FlatIndex::new`] + [`VectorIndex::add`], or load it from a FAISS file
/// ([`FlatIndex::read_faiss`]) or from this crate's own format ([`FlatIndex::load`]).
#[derive(Debug)]
pub struct FlatIndex {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) storage: Storage,
    pub(crate) ids: IdMap,
    pub(crate) model_id: String,
}

impl FlatIndex {
    /// An empty index for `dim`-dimensional vectors (1..=[`MAX_DIM`]).
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension(dim));
        }
        Ok(Self {
            dim,
            metric,
            storage: Storage::Owned(Vec::new()),
            ids: IdMap::new(),
            model_id: String::new(),
        })
    }

    /// Builds an index from ids and row-major vectors in one go.
    pub fn from_vectors<S: AsRef<str>>(
        dim: usize,
        metric: Metric,
        ids: &[S],
        vectors: &[f32],
    ) -> Result<Self> {
        let mut index = Self::new(dim, metric)?;
        index.add(ids, vectors)?;
        Ok(index)
    }

    /// Records the model id the vectors came from (stored by [`FlatIndex::save`]).
    pub fn with_model_id(mut self, model_id: impl Into<String>) -> Self {
        self.model_id = model_id.into();
        self
    }

    /// The ids in row order.
    pub fn ids(&self) -> &IdMap {
        &self.ids
    }

    /// Whether the vectors are memory-mapped from a file rather than held in memory.
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped { .. })
    }

    /// The vector of `row` (copied, since mapped storage may be unaligned).
    pub fn vector(&self, row: usize) -> Option<Vec<f32>> {
        if row >= self.len() {
            return None;
        }
        let mut buf = Vec::new();
        Some(
            self.storage
                .block(self.dim, row, row + 1, &mut buf)
                .to_vec(),
        )
    }

    /// All vectors, row-major (copied when mapped).
    pub fn vectors(&self) -> Vec<f32> {
        let mut buf = Vec::new();
        self.storage
            .block(self.dim, 0, self.len(), &mut buf)
            .to_vec()
    }

    /// Searches one query by scanning the vectors directly (no matrix-product set-up); large
    /// indexes are split across the rayon pool.
    pub fn search_one(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        check_query(query, self.dim, k)?;
        let query = self.metric.prepared(query, self.dim);
        Ok(self.scan(&query, k))
    }

    fn scan(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let n = self.len();
        let chunk = |start: usize| {
            let end = (start + ROW_BLOCK).min(n);
            let mut buf = Vec::new();
            let block = self.storage.block(self.dim, start, end, &mut buf);
            let mut top = TopK::new(k);
            for (i, v) in block.chunks_exact(self.dim).enumerate() {
                top.push(start + i, self.stored_score(query, v));
            }
            top
        };
        if n <= ROW_BLOCK {
            return chunk(0).into_sorted();
        }
        let parts: Vec<TopK> = (0..n)
            .step_by(ROW_BLOCK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(chunk)
            .collect();
        let mut all = TopK::new(k);
        for p in parts {
            all.merge(p);
        }
        all.into_sorted()
    }

    /// The score of a prepared query and a stored vector (both already normalised for
    /// cosine).
    #[inline(always)]
    fn stored_score(&self, query: &[f32], v: &[f32]) -> f32 {
        match self.metric {
            Metric::L2 => -kernels::l2_squared(query, v),
            Metric::InnerProduct | Metric::Cosine => kernels::dot(query, v),
        }
    }

    /// Inner products of a query block with a reference block: `out[q * nr + r]`.
    fn block_dots(&self, queries: &[f32], refs: &[f32], out: &mut Vec<f32>) {
        let d = self.dim;
        let nq = queries.len() / d;
        let nr = refs.len() / d;
        crate::matmul::dots(queries, d, nq, refs, d, nr, d, out);
    }

    fn search_batch(&self, queries: &[f32], nq: usize, k: usize) -> Vec<Vec<Hit>> {
        // Bound the score buffer at ~32 MiB.
        let qblock = QUERY_BLOCK.min(nq.max(1));
        let rblock = ((8 << 20) / qblock).clamp(256, self.len().max(256));
        self.search_blocked(queries, nq, k, qblock, rblock)
    }

    fn search_blocked(
        &self,
        queries: &[f32],
        nq: usize,
        k: usize,
        qblock: usize,
        rblock: usize,
    ) -> Vec<Vec<Hit>> {
        let d = self.dim;
        let n = self.len();
        if n == 0 {
            return vec![Vec::new(); nq];
        }
        if nq < GEMM_MIN_QUERIES {
            return queries.chunks_exact(d).map(|q| self.scan(q, k)).collect();
        }
        let mut results = Vec::with_capacity(nq);
        let mut scores = Vec::new();
        let mut buf = Vec::new();
        for q0 in (0..nq).step_by(qblock) {
            let q1 = (q0 + qblock).min(nq);
            let qrows = &queries[q0 * d..q1 * d];
            let mut tops: Vec<TopK> = (q0..q1).map(|_| TopK::new(k)).collect();
            // L2 scores come from the inner products: -(|q|² + |r|² - 2 q·r), clamped at 0 as
            // FAISS does, computed in the top-k scan rather than in a pass of their own.
            let l2 = self.metric == Metric::L2;
            let norms = |rows: &[f32]| -> Vec<f32> {
                rows.par_chunks_exact(d)
                    .map(|v| kernels::dot(v, v))
                    .collect()
            };
            let qn = if l2 { norms(qrows) } else { Vec::new() };
            for r0 in (0..n).step_by(rblock) {
                let r1 = (r0 + rblock).min(n);
                let refs = self.storage.block(d, r0, r1, &mut buf);
                self.block_dots(qrows, refs, &mut scores);
                let rn = if l2 { norms(refs) } else { Vec::new() };
                let nr = r1 - r0;
                tops.par_iter_mut()
                    .zip(scores.par_chunks(nr))
                    .enumerate()
                    .for_each(|(i, (top, row))| {
                        if l2 {
                            let qq = qn[i];
                            scan_row(top, r0, row, |j, dot| -(qq + rn[j] - 2.0 * dot).max(0.0));
                        } else {
                            scan_row(top, r0, row, |_, dot| dot);
                        }
                    });
            }
            results.extend(tops.into_iter().map(TopK::into_sorted));
        }
        results
    }

    /// Loads an index saved by [`FlatIndex::save`].
    pub fn load(path: &Path) -> Result<Self> {
        crate::persist::load_flat(path)
    }

    /// Saves the index in this crate's own format (see the crate README): written to a temporary
    /// file, synced, then renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::persist::save_flat(self, path)
    }

    /// Errors unless the stored model id equals `expected`.
    pub fn check_model_id(&self, expected: &str) -> Result<()> {
        crate::persist::check_model(&self.model_id, expected)
    }
}

/// Offers row `r0 + j` with score `score(j, row[j])` to `top`, for each `j`.
#[inline(always)]
fn scan_row(top: &mut TopK, r0: usize, row: &[f32], score: impl Fn(usize, f32) -> f32) {
    let mut bar = top.bar_score();
    for (j, &value) in row.iter().enumerate() {
        let s = score(j, value);
        if s >= bar {
            top.push(r0 + j, s);
            bar = top.bar_score();
        }
    }
}

impl VectorIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }
    fn len(&self) -> usize {
        self.storage.rows(self.dim)
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
        let rows = check_rows(vectors, self.dim)?;
        if rows != ids.len() {
            return Err(Error::IdCountMismatch {
                ids: ids.len(),
                vectors: rows,
            });
        }
        if (self.len() as u64).saturating_add(rows as u64) > i64::MAX as u64 / self.dim as u64 {
            return Err(Error::TooLarge(format!("{} + {rows} vectors", self.len())));
        }
        self.ids.check_new(ids)?;
        if let Storage::Mapped { .. } = self.storage {
            self.storage = Storage::Owned(self.vectors());
        }
        if let Storage::Owned(v) = &mut self.storage {
            v.extend_from_slice(&self.metric.prepared(vectors, self.dim));
        }
        self.ids.extend(ids)
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        if queries.len() == self.dim {
            return Ok(vec![self.search_one(queries, k)?]);
        }
        let nq = check_queries(queries, self.dim, k)?;
        let queries = self.metric.prepared(queries, self.dim);
        Ok(self.search_batch(&queries, nq, k))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Small blocks so that the query and reference block loops both run several times.
    #[test]
    fn blocked_search_equals_scan() {
        let (d, n, nq, k) = (7, 1000, 30, 12);
        let data: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919 % 97) as f32 / 97.0) - 0.5)
            .collect();
        let queries: Vec<f32> = (0..nq * d)
            .map(|i| ((i * 104729 % 89) as f32 / 89.0) - 0.5)
            .collect();
        for metric in [Metric::InnerProduct, Metric::L2] {
            let ids: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
            let index = FlatIndex::from_vectors(d, metric, &ids, &data).unwrap();
            let blocked = index.search_blocked(&queries, nq, k, 7, 256);
            for (q, got) in queries.chunks_exact(d).zip(&blocked) {
                let want = index.search_one(q, k).unwrap();
                assert_eq!(got.len(), k);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g.score - w.score).abs() < 1e-5, "{metric}: {g:?} vs {w:?}");
                }
            }
        }
    }
}
