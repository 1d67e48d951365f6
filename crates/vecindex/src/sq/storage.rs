//! Scalar-quantised vectors and the distances on them, apart from any index structure: what a
//! flat scan and a graph both need (encode, query-to-code, code-to-code).
//!
//! Scores follow the crate's convention (greater is closer) and equal FAISS's distances on the
//! decoded vectors `x̂` up to float rounding: the inner product `q · x̂`, or minus the squared
//! distance `|q − x̂|²`. They are computed on the codes: for 8-bit codes
//! `x̂[i] = base[i] + step[i] · c[i]` with `base = vmin + 0.5 · vdiff / 255` and
//! `step = vdiff / 255`, so `q · x̂ = Σ q·base + Σ (q · step)[i] · c[i]`: one constant and one
//! weighted sum of the bytes per query. Half floats are converted in the kernel. L2 uses
//! `|q|² − 2 q · x̂ + |x̂|²`, with `|x̂|²` computed once per vector when it is added, and is
//! clamped at 0 (rounding can take it below).

use rayon::prelude::*;

use super::codec::{ScalarQuantizer, SqKind};
use super::kernels::sq_kernels;
use crate::error::{Error, Result};
use crate::{Metric, check_rows, kernels};

/// A query prepared for scoring against codes ([`SqCodes::prepare`]).
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    /// Per-dimension weights of the code values.
    weights: Vec<f32>,
    /// The part of `q · x̂` that does not depend on the code.
    constant: f32,
    /// `|q|²` (L2 only).
    norm: f32,
}

impl PreparedQuery {
    pub(crate) fn weights(&self) -> &[f32] {
        &self.weights
    }
}

/// Codes of many vectors under one [`ScalarQuantizer`] and [`Metric`], in insertion order.
///
/// ```
/// use vecindex::Metric;
/// use vecindex::sq::{ScalarQuantizer, SqCodes, SqKind};
/// let data = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
/// let sq = ScalarQuantizer::train(SqKind::Sq8, 2, &data)?;
/// let mut codes = SqCodes::new(sq, Metric::InnerProduct);
/// codes.push(&data)?;
/// let q = codes.prepare(&[1.0, 0.0])?;
/// assert!((codes.score(&q, 0) - 1.0).abs() < 0.01);
/// let mut scratch = Vec::new();
/// assert!((codes.code_score(codes.code(0), codes.code(2), &mut scratch) - 0.6).abs() < 0.01);
/// # Ok::<(), vecindex::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SqCodes {
    sq: ScalarQuantizer,
    metric: Metric,
    codes: Vec<u8>,
    /// `|x̂|²` per vector (L2 only).
    norms: Vec<f32>,
    /// Sq8: the affine decode (`x̂ = base + step · c`).
    base: Vec<f32>,
    step: Vec<f32>,
}

impl SqCodes {
    /// No vectors yet.
    pub fn new(sq: ScalarQuantizer, metric: Metric) -> Self {
        let (base, step) = match sq.kind() {
            SqKind::Sq8 => sq.affine(),
            SqKind::Fp16 => (Vec::new(), Vec::new()),
        };
        Self {
            sq,
            metric,
            codes: Vec::new(),
            norms: Vec::new(),
            base,
            step,
        }
    }

    /// Codes already encoded by the same quantiser (`code_size()` bytes each), e.g. read from
    /// a file.
    pub fn from_codes(sq: ScalarQuantizer, metric: Metric, codes: Vec<u8>) -> Result<Self> {
        let size = sq.code_size();
        if !codes.len().is_multiple_of(size) {
            return Err(Error::RaggedInput {
                len: codes.len(),
                dim: size,
            });
        }
        let mut out = Self::new(sq, metric);
        out.codes = codes;
        out.push_norms(0);
        Ok(out)
    }

    /// Appends `|x̂|²` of the codes from row `from` on (L2 only), rows in parallel.
    fn push_norms(&mut self, from: usize) {
        if self.metric != Metric::L2 {
            return;
        }
        let (size, d) = (self.sq.code_size(), self.sq.dim());
        let sq = &self.sq;
        let new: Vec<f32> = self.codes[from * size..]
            .par_chunks_exact(size)
            .with_min_len(256)
            .map_init(
                || vec![0.0; d],
                |buf, code| {
                    sq.decode(code, buf);
                    kernels::dot(buf, buf)
                },
            )
            .collect();
        self.norms.extend(new);
    }

