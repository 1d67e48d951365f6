//! The benchmark run: extract → index → search → metrics, per model, on one [`EvalSet`].
//!
//! Each stage is timed and reports its rate (images/s for extraction, and for the model alone;
//! queries/s for search). Extraction goes through the resumable cache of
//! [`embed_pipeline::extract_cached`]: the cache is keyed by model, weights, preprocessing and
//! image list, so a second run, or a run with another index, reuses the embeddings. The
//! [report](crate::report) is written from the returned [`BenchmarkResult`]. Stage lines and
//! progress go to the callbacks of [`RunOptions`]; nothing is printed here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use embed_pipeline::{
    CacheKey, CacheOptions, ExtractOptions, Extraction, Model, PipelineError, ProgressFn,
    ProgressReport, extract_cached,
};
use ndarray::Array2;
use vecindex::{FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};

use crate::dataset::{EvalSet, ImageEntry};
use crate::metrics::{EvalOptions, Metrics, MetricsError, Prediction, evaluate};

/// What can go wrong in a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchmarkError {
    /// Extraction failed.
    #[error("extracting {what} with {model}")]
    Extract {
        /// `references` or `queries`.
        what: &'static str,
        /// The model's name.
        model: String,
        /// The pipeline's error (boxed: it is large).
        #[source]
        source: Box<PipelineError>,
    },
    /// Building or searching the index failed.
    #[error("searching with {model}: {message}")]
    Search {
        /// The model's name.
        model: String,
        /// What failed.
        message: String,
    },
    /// Scoring failed.
    #[error("scoring {model}")]
    Metrics {
        /// The model's name.
        model: String,
        /// The metrics' error.
        #[source]
        source: MetricsError,
    },
    /// The options are unusable.
    #[error("invalid benchmark options: {0}")]
    InvalidOptions(String),
}

/// Result alias of this module.
pub type Result<T, E = BenchmarkError> = std::result::Result<T, E>;

/// The index the references are searched with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexChoice {
    /// Exact search (the study's `IndexFlatL2`; on unit vectors the same ranking as inner
    /// product). On a CUDA device it runs as chunked matrix products on the GPU.
    #[default]
    Flat,
    /// Approximate search with HNSW (vecindex defaults: M 32, ef_construction 200, ef_search 128).
    Hnsw,
}

/// One model taking part in a run.
pub struct BenchModel<'a> {
    /// Short name used in reports and file names (`clip`, `dinov2`).
    pub name: String,
    /// The model.
    pub model: Model<'a>,
    /// Where the weights came from (a folder or a model id), as the user gave it.
    pub weights: String,
    /// A digest of the model family and the weights' files
    /// (`image_sim::models::weights_digest`): the embedding cache keys on it.
    pub weights_hash: String,
    /// Anything else that changes the embeddings (precision, pooling...), for the cache key.
    pub extra: String,
    /// Whether the weights were drawn at random (a demonstration without the real checkpoint):
    /// every output labels the model so.
    pub random_weights: bool,
}

/// Options of [`run_benchmark`].
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Neighbours retrieved per query (the predictions scored): 10 serves recall@10.
    pub search_k: usize,
    /// The `k` of the top-k accuracy (the study's k = 5).
    pub eval_k: usize,
    /// Which index.
    pub index: IndexChoice,
    /// Extraction options (batch size, workers, failure limits).
    pub extract: ExtractOptions,
    /// Root of the embedding cache.
    pub cache_dir: PathBuf,
    /// Images per cache chunk.
    pub chunk_size: usize,
    /// Run the exact search with libtorch on this device (a GPU) instead of vecindex.
    pub search_device: Option<tch::Device>,
    /// Receives a line as each stage ends (`[clip] extract references: ...`). `None`: silent.
    pub status: Option<StatusFn>,
    /// Receives the progress of HNSW builds (points inserted). `None`: silent.
    pub index_progress: Option<ProgressFn>,
}

/// A callback for status lines.
#[derive(Clone)]
pub struct StatusFn(pub Arc<dyn Fn(&str) + Send + Sync>);

