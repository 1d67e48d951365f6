//! Exact search over scalar-quantised vectors (FAISS's `IndexScalarQuantizer`).

use rayon::prelude::*;

use super::codec::{ScalarQuantizer, SqKind};
use super::storage::{PreparedQuery, SqCodes};
use crate::error::{Error, Result};
use crate::ids::IdMap;
use crate::topk::TopK;
use crate::{Hit, MAX_DIM, Metric, VectorIndex, check_queries, check_query, check_rows};

/// Rows per block of the batched scan: a block of 768-byte codes (~384 KiB) stays in the L2
/// cache while every query group of a thread passes over it.
const ROW_BLOCK: usize = 512;
/// Rows per task of the single-query scan.
const SCAN_BLOCK: usize = 4096;

/// Options of a [`FlatSqIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SqOptions {
    /// 8-bit codes (default) or half floats.
    pub kind: SqKind,
}

/// Exact search over scalar-quantised vectors, one byte (8-bit) or two (fp16) a dimension
/// instead of four: FAISS's `IndexScalarQuantizer` with `QT_8bit` or `QT_fp16`, whose files
/// (`IxSQ`) it reads and writes ([`FlatSqIndex::read_faiss`], [`FlatSqIndex::write_faiss`]).
/// Scores are computed on the codes (see [`SqCodes`]); batched queries are scanned four at a
/// time over blocks of codes, split across the rayon pool.
///
/// ```
/// use vecindex::sq::{FlatSqIndex, SqOptions};
/// use vecindex::{Metric, VectorIndex};
/// let data = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
/// let index = FlatSqIndex::build(2, Metric::InnerProduct, SqOptions::default(),
///                                &["a", "b", "c"], &data)?;
/// let hits = index.search(&[0.0, 1.0], 2)?;
/// assert_eq!(index.id(hits[0][0].row), Some("b"));
/// assert_eq!(index.id(hits[0][1].row), Some("c"));
/// # Ok::<(), vecindex::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FlatSqIndex {
    pub(crate) codes: SqCodes,
    pub(crate) ids: IdMap,
    pub(crate) model_id: String,
}