    /// The quantiser.
    pub fn quantizer(&self) -> &ScalarQuantizer {
        &self.sq
    }

    /// How vectors are compared.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.codes.len() / self.sq.code_size()
    }

    /// Whether there is no vector.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// All codes, row after row.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// The code of `row` (panics past the end, like slice indexing; rows come from this store).
    pub fn code(&self, row: usize) -> &[u8] {
        let s = self.sq.code_size();
        &self.codes[row * s..(row + 1) * s]
    }

    /// Bytes held: codes and per-vector norms.
    pub fn memory_bytes(&self) -> usize {
        self.codes.len() + 4 * self.norms.len() + 4 * (self.base.len() + self.step.len())
    }

    /// Encodes and appends row-major `vectors` (finite values).
    pub fn push(&mut self, vectors: &[f32]) -> Result<()> {
        let n = check_rows(vectors, self.sq.dim())?;
        let from = self.len();
        // A graph over these codes reads them at random: huge pages, as its f32 rows get.
        crate::huge_pages::reserve(&mut self.codes, n * self.sq.code_size());
        self.sq.encode(vectors, &mut self.codes)?;
        self.push_norms(from);
        Ok(())
    }

    /// Prepares `query` (`dim` finite floats) for [`SqCodes::score`].
    pub fn prepare(&self, query: &[f32]) -> Result<PreparedQuery> {
        crate::check_query(query, self.sq.dim(), 1)?;
        Ok(self.prepare_unchecked(query))
    }

    pub(crate) fn prepare_unchecked(&self, query: &[f32]) -> PreparedQuery {
        let norm = if self.metric == Metric::L2 {
            kernels::dot(query, query)
        } else {
            0.0
        };
        match self.sq.kind() {
            SqKind::Sq8 => PreparedQuery {
                weights: query.iter().zip(&self.step).map(|(q, s)| q * s).collect(),
                constant: kernels::dot(query, &self.base),
                norm,
            },
            SqKind::Fp16 => PreparedQuery {
                weights: query.to_vec(),
                constant: 0.0,
                norm,
            },
        }
    }

    /// The raw weighted sum over one code (`q · x̂` less the constant).
    #[inline]
    pub(crate) fn raw_dot(&self, q: &PreparedQuery, code: &[u8]) -> f32 {
        let k = sq_kernels();
        match self.sq.kind() {
            SqKind::Sq8 => (k.dot_u8)(&q.weights, code),
            SqKind::Fp16 => (k.dot_f16)(&q.weights, code),
        }
    }

    /// Four prepared queries against one code.
    #[inline]
    pub(crate) fn raw_dot_x4(&self, w: [&[f32]; 4], code: &[u8]) -> [f32; 4] {
        let k = sq_kernels();
        match self.sq.kind() {
            SqKind::Sq8 => (k.dot_u8_x4)(w, code),
            SqKind::Fp16 => (k.dot_f16_x4)(w, code),
        }
    }

    /// The score of a raw weighted sum for `row`.
    #[inline]
    pub(crate) fn finish(&self, q: &PreparedQuery, row: usize, raw: f32) -> f32 {
        let dot = q.constant + raw;
        match self.metric {
            Metric::InnerProduct | Metric::Cosine => dot,
            Metric::L2 => -(q.norm - 2.0 * dot + self.norms[row]).max(0.0),
        }
    }

    /// The score of a prepared query against the vector of `row` (`row < len()`).
    #[inline]
    pub fn score(&self, q: &PreparedQuery, row: usize) -> f32 {
        self.finish(q, row, self.raw_dot(q, self.code(row)))
    }

    /// The score of two codes (as FAISS's symmetric distance: both decoded). `scratch` is
    /// reused between calls.
    pub fn code_score(&self, a: &[u8], b: &[u8], scratch: &mut Vec<f32>) -> f32 {
        let d = self.sq.dim();
        scratch.resize(2 * d, 0.0);
        let (x, y) = scratch.split_at_mut(d);
        self.sq.decode(a, x);
        self.sq.decode(b, y);
        self.metric.score(x, y)
    }
}