impl StatusFn {
    /// Wraps a closure.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for StatusFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusFn")
    }
}

impl std::str::FromStr for IndexChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "flat" => Ok(Self::Flat),
            "hnsw" => Ok(Self::Hnsw),
            other => Err(format!("`{other}`: expected flat or hnsw")),
        }
    }
}

impl std::fmt::Display for IndexChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flat => "flat",
            Self::Hnsw => "hnsw",
        })
    }
}

impl RunOptions {
    fn status(&self, line: &str) {
        if let Some(s) = &self.status {
            (s.0)(line);
        }
    }
}

impl RunOptions {
    /// Defaults with the cache under `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            search_k: 10,
            eval_k: 5,
            index: IndexChoice::Flat,
            extract: ExtractOptions::default(),
            cache_dir,
            chunk_size: 1024,
            search_device: None,
            status: None,
            index_progress: None,
        }
    }
}

/// Timing of one extraction.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ExtractTiming {
    /// Images in the list.
    pub images: usize,
    /// Images computed in this run (0 when all came from the cache).
    pub computed: usize,
    /// Images that could not be used.
    pub skipped: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Computed images per second, end to end (`None` when nothing was computed).
    pub images_per_second: Option<f64>,
    /// Computed images per second of model time alone.
    pub model_images_per_second: Option<f64>,
}

impl ExtractTiming {
    fn from(images: usize, e: &Extraction) -> Self {
        let s = e.stats;
        let rate = |secs: f64| (s.processed > 0 && secs > 0.0).then(|| s.processed as f64 / secs);
        Self {
            images,
            computed: s.processed,
            skipped: e.skipped.len(),
            seconds: s.wall.as_secs_f64(),
            images_per_second: rate(s.wall.as_secs_f64()),
            model_images_per_second: rate(s.model_time.as_secs_f64()),
        }
    }
}

/// Timing of the index and search stages.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct SearchTiming {
    /// Which index.
    pub index: IndexChoice,
    /// Where the search ran (`cpu` or a libtorch device).
    pub device: &'static str,
    /// Seconds to build the index.
    pub build_seconds: f64,
    /// Seconds to search all queries.
    pub search_seconds: f64,
    /// Queries searched.
    pub queries: usize,
    /// Queries per second.
    pub queries_per_second: f64,
    /// Neighbours per query.
    pub k: usize,
}

/// The results of one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelResult {
    /// Short name.
    pub name: String,
    /// The model's identifier.
    pub model_id: String,
    /// Embedding width.
    pub dim: usize,
    /// Weights as given.
    pub weights: String,
    /// Hash of the weights.
    pub weights_hash: String,
    /// Whether the weights were drawn at random ([`BenchModel::random_weights`]).
    pub random_weights: bool,
    /// Reference extraction.
    pub extract_references: ExtractTiming,
    /// Query extraction.
    pub extract_queries: ExtractTiming,
    /// Index and search.
    pub search: SearchTiming,
    /// The scores.
    pub metrics: Metrics,
    /// All predictions (written as CSV by the report, not into the JSON).
    #[serde(skip)]
    pub predictions: Vec<Prediction>,
    /// The top references of each query, in query order: `(reference id, score)` best first.
    #[serde(skip)]
    pub ranked: Vec<Vec<(String, f32)>>,
}

