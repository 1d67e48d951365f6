//! Vector indexes for embedding search: an exact [`FlatIndex`] that reads and writes FAISS's flat
//! index files, and an approximate [`HnswIndex`] built on `hnsw_rs`.
//!
//! Both implement [`VectorIndex`]: add vectors with string ids, search a batch of queries for the
//! `k` best matches. Scores are similarities (greater is closer): the inner product for
//! [`Metric::InnerProduct`], minus the squared distance for [`Metric::L2`]. Results are sorted by
//! score with [`f32::total_cmp`], ties broken by insertion order, and hold `min(k, len)` hits.
//!
//! ```
//! use vecindex::{FlatIndex, Metric, VectorIndex};
//! let mut index = FlatIndex::new(2, Metric::InnerProduct)?;
//! index.add(&["R000000", "R000001"], &[1.0, 0.0, 0.0, 1.0])?;
//! let hits = index.search(&[0.9, 0.1], 1)?;
//! assert_eq!(index.id(hits[0][0].row), Some("R000000"));
//! # Ok::<(), vecindex::Error>(())
//! ```

mod error;
pub mod faiss_io;
mod flat;
mod hnsw;
mod hnsw_graph;
mod huge_pages;
mod ids;
pub mod kernels;
mod persist;
mod topk;

pub use error::{Error, Result};
pub use flat::FlatIndex;
#[doc(hidden)]
pub use hnsw::HnswRsSearcher;
pub use hnsw::{HnswIndex, HnswParams, MAX_EF, MAX_M};
pub use ids::IdMap;
pub use persist::{IndexKind, peek_kind};

/// Largest accepted dimension (FAISS's own limit, 2^20).
pub const MAX_DIM: usize = 1 << 20;

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Inner product; the score is the inner product (FAISS `METRIC_INNER_PRODUCT`, `IndexFlatIP`).
    InnerProduct,
    /// Squared Euclidean distance; the score is minus the squared distance (FAISS `METRIC_L2`,
    /// `IndexFlatL2`, which reports squared distances).
    L2,
}

impl Metric {
    /// FAISS's `metric_type` code (0 inner product, 1 L2).
    pub fn faiss_code(self) -> i32 {
        match self {
            Metric::InnerProduct => 0,
            Metric::L2 => 1,
        }
    }

    /// The value FAISS would report for a hit with this score: the inner product itself, or the
    /// squared L2 distance (`-score`).
    pub fn faiss_distance(self, score: f32) -> f32 {
        match self {
            Metric::InnerProduct => score,
            Metric::L2 => -score,
        }
    }

    /// The score of two vectors computed directly (no index): inner product or minus squared L2.
    pub fn score(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::InnerProduct => kernels::dot(a, b),
            Metric::L2 => -kernels::l2_squared(a, b),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Metric::InnerProduct => "ip",
            Metric::L2 => "l2",
        })
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ip" | "inner_product" | "cosine" => Ok(Metric::InnerProduct),
            "l2" => Ok(Metric::L2),
            other => Err(Error::Unsupported(format!(
                "metric {other:?} (use ip or l2)"
            ))),
        }
    }
}

/// One search result: the row of the matched vector (its insertion position; the external id is
/// [`VectorIndex::id`]`(row)`) and its similarity score (greater is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row of the matched vector, in insertion order.
    pub row: usize,
    /// Similarity: inner product, or minus the squared L2 distance.
    pub score: f32,
}

/// What every index offers. Queries and vectors are passed as one row-major `&[f32]` buffer of
/// `n * dim` floats.
pub trait VectorIndex {
    /// Dimension of the vectors.
    fn dim(&self) -> usize;
    /// Number of vectors.
    fn len(&self) -> usize;
    /// Whether the index holds no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// How vectors are compared.
    fn metric(&self) -> Metric;
    /// The external id of `row`.
    fn id(&self, row: usize) -> Option<&str>;
    /// The model id the vectors came from (empty when unknown).
    fn model_id(&self) -> &str;
    /// Adds `ids.len()` vectors. Ids must be new, distinct, non-empty and free of line breaks;
    /// vectors must be finite. On error nothing is added.
    fn add<S: AsRef<str>>(&mut self, ids: &[S], vectors: &[f32]) -> Result<()>
    where
        Self: Sized;
    /// Searches a batch of queries; one result list per query, each `min(k, len)` hits best
    /// first.
    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>>;
}

/// Checks a row-major buffer against `dim`, and that every value is finite. Returns the row count.
pub(crate) fn check_rows(data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(if dim == 0 {
            Error::InvalidDimension(0)
        } else {
            Error::RaggedInput {
                len: data.len(),
                dim,
            }
        });
    }
    if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { row: pos / dim });
    }
    Ok(data.len() / dim)
}

/// Checks one query vector.
pub(crate) fn check_query(query: &[f32], dim: usize, k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::ZeroK);
    }
    if query.len() != dim {
        return Err(Error::DimensionMismatch {
            expected: dim,
            got: query.len(),
        });
    }
    if query.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite { row: 0 });
    }
    Ok(())
}

/// Checks a query batch; returns the number of queries.
pub(crate) fn check_queries(queries: &[f32], dim: usize, k: usize) -> Result<usize> {
    if k == 0 {
        return Err(Error::ZeroK);
    }
    check_rows(queries, dim)
}
