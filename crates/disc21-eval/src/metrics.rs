//! The DISC21 (Image Similarity Challenge 2021) metrics, as `facebookresearch/isc2021` defines
//! them, plus the accuracies the CLIP vs DINOv2 study reports.
//!
//! - **µAP** (micro average precision): the predictions of all queries are pooled and sorted by
//!   score, highest first; at equal score the wrong predictions come first (the pessimistic
//!   order, so a constant score cannot buy a good AP). With `TPᵢ` the true positives among the
//!   first `i` predictions and `P` the number of ground-truth pairs, `precisionᵢ = TPᵢ / i`,
//!   `recallᵢ = TPᵢ / P` and `µAP = Σᵢ (recallᵢ − recallᵢ₋₁) · precisionᵢ`.
//! - **recall@P90**: the highest `recallᵢ` among the operating points with `precisionᵢ ≥ 0.9`
//!   (0 when no operating point reaches that precision; [`Metrics::threshold_at_p90`] is then
//!   `None`).
//! - **recall@1 / recall@10**: per ground-truth pair `(q, r)`, the rank of `r` among the
//!   predictions of `q` is the number of *other* predictions of `q` whose score is at least
//!   that of `r` (ties count against); a pair without a prediction is never found.
//! - **accuracy / top-k accuracy** (the study's): per query that has a true reference, the
//!   query is correct at `k` when fewer than `k` wrong predictions of that query score at least
//!   as high as its best true reference. With one reference per query (DISC21) accuracy equals
//!   recall@1.
//!
//! Queries without a true reference (empty ground-truth rows) and predictions for queries the
//! ground truth does not list only ever count as wrong predictions in µAP and recall@P90.
//! Two predictions of the same `(query, reference)` pair are an error.

mod csv;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub(crate) use csv::write_atomic as csv_write_atomic;
pub use csv::{
    parse_ground_truth, parse_predictions, read_ground_truth, read_predictions, write_ground_truth,
    write_predictions,
};

/// The precision at which [`Metrics::recall_at_p90`] is taken.
pub const P90: f64 = 0.9;

/// What can go wrong while reading or scoring predictions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A file could not be read or written.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV row is malformed (too few columns, an empty id, a score that is not a number).
    #[error("{}:{line}: {message}", .path.display())]
    Parse {
        /// The file (`-` for text parsed from memory).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The same `(query, reference)` pair appears twice.
    #[error("duplicate {what} ({query}, {reference}){}", .line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    Duplicate {
        /// `prediction` or `ground-truth pair`.
        what: &'static str,
        /// The query id.
        query: String,
        /// The reference id.
        reference: String,
        /// 1-based line number, when read from a file.
        line: Option<usize>,
    },
    /// A prediction has a NaN score.
    #[error("prediction ({query}, {reference}) has a NaN score")]
    NanScore {
        /// The query id.
        query: String,
        /// The reference id.
        reference: String,
    },
    /// The ground truth has no `(query, reference)` pair, so recall is undefined.
    #[error("the ground truth has no query with a true reference")]
    NoPositives,
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias of this module.
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

/// One predicted match: `query` is believed to be a copy of `reference`, with a similarity
/// `score` (greater = more similar).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prediction {
    /// Query image id, e.g. `Q00017`.
    pub query: String,
    /// Reference image id, e.g. `R012345`.
    pub reference: String,
    /// Similarity; greater is closer.
    pub score: f64,
}

impl Prediction {
    /// A prediction from its parts.
    pub fn new(query: impl Into<String>, reference: impl Into<String>, score: f64) -> Self {
        Self {
            query: query.into(),
            reference: reference.into(),
            score,
        }
    }
}

/// Ground truth: every query of the evaluation, in file order, with its true references (none
/// for a query that is not a copy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroundTruth {
    queries: Vec<String>,
    references: Vec<Vec<String>>,
    index: HashMap<String, usize>,
}

impl GroundTruth {
    /// An empty ground truth.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a ground truth from `(query, reference)` rows; `None` registers a query with no
    /// copy. A repeated pair is an error.
    pub fn from_rows<Q, R>(rows: impl IntoIterator<Item = (Q, Option<R>)>) -> Result<Self>
    where
        Q: Into<String>,
        R: Into<String>,
    {
        let mut gt = Self::new();
        for (query, reference) in rows {
            gt.add(query.into(), reference.map(Into::into), None)?;
        }
        Ok(gt)
    }