impl FlatSqIndex {
    /// An empty index whose quantiser is trained on `training` (row-major; unused for fp16).
    pub fn train(dim: usize, metric: Metric, options: SqOptions, training: &[f32]) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension(dim));
        }
        // Cosine compares the normalised vectors: train on what will be encoded.
        let training = metric.prepared(training, dim);
        let sq = ScalarQuantizer::train(options.kind, dim, &training)?;
        Ok(Self::with_quantizer(sq, metric))
    }

    /// An empty index with a given quantiser.
    pub fn with_quantizer(sq: ScalarQuantizer, metric: Metric) -> Self {
        Self {
            codes: SqCodes::new(sq, metric),
            ids: IdMap::new(),
            model_id: String::new(),
        }
    }

    /// Trains the quantiser on `vectors` and adds them, as FAISS's `train` then `add`.
    pub fn build<S: AsRef<str>>(
        dim: usize,
        metric: Metric,
        options: SqOptions,
        ids: &[S],
        vectors: &[f32],
    ) -> Result<Self> {
        let mut index = Self::train(dim, metric, options, vectors)?;
        index.add(ids, vectors)?;
        Ok(index)
    }

    /// An index over codes already encoded, with their ids (one per code).
    pub fn from_parts(codes: SqCodes, ids: IdMap) -> Result<Self> {
        if ids.len() != codes.len() {
            return Err(Error::IdCountMismatch {
                ids: ids.len(),
                vectors: codes.len(),
            });
        }
        Ok(Self {
            codes,
            ids,
            model_id: String::new(),
        })
    }

    /// Records the model id the vectors came from.
    pub fn with_model_id(mut self, model_id: impl Into<String>) -> Self {
        self.model_id = model_id.into();
        self
    }

    /// The codes and the quantiser.
    pub fn codes(&self) -> &SqCodes {
        &self.codes
    }

    /// The ids in row order.
    pub fn ids(&self) -> &IdMap {
        &self.ids
    }

    /// Bytes held by the codes and what their distances need (not counting the ids).
    pub fn memory_bytes(&self) -> usize {
        self.codes.memory_bytes()
    }

    /// The decoded vector of `row`.
    pub fn reconstruct(&self, row: usize) -> Option<Vec<f32>> {
        if row >= self.len() {
            return None;
        }
        let mut out = vec![0.0; self.dim()];
        self.codes
            .quantizer()
            .decode(self.codes.code(row), &mut out);
        Some(out)
    }

    /// Searches one query, the rows split across the rayon pool.
    pub fn search_one(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        check_query(query, self.dim(), k)?;
        let query = self.metric().prepared(query, self.dim());
        Ok(self.scan_one(&query, k))
    }

    fn scan_one(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let q = self.codes.prepare_unchecked(query);
        let n = self.len();
        let part = |start: usize| {
            let mut top = TopK::new(k);
            let mut bar = top.bar_score();
            for row in start..(start + SCAN_BLOCK).min(n) {
                let s = self.codes.score(&q, row);
                // A NaN (sums overflowing on huge values in a loaded file) is offered too, so
                // that every search answers min(k, len) hits.
                if s >= bar || s.is_nan() {
                    top.push(row, s);
                    bar = top.bar_score();
                }
            }
            top
        };
        let parts: Vec<TopK> = (0..n)
            .step_by(SCAN_BLOCK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(part)
            .collect();
        let mut all = TopK::new(k);
        for p in parts {
            all.merge(p);
        }
        all.into_sorted()
    }

    /// Batched scan: the queries are split into one contiguous share per thread; each thread
    /// walks the codes block by block and passes its queries over each block four at a time,
    /// so the codes are read from memory once per thread, not once per query.
    fn search_batch(&self, queries: &[f32], k: usize) -> Vec<Vec<Hit>> {
        let d = self.dim();
        let prepared: Vec<PreparedQuery> = queries
            .par_chunks_exact(d)
            .map(|q| self.codes.prepare_unchecked(q))
            .collect();
        let threads = rayon::current_num_threads().max(1);
        let share = prepared.len().div_ceil(threads).next_multiple_of(4).max(4);
        prepared
            .par_chunks(share)
            .flat_map_iter(|qs| self.scan_group(qs, k))
            .collect()
    }

    fn scan_group(&self, qs: &[PreparedQuery], k: usize) -> Vec<Vec<Hit>> {
        let n = self.len();
        let mut tops: Vec<TopK> = qs.iter().map(|_| TopK::new(k)).collect();
        for r0 in (0..n).step_by(ROW_BLOCK) {
            let r1 = (r0 + ROW_BLOCK).min(n);
            for (group, tops) in qs.chunks(4).zip(tops.chunks_mut(4)) {
                if let [a, b, c, e] = group {
                    let w = [a.weights(), b.weights(), c.weights(), e.weights()];
                    let mut bars = [0.0f32; 4];
                    for (bar, t) in bars.iter_mut().zip(tops.iter()) {
                        *bar = t.bar_score();
                    }
                    for row in r0..r1 {
                        let raw = self.codes.raw_dot_x4(w, self.codes.code(row));
                        for j in 0..4 {
                            let s = self.codes.finish(&group[j], row, raw[j]);
                            if s >= bars[j] || s.is_nan() {
                                tops[j].push(row, s);
                                bars[j] = tops[j].bar_score();
                            }
                        }
                    }
                } else {
                    for (q, top) in group.iter().zip(tops.iter_mut()) {
                        let mut bar = top.bar_score();
                        for row in r0..r1 {
                            let s = self.codes.score(q, row);
                            if s >= bar || s.is_nan() {
                                top.push(row, s);
                                bar = top.bar_score();
                            }
                        }
                    }
                }
            }
        }
        tops.into_iter().map(TopK::into_sorted).collect()
    }
}

