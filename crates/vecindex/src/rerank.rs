//! Exact re-ranking of a compressed index's candidates: search for `k × factor` candidates,
//! score each with its full-precision vector read from a memory-mapped `.npy` (row = the
//! index's row), keep the best `k`.

use std::convert::Infallible;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::npy::NpyF32;
use crate::topk::best_first;
use crate::{Hit, Metric, VectorIndex};

/// Options of [`Reranked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RerankOptions {
    /// Candidates fetched per result: `k × factor` (at least 1).
    pub factor: usize,
}

impl Default for RerankOptions {
    fn default() -> Self {
        Self { factor: 10 }
    }
}

/// A compressed index whose results are re-scored exactly with the f32 vectors of a `.npy`
/// file (row `i` of the file = row `i` of the index). Scores are then exact (the metric on the
/// original vectors), so they equal [`crate::FlatIndex`]'s for the same rows.
///
/// ```no_run
/// use vecindex::npy::NpyF32;
/// use vecindex::rerank::{RerankOptions, Reranked};
/// use vecindex::sq::FlatSqIndex;
/// use vecindex::VectorIndex;
/// let index = FlatSqIndex::read_faiss(std::path::Path::new("refs.sq8"), Default::default())?;
/// let vectors = NpyF32::open(std::path::Path::new("refs.npy"))?;
/// let exact = Reranked::new(index, vectors, RerankOptions { factor: 4 })?;
/// let hits = exact.search(&vec![0.0; exact.dim()], 10)?;
/// # Ok::<(), vecindex::Error>(())
/// ```
#[derive(Debug)]
pub struct Reranked<I> {
    index: I,
    vectors: NpyF32,
    options: RerankOptions,
}

impl<I: VectorIndex> Reranked<I> {
    /// Pairs `index` with its vectors: the file must have the index's dimension and at least
    /// as many rows.
    pub fn new(index: I, vectors: NpyF32, options: RerankOptions) -> Result<Self> {
        if vectors.cols() != index.dim() {
            return Err(Error::DimensionMismatch {
                expected: index.dim(),
                got: vectors.cols(),
            });
        }
        if vectors.rows() < index.len() {
            return Err(Error::Unsupported(format!(
                "{} holds {} vectors, the index {}",
                vectors.path().display(),
                vectors.rows(),
                index.len()
            )));
        }
        Ok(Self {
            index,
            vectors,
            options,
        })
    }

    /// The compressed index.
    pub fn inner(&self) -> &I {
        &self.index
    }

    /// The compressed index, to change its search settings (e.g. `nprobe`).
    pub fn inner_mut(&mut self) -> &mut I {
        &mut self.index
    }

    /// Re-scores candidate lists (one per query) exactly and keeps the best `k` of each.
    pub fn rerank(&self, queries: &[f32], candidates: Vec<Vec<Hit>>, k: usize) -> Vec<Vec<Hit>> {
        let vectors = &self.vectors;
        let exact = rescore(
            self.index.metric(),
            self.index.dim(),
            queries,
            candidates,
            k,
            |row, v| {
                vectors.row_into(row, v);
                Ok::<(), Infallible>(())
            },
        );
        match exact {
            Ok(hits) => hits,
        }
    }
}

/// Re-scores candidate lists (one per query of the row-major `queries`) with the exact vectors
/// `row_into(row, out)` reads (`dim` floats) and keeps the best `k` of each, best first. For
/// vectors kept elsewhere than one `.npy` (a collection's shards); [`Reranked`] uses it with
/// its memory-mapped file. The first error a read returns is returned.
pub fn rescore<E: Send>(
    metric: Metric,
    dim: usize,
    queries: &[f32],
    candidates: Vec<Vec<Hit>>,
    k: usize,
    row_into: impl Fn(usize, &mut [f32]) -> std::result::Result<(), E> + Sync,
) -> std::result::Result<Vec<Vec<Hit>>, E> {
    queries
        .par_chunks_exact(dim)
        .zip(candidates)
        .map(|(q, cands)| {
            let mut v = vec![0.0; dim];
            let mut hits = Vec::with_capacity(cands.len());
            for h in cands {
                row_into(h.row, &mut v)?;
                hits.push(Hit {
                    row: h.row,
                    // + 0.0 turns −0.0 into 0.0, as the flat index's scores are.
                    score: metric.score(q, &v) + 0.0,
                });
            }
            hits.sort_unstable_by(best_first);
            hits.truncate(k);
            Ok(hits)
        })
        .collect()
}

impl<I: VectorIndex> VectorIndex for Reranked<I> {
    fn dim(&self) -> usize {
        self.index.dim()
    }
    fn len(&self) -> usize {
        self.index.len()
    }
    fn metric(&self) -> Metric {
        self.index.metric()
    }
    fn id(&self, row: usize) -> Option<&str> {
        self.index.id(row)
    }
    fn model_id(&self) -> &str {
        self.index.model_id()
    }
    /// Not supported: add to the inner index and the `.npy` file, then pair them again.
    fn add<S: AsRef<str>>(&mut self, _ids: &[S], _vectors: &[f32]) -> Result<()> {
        Err(Error::Unsupported(
            "adding through a re-ranked view (add to the index and the .npy, then pair them again)"
                .into(),
        ))
    }
    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let wide = k.saturating_mul(self.options.factor.max(1));
        let candidates = self.index.search(queries, wide)?;
        Ok(self.rerank(queries, candidates, k))
    }
}