    /// Adds a row. `line` is only used in the error message.
    pub(crate) fn add(
        &mut self,
        query: String,
        reference: Option<String>,
        line: Option<usize>,
    ) -> Result<()> {
        let slot = match self.index.get(&query) {
            Some(&i) => i,
            None => {
                self.index.insert(query.clone(), self.queries.len());
                self.queries.push(query.clone());
                self.references.push(Vec::new());
                self.queries.len() - 1
            }
        };
        if let Some(reference) = reference {
            let refs = &mut self.references[slot];
            if refs.contains(&reference) {
                return Err(MetricsError::Duplicate {
                    what: "ground-truth pair",
                    query,
                    reference,
                    line,
                });
            }
            refs.push(reference);
        }
        Ok(())
    }

    /// All query ids, in the order they were first listed.
    pub fn queries(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.queries.iter().map(String::as_str)
    }

    /// The true references of `query` (empty when it is not a copy or not listed).
    pub fn references_of(&self, query: &str) -> &[String] {
        self.index
            .get(query)
            .map_or(&[], |&i| self.references[i].as_slice())
    }

    /// Whether `query` is listed (with or without a copy).
    pub fn contains_query(&self, query: &str) -> bool {
        self.index.contains_key(query)
    }

    /// Number of listed queries, with or without a copy.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether no query is listed.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Number of queries that have at least one true reference.
    pub fn n_queries_with_copy(&self) -> usize {
        self.references.iter().filter(|r| !r.is_empty()).count()
    }

    /// Number of `(query, reference)` pairs.
    pub fn n_pairs(&self) -> usize {
        self.references.iter().map(Vec::len).sum()
    }

    /// `(query, reference)` rows in order; a query with no copy yields one row with `None`.
    pub fn rows(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.queries
            .iter()
            .zip(&self.references)
            .flat_map(|(q, refs)| {
                let none = refs.is_empty().then_some((q.as_str(), None));
                none.into_iter()
                    .chain(refs.iter().map(move |r| (q.as_str(), Some(r.as_str()))))
            })
    }

    /// The ground truth restricted to the queries `keep` accepts (order kept).
    pub fn filter_queries(&self, mut keep: impl FnMut(&str, &[String]) -> bool) -> Self {
        let mut out = Self::new();
        for (q, refs) in self.queries.iter().zip(&self.references) {
            if keep(q, refs) {
                out.index.insert(q.clone(), out.queries.len());
                out.queries.push(q.clone());
                out.references.push(refs.clone());
            }
        }
        out
    }
}

/// Options of [`evaluate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalOptions {
    /// The `k` of [`Metrics::topk_accuracy`] (the study searched with k = 5).
    pub top_k: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { top_k: 5 }
    }
}

/// The precision–recall curve of the pooled predictions, one point per prediction in the
/// pessimistic order (by decreasing score).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrCurve {
    /// `TPᵢ / i`.
    pub precision: Vec<f64>,
    /// `TPᵢ / P`.
    pub recall: Vec<f64>,
    /// The score of prediction `i`.
    pub threshold: Vec<f64>,
}

impl PrCurve {
    /// About `max_points` `(recall, precision)` points of the curve for plotting: evenly spaced
    /// along the predictions, always keeping the first and the last.
    pub fn thinned(&self, max_points: usize) -> Vec<(f64, f64)> {
        let n = self.precision.len();
        if n == 0 {
            return Vec::new();
        }
        let step = n.div_ceil(max_points.max(1)).max(1);
        let mut out: Vec<(f64, f64)> = (0..n)
            .step_by(step)
            .map(|i| (self.recall[i], self.precision[i]))
            .collect();
        if !(n - 1).is_multiple_of(step) {
            out.push((self.recall[n - 1], self.precision[n - 1]));
        }
        out
    }
}

