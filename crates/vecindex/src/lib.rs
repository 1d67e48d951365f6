#![doc = include_str!("../README.md")]

mod any;
mod choose;
mod error;
mod faiss_bin;
pub mod faiss_io;
mod faiss_meta;
mod flat;
mod hnsw;
mod huge_pages;
mod ids;
pub mod ivf;
pub mod kernels;
mod matmul;
pub mod npy;
mod persist;
pub mod rerank;
pub mod sq;
mod topk;
#[cfg(feature = "torch")]
pub mod torch_search;

pub use any::AnyIndex;
pub use choose::{
    FLAT_UP_TO, ID_BYTES, IndexType, Plan, choose_kind, estimate_bytes, ivfpq_options_for,
};
pub use error::{Error, Result};
pub use flat::FlatIndex;
#[cfg(feature = "hnsw-rs-compare")]
pub use hnsw::HnswRsSearcher;
pub use hnsw::{HnswIndex, HnswParams, HnswSqIndex, MAX_EF, MAX_M};
pub use ids::IdMap;
pub use persist::{IndexKind, peek_kind};
/// libtorch's bindings, whose `Device` and `Kind` [`torch_search::TorchSearchOptions`] takes.
#[cfg(feature = "torch")]
pub use tch;

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
    /// Cosine similarity: vectors are normalised to unit length when added and queries when
    /// searched (zero vectors stay zero), then compared by inner product; the score is the
    /// cosine. In FAISS files, an `IndexFlatIP` of the normalised vectors.
    Cosine,
}

impl Metric {
    /// FAISS's `metric_type` code (0 inner product, also for cosine; 1 L2).
    pub fn faiss_code(self) -> i32 {
        match self {
            Metric::InnerProduct | Metric::Cosine => 0,
            Metric::L2 => 1,
        }
    }

    /// The value FAISS would report for a hit with this score: the inner product itself (the
    /// cosine), or the squared L2 distance (`-score`).
    pub fn faiss_distance(self, score: f32) -> f32 {
        match self {
            Metric::InnerProduct | Metric::Cosine => score,
            Metric::L2 => -score,
        }
    }

    /// The score of two vectors computed directly (no index): inner product, minus squared L2,
    /// or the cosine (the inner product of both normalised as an index normalises them; 0 when
    /// either is zero).
    pub fn score(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::InnerProduct => kernels::dot(a, b),
            Metric::L2 => -kernels::l2_squared(a, b),
            Metric::Cosine => {
                let (mut a, mut b) = (a.to_vec(), b.to_vec());
                kernels::normalise(&mut a);
                kernels::normalise(&mut b);
                kernels::dot(&a, &b)
            }
        }
    }

    /// `rows` (row-major, `dim` floats each) as an index stores and compares them: normalised
    /// for cosine, else as they are.
    pub(crate) fn prepared(self, rows: &[f32], dim: usize) -> std::borrow::Cow<'_, [f32]> {
        match self {
            Metric::Cosine => {
                let mut v = rows.to_vec();
                v.chunks_exact_mut(dim).for_each(kernels::normalise);
                std::borrow::Cow::Owned(v)
            }
            Metric::InnerProduct | Metric::L2 => std::borrow::Cow::Borrowed(rows),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Metric::InnerProduct => "ip",
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
        })
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ip" | "inner_product" => Ok(Metric::InnerProduct),
            "l2" => Ok(Metric::L2),
            "cosine" => Ok(Metric::Cosine),
            other => Err(Error::Unsupported(format!(
                "metric {other:?} (use ip, l2 or cosine)"
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
    /// Similarity: inner product, cosine, or minus the squared L2 distance.
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