impl ModelResult {
    /// The name to show: the short name, marked when the weights are random.
    pub fn label(&self) -> String {
        if self.random_weights {
            format!("{} (random weights)", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct BenchmarkResult {
    /// One entry per model, in the order given.
    pub models: Vec<ModelResult>,
    /// The options the run used.
    pub search_k: usize,
}

fn extract(
    m: &BenchModel<'_>,
    what: &'static str,
    images: &[ImageEntry],
    options: &RunOptions,
) -> Result<(Extraction, ExtractTiming)> {
    let paths: Vec<&Path> = images.iter().map(|e| e.path.as_path()).collect();
    let key = CacheKey {
        model_id: m.model.model_id().to_string(),
        weights_hash: m.weights_hash.clone(),
        preprocess: options.extract.preprocess_key(m.model.preprocess_spec()),
        extra: format!("{} normalize={}", m.extra, options.extract.normalize),
    };
    let cache = CacheOptions {
        root: options.cache_dir.clone(),
        chunk_size: options.chunk_size,
    };
    let out =
        extract_cached(m.model, &paths, &options.extract, &key, &cache).map_err(|source| {
            BenchmarkError::Extract {
                what,
                model: m.name.clone(),
                source: Box::new(source),
            }
        })?;
    let timing = ExtractTiming::from(images.len(), &out);
    let rate = timing
        .images_per_second
        .map_or("cached".to_string(), |r| format!("{r:.1} images/s"));
    options.status(&format!(
        "[{}] extract {what}: {} images ({} computed, {} skipped) in {:.2} s, {rate}",
        m.name,
        images.len(),
        timing.computed,
        timing.skipped,
        timing.seconds
    ));
    Ok((out, timing))
}

/// Per query, `(reference row, score)` best first.
type Hits = Vec<Vec<(usize, f32)>>;

/// Searches the `k` best references of every query row.
fn search(
    name: &str,
    refs: &Extraction,
    queries: &Array2<f32>,
    options: &RunOptions,
) -> Result<(Hits, SearchTiming)> {
    let err = |message: String| BenchmarkError::Search {
        model: name.to_string(),
        message,
    };
    let dim = refs.embeddings.ncols();
    let k = options.search_k;
    let n_q = queries.nrows();
    let q_std = queries.as_standard_layout();
    let q_flat = q_std
        .as_slice()
        .ok_or_else(|| err("non-contiguous queries".into()))?;
    let r_std = refs.embeddings.as_standard_layout();
    let r_flat = r_std
        .as_slice()
        .ok_or_else(|| err("non-contiguous references".into()))?;
    let t0 = Instant::now();
    let (hits, build, device): (Vec<Vec<(usize, f32)>>, f64, &'static str) =
        match (options.index, options.search_device) {
            (IndexChoice::Flat, Some(dev)) => {
                let opts = vecindex::torch_search::TorchSearchOptions::on(dev);
                let found = vecindex::torch_search::search(q_flat, r_flat, dim, k, &opts)
                    .map_err(|e| err(e.to_string()))?;
                (
                    to_pairs(found),
                    0.0,
                    if dev.is_cuda() {
                        "cuda"
                    } else {
                        "cpu (libtorch)"
                    },
                )
            }
            (IndexChoice::Flat, None) => {
                let index = FlatIndex::from_vectors(dim, Metric::InnerProduct, &refs.ids, r_flat)
                    .map_err(|e| err(e.to_string()))?;
                let build = t0.elapsed().as_secs_f64();
                let found = index.search(q_flat, k).map_err(|e| err(e.to_string()))?;
                (to_pairs(found), build, "cpu")
            }
            (IndexChoice::Hnsw, _) => {
                let index = build_hnsw(
                    dim,
                    Metric::InnerProduct,
                    HnswParams::default(),
                    &refs.ids,
                    r_flat,
                    options.index_progress.as_ref(),
                )
                .map_err(|e| err(e.to_string()))?;
                let build = t0.elapsed().as_secs_f64();
                let found = index.search(q_flat, k).map_err(|e| err(e.to_string()))?;
                (to_pairs(found), build, "cpu")
            }
        };
    let total = t0.elapsed().as_secs_f64();
    let search_seconds = (total - build).max(0.0);
    let timing = SearchTiming {
        index: options.index,
        device,
        build_seconds: build,
        search_seconds,
        queries: n_q,
        queries_per_second: n_q as f64 / search_seconds.max(1e-9),
        k,
    };
    options.status(&format!(
        "[{name}] index ({}, {device}) built in {build:.3} s; searched {n_q} queries in {search_seconds:.3} s, {:.0} queries/s",
        options.index, timing.queries_per_second
    ));
    Ok((hits, timing))
}

/// [`HnswIndex::build`], reporting the points inserted to `progress`.
fn build_hnsw<S: AsRef<str>>(
    dim: usize,
    metric: Metric,
    params: HnswParams,
    ids: &[S],
    vectors: &[f32],
    progress: Option<&ProgressFn>,
) -> vecindex::Result<HnswIndex> {
    let started = Instant::now();
    let mut index = HnswIndex::new(dim, metric, params, ids.len())?;
    index.add_with_progress(ids, vectors, &|done, total| {
        if let Some(p) = progress {
            (p.0)(&ProgressReport {
                done,
                total,
                failed: 0,
                elapsed: started.elapsed(),
            });
        }
    })?;
    Ok(index)
}

fn to_pairs(found: Vec<Vec<vecindex::Hit>>) -> Vec<Vec<(usize, f32)>> {
    found
        .into_iter()
        .map(|hits| hits.into_iter().map(|h| (h.row, h.score)).collect())
        .collect()
}

/// Runs every model over `set` and scores it. Models run one after the other (each owns the
/// machine while it runs, so the throughputs are comparable).
pub fn run_benchmark(
    set: &EvalSet,
    models: &[BenchModel<'_>],
    options: &RunOptions,
) -> Result<BenchmarkResult> {
    if options.search_k == 0 {
        return Err(BenchmarkError::InvalidOptions(
            "the neighbours retrieved per query (k, --k) must be at least 1".into(),
        ));
    }
    if options.eval_k == 0 || options.eval_k > options.search_k {
        return Err(BenchmarkError::InvalidOptions(format!(
            "the k of the top-k accuracy (--top-k, {}) must be between 1 and the neighbours \
             retrieved per query (--k, {})",
            options.eval_k, options.search_k
        )));
    }
    if models.is_empty() {
        return Err(BenchmarkError::InvalidOptions("no model to run".into()));
    }
    let mut out = Vec::with_capacity(models.len());
    for m in models {
        let (refs, extract_references) = extract(m, "references", &set.references, options)?;
        let (queries, extract_queries) = extract(m, "queries", &set.queries, options)?;
        if refs.ids.is_empty() {
            return Err(BenchmarkError::Search {
                model: m.name.clone(),
                message: "no reference could be embedded".into(),
            });
        }
        let (hits, search_timing) = search(&m.name, &refs, &queries.embeddings, options)?;
        // Queries that could not be embedded get no predictions (they count as misses).
        let mut ranked: Vec<Vec<(String, f32)>> = vec![Vec::new(); set.queries.len()];
        let mut predictions = Vec::with_capacity(hits.iter().map(Vec::len).sum());
        for (row, q_hits) in hits.iter().enumerate() {
            let q = queries.indices[row];
            for &(r, score) in q_hits {
                let ref_id = refs.ids[r].clone();
                predictions.push(Prediction::new(
                    set.queries[q].id.clone(),
                    ref_id.clone(),
                    f64::from(score),
                ));
                ranked[q].push((ref_id, score));
            }
        }
        let t = Instant::now();
        let metrics = evaluate(
            &set.ground_truth,
            &predictions,
            &EvalOptions {
                top_k: options.eval_k,
            },
        )
        .map_err(|source| BenchmarkError::Metrics {
            model: m.name.clone(),
            source,
        })?;
        options.status(&format!(
            "[{}] metrics in {:.3} s: accuracy {:.4}, top-3 {:.4}, µAP {:.4}",
            m.name,
            t.elapsed().as_secs_f64(),
            metrics.accuracy,
            metrics.top3_accuracy,
            metrics.micro_ap
        ));
        out.push(ModelResult {
            name: m.name.clone(),
            model_id: m.model.model_id().to_string(),
            dim: m.model.dim(),
            weights: m.weights.clone(),
            weights_hash: m.weights_hash.clone(),
            random_weights: m.random_weights,
            extract_references,
            extract_queries,
            search: search_timing,
            metrics,
            predictions,
            ranked,
        });
    }
    Ok(BenchmarkResult {
        models: out,
        search_k: options.search_k,
    })
}