/// The scores of one set of predictions against one ground truth.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// The study's accuracy: fraction of the queries with a true reference whose first
    /// prediction is a true reference (ties against).
    pub accuracy: f64,
    /// Same, with a true reference among the first three.
    pub top3_accuracy: f64,
    /// Same, among the first [`Metrics::top_k`].
    pub topk_accuracy: f64,
    /// The `k` of [`Metrics::topk_accuracy`].
    pub top_k: usize,
    /// Micro average precision over all pooled predictions.
    pub micro_ap: f64,
    /// Highest recall at precision ≥ 0.9 (0 when never reached).
    pub recall_at_p90: f64,
    /// The score threshold of that operating point; `None` when precision 0.9 is never reached.
    pub threshold_at_p90: Option<f64>,
    /// Fraction of ground-truth pairs whose reference is ranked first (ties against).
    pub recall_at_1: f64,
    /// Fraction of ground-truth pairs whose reference is within the first 10.
    pub recall_at_10: f64,
    /// Queries with at least one true reference (the denominator of the accuracies).
    pub n_queries: usize,
    /// Queries in the ground truth, with or without a copy.
    pub n_gt_queries: usize,
    /// Ground-truth `(query, reference)` pairs (the denominator of recalls and µAP).
    pub n_gt_pairs: usize,
    /// Predictions scored.
    pub n_predictions: usize,
    /// Predictions that are true pairs.
    pub n_true_predictions: usize,
    /// The precision–recall curve behind µAP (not serialised: one point per prediction).
    #[serde(skip)]
    pub curve: PrCurve,
}

/// Scores `predictions` against `gt`. See the [module documentation](self) for the definitions.
///
/// ```
/// use disc21_eval::metrics::{EvalOptions, GroundTruth, Prediction, evaluate};
///
/// let gt = GroundTruth::from_rows([("Q1", Some("R1")), ("Q2", None)])?;
/// let preds = [
///     Prediction::new("Q1", "R1", 0.9),
///     Prediction::new("Q1", "R2", 0.5),
///     Prediction::new("Q2", "R3", 0.7),
/// ];
/// let m = evaluate(&gt, &preds, &EvalOptions::default())?;
/// assert_eq!(m.accuracy, 1.0);
/// assert_eq!(m.micro_ap, 1.0);
/// # Ok::<(), disc21_eval::metrics::MetricsError>(())
/// ```
pub fn evaluate(
    gt: &GroundTruth,
    predictions: &[Prediction],
    options: &EvalOptions,
) -> Result<Metrics> {
    if options.top_k == 0 {
        return Err(MetricsError::InvalidArgument(
            "top_k must be at least 1".into(),
        ));
    }
    let n_pairs = gt.n_pairs();
    if n_pairs == 0 {
        return Err(MetricsError::NoPositives);
    }
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(predictions.len());
    for p in predictions {
        if p.score.is_nan() {
            return Err(MetricsError::NanScore {
                query: p.query.clone(),
                reference: p.reference.clone(),
            });
        }
        if !seen.insert((&p.query, &p.reference)) {
            return Err(MetricsError::Duplicate {
                what: "prediction",
                query: p.query.clone(),
                reference: p.reference.clone(),
                line: None,
            });
        }
    }
    let correct: Vec<bool> = predictions
        .iter()
        .map(|p| gt.references_of(&p.query).contains(&p.reference))
        .collect();

    let curve = pr_curve(predictions, &correct, n_pairs);
    let micro_ap = average_precision(&curve);
    let (recall_at_p90, threshold_at_p90) = operating_point(&curve, P90);

    // Per-query lists of (score, correct).
    let mut by_query: HashMap<&str, Vec<(f64, &str)>> = HashMap::new();
    for p in predictions {
        by_query
            .entry(&p.query)
            .or_default()
            .push((p.score, &p.reference));
    }
    let empty = Vec::new();
    let (mut r1, mut r10) = (0usize, 0usize);
    let (mut a1, mut a3, mut ak) = (0usize, 0usize, 0usize);
    let mut n_queries = 0usize;
    for q in gt.queries() {
        let refs = gt.references_of(q);
        if refs.is_empty() {
            continue;
        }
        n_queries += 1;
        let preds = by_query.get(q).unwrap_or(&empty);
        for r in refs {
            if let Some(rank) = pair_rank(preds, r) {
                r1 += usize::from(rank < 1);
                r10 += usize::from(rank < 10);
            }
        }
        if let Some(rank) = query_rank(preds, refs) {
            a1 += usize::from(rank < 1);
            a3 += usize::from(rank < 3);
            ak += usize::from(rank < options.top_k);
        }
    }
    let frac = |num: usize, den: usize| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    Ok(Metrics {
        accuracy: frac(a1, n_queries),
        top3_accuracy: frac(a3, n_queries),
        topk_accuracy: frac(ak, n_queries),
        top_k: options.top_k,
        micro_ap,
        recall_at_p90,
        threshold_at_p90,
        recall_at_1: frac(r1, n_pairs),
        recall_at_10: frac(r10, n_pairs),
        n_queries,
        n_gt_queries: gt.len(),
        n_gt_pairs: n_pairs,
        n_predictions: predictions.len(),
        n_true_predictions: correct.iter().filter(|&&c| c).count(),
        curve,
    })
}