impl VectorIndex for FlatSqIndex {
    fn dim(&self) -> usize {
        self.codes.quantizer().dim()
    }
    fn len(&self) -> usize {
        self.codes.len()
    }
    fn metric(&self) -> Metric {
        self.codes.metric()
    }
    fn id(&self, row: usize) -> Option<&str> {
        self.ids.id(row)
    }
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn add<S: AsRef<str>>(&mut self, ids: &[S], vectors: &[f32]) -> Result<()> {
        let rows = check_rows(vectors, self.dim())?;
        if rows != ids.len() {
            return Err(Error::IdCountMismatch {
                ids: ids.len(),
                vectors: rows,
            });
        }
        self.ids.check_new(ids)?;
        let vectors = self.metric().prepared(vectors, self.dim());
        self.codes.push(&vectors)?;
        self.ids.extend(ids)
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let nq = check_queries(queries, self.dim(), k)?;
        let queries = &*self.metric().prepared(queries, self.dim());
        if nq == 1 {
            return Ok(vec![self.scan_one(queries, k)]);
        }
        Ok(self.search_batch(queries, k))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn data(n: usize, d: usize, seed: usize) -> Vec<f32> {
        (0..n * d)
            .map(|i| (((i + seed) * 7919 % 1009) as f32 / 1009.0) - 0.5)
            .collect()
    }

    /// The batched scan (groups of four and the leftover singles) equals the one-query scan,
    /// and both equal the scores of the decoded vectors, for both kinds and metrics.
    #[test]
    fn batched_scan_equals_single_scan_and_decoded_scores() {
        let (d, n, nq, k) = (37, 1300, 11, 9);
        let x = data(n, d, 0);
        let q = data(nq, d, 5);
        let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        for kind in [SqKind::Sq8, SqKind::Fp16] {
            for metric in [Metric::InnerProduct, Metric::L2] {
                let index = FlatSqIndex::build(d, metric, SqOptions { kind }, &ids, &x).unwrap();
                let batched = index.search(&q, k).unwrap();
                for (qi, got) in batched.iter().enumerate() {
                    let qv = &q[qi * d..(qi + 1) * d];
                    let one = index.search_one(qv, k).unwrap();
                    assert_eq!(got.len(), k);
                    for (g, o) in got.iter().zip(&one) {
                        assert!((g.score - o.score).abs() < 1e-4, "{kind} {metric}");
                        let decoded = index.reconstruct(g.row).unwrap();
                        let want = metric.score(qv, &decoded);
                        assert!(
                            (g.score - want).abs() < 1e-4,
                            "{kind} {metric}: {} vs {want}",
                            g.score
                        );
                    }
                }
            }
        }
    }

    /// With cosine, vectors and queries of any length rank as the f32 flat index's cosine does
    /// (the codes hold the normalised vectors), and scores are cosines.
    #[test]
    fn cosine_normalises_vectors_and_queries() {
        let (d, n, nq, k) = (24, 400, 7, 5);
        // Rows of very different lengths.
        let x: Vec<f32> = data(n, d, 3)
            .chunks(d)
            .enumerate()
            .flat_map(|(i, r)| r.iter().map(move |v| v * (1.0 + (i % 13) as f32 * 5.0)))
            .collect();
        let q: Vec<f32> = data(nq, d, 9).iter().map(|v| v * 40.0).collect();
        let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let exact = crate::FlatIndex::from_vectors(d, Metric::Cosine, &ids, &x).unwrap();
        let want = exact.search(&q, k).unwrap();
        let index = FlatSqIndex::build(
            d,
            Metric::Cosine,
            SqOptions { kind: SqKind::Fp16 },
            &ids,
            &x,
        )
        .unwrap();
        let got = index.search(&q, k).unwrap();
        for (qi, (g, w)) in got.iter().zip(&want).enumerate() {
            // fp16 codes may swap near-ties: the row found first is as good as the best one
            // by the exact cosine, to fp16's precision.
            let qv = &q[qi * d..(qi + 1) * d];
            let found = Metric::Cosine.score(qv, &x[g[0].row * d..(g[0].row + 1) * d]);
            assert!(
                (found - w[0].score).abs() < 2e-3,
                "{found} vs {}",
                w[0].score
            );
            for h in g {
                assert!(
                    h.score <= 1.0 + 1e-3 && h.score >= -1.0 - 1e-3,
                    "{}",
                    h.score
                );
            }
        }
    }
}