/// Precision and recall after each prediction in the pessimistic order.
fn pr_curve(predictions: &[Prediction], correct: &[bool], n_pairs: usize) -> PrCurve {
    let mut order: Vec<usize> = (0..predictions.len()).collect();
    // Decreasing score; at equal score the wrong ones (false < true) first.
    order.sort_by(|&a, &b| {
        predictions[b]
            .score
            .total_cmp(&predictions[a].score)
            .then(correct[a].cmp(&correct[b]))
    });
    let mut curve = PrCurve {
        precision: Vec::with_capacity(order.len()),
        recall: Vec::with_capacity(order.len()),
        threshold: Vec::with_capacity(order.len()),
    };
    let mut tp = 0usize;
    for (i, &j) in order.iter().enumerate() {
        tp += usize::from(correct[j]);
        curve.precision.push(tp as f64 / (i + 1) as f64);
        curve.recall.push(tp as f64 / n_pairs as f64);
        curve.threshold.push(predictions[j].score);
    }
    curve
}

/// `Σᵢ (recallᵢ − recallᵢ₋₁) · precisionᵢ` with `recall₀ = 0`.
fn average_precision(curve: &PrCurve) -> f64 {
    let mut previous = 0.0;
    let mut ap = 0.0;
    for (&p, &r) in curve.precision.iter().zip(&curve.recall) {
        ap += (r - previous) * p;
        previous = r;
    }
    ap
}

/// The highest recall with precision ≥ `min_precision`, and its threshold (the first such
/// point, as `numpy.argmax` picks it).
fn operating_point(curve: &PrCurve, min_precision: f64) -> (f64, Option<f64>) {
    let mut best: Option<(f64, f64)> = None;
    for ((&p, &r), &t) in curve
        .precision
        .iter()
        .zip(&curve.recall)
        .zip(&curve.threshold)
    {
        if p >= min_precision && best.is_none_or(|(br, _)| r > br) {
            best = Some((r, t));
        }
    }
    match best {
        Some((r, t)) => (r, Some(t)),
        None => (0.0, None),
    }
}

/// Rank of `reference` among a query's predictions: how many other predictions score at least
/// as high. `None` when it was not predicted.
fn pair_rank(preds: &[(f64, &str)], reference: &str) -> Option<usize> {
    let score = preds.iter().find(|(_, r)| *r == reference)?.0;
    Some(preds.iter().filter(|(s, _)| *s >= score).count() - 1)
}

/// Rank of a query's best true reference in the pessimistic order: the number of wrong
/// predictions scoring at least as high. `None` when no true reference was predicted.
fn query_rank(preds: &[(f64, &str)], refs: &[String]) -> Option<usize> {
    let is_true = |r: &str| refs.iter().any(|t| t == r);
    let best = preds
        .iter()
        .filter(|(_, r)| is_true(r))
        .map(|&(s, _)| s)
        .max_by(f64::total_cmp)?;
    Some(
        preds
            .iter()
            .filter(|(s, r)| *s >= best && !is_true(r))
            .count(),
    )
}

/// Reads both files and scores them, for the `metrics` command.
pub fn evaluate_files(
    predictions: &Path,
    ground_truth: &Path,
    options: &EvalOptions,
) -> Result<Metrics> {
    let gt = read_ground_truth(ground_truth)?;
    let preds = read_predictions(predictions)?;
    evaluate(&gt, &preds, options)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn gt(rows: &[(&str, Option<&str>)]) -> GroundTruth {
        GroundTruth::from_rows(rows.iter().copied()).unwrap()
    }

    #[test]
    fn ties_are_pessimistic() {
        let g = gt(&[("Q1", Some("R1")), ("Q2", Some("R2"))]);
        // All four at the same score: the two wrong ones come first.
        let preds = [
            Prediction::new("Q1", "R1", 1.0),
            Prediction::new("Q1", "R9", 1.0),
            Prediction::new("Q2", "R2", 1.0),
            Prediction::new("Q2", "R8", 1.0),
        ];
        let m = evaluate(&g, &preds, &EvalOptions::default()).unwrap();
        // Order: wrong, wrong, right, right → AP = 0.5·(1/3) + 0.5·(2/4).
        assert!((m.micro_ap - (0.5 / 3.0 + 0.5 * 0.5)).abs() < 1e-15);
        assert_eq!(m.accuracy, 0.0);
        assert_eq!(m.recall_at_1, 0.0);
        assert_eq!(m.top3_accuracy, 1.0);
        assert_eq!(m.recall_at_10, 1.0);
        assert_eq!(m.recall_at_p90, 0.0);
        assert_eq!(m.threshold_at_p90, None);
    }

    #[test]
    fn perfect_and_no_copy_queries() {
        let g = gt(&[("Q1", Some("R1")), ("Q2", None), ("Q3", Some("R3"))]);
        let preds = [
            Prediction::new("Q1", "R1", 0.9),
            Prediction::new("Q3", "R3", 0.8),
            Prediction::new("Q2", "R1", 0.7),
            Prediction::new("Q3", "R1", 0.1),
        ];
        let m = evaluate(&g, &preds, &EvalOptions::default()).unwrap();
        assert_eq!(m.micro_ap, 1.0);
        assert_eq!(m.accuracy, 1.0);
        assert_eq!(m.recall_at_p90, 1.0);
        assert_eq!(m.threshold_at_p90, Some(0.8));
        assert_eq!(m.n_queries, 2);
        assert_eq!(m.n_gt_queries, 3);
        assert_eq!(m.n_predictions, 4);
    }

    #[test]
    fn missing_predictions_count_as_misses() {
        let g = gt(&[("Q1", Some("R1")), ("Q2", Some("R2"))]);
        let preds = [Prediction::new("Q1", "R1", 0.5)];
        let m = evaluate(&g, &preds, &EvalOptions::default()).unwrap();
        assert_eq!(m.accuracy, 0.5);
        assert_eq!(m.micro_ap, 0.5);
        assert_eq!(m.recall_at_p90, 0.5);
    }

    #[test]
    fn duplicates_and_nan_are_errors() {
        let g = gt(&[("Q1", Some("R1"))]);
        let dup = [
            Prediction::new("Q1", "R1", 0.5),
            Prediction::new("Q1", "R1", 0.4),
        ];
        assert!(matches!(
            evaluate(&g, &dup, &EvalOptions::default()),
            Err(MetricsError::Duplicate { .. })
        ));
        let nan = [Prediction::new("Q1", "R1", f64::NAN)];
        assert!(matches!(
            evaluate(&g, &nan, &EvalOptions::default()),
            Err(MetricsError::NanScore { .. })
        ));
        assert!(matches!(
            GroundTruth::from_rows([("Q1", Some("R1")), ("Q1", Some("R1"))]),
            Err(MetricsError::Duplicate { .. })
        ));
        let none = gt(&[("Q1", None)]);
        assert!(matches!(
            evaluate(&none, &[], &EvalOptions::default()),
            Err(MetricsError::NoPositives)
        ));
    }

    #[test]
    fn thinned_curve_keeps_the_ends() {
        let curve = PrCurve {
            precision: (1..=10).map(|i| 1.0 / i as f64).collect(),
            recall: (1..=10).map(|i| i as f64 / 10.0).collect(),
            threshold: vec![0.0; 10],
        };
        let t = curve.thinned(3);
        assert_eq!(t.first(), Some(&(0.1, 1.0)));
        assert_eq!(t.last(), Some(&(1.0, 0.1)));
        assert!(t.len() <= 5);
    }
}
