//! [`HnswSqIndex`]: the HNSW graph over scalar-quantised vectors (FAISS `IndexHNSWSQ`).

use rayon::prelude::*;

use super::build::BuildParams;
use super::distance::Distance;
use super::graph::Graph;
use super::index::{HnswParams, batch_order, check_ef};
use super::store::SqRows;
use crate::error::{Error, Result};
use crate::ids::IdMap;
use crate::sq::{ScalarQuantizer, SqCodes, SqKind};
use crate::{Hit, MAX_DIM, Metric, VectorIndex, check_queries, check_query};

/// Approximate search on an HNSW graph whose vectors are stored as scalar-quantised codes:
/// one byte a dimension (8-bit, FAISS `QT_8bit`) or two (half floats, `QT_fp16`) instead of
/// four. FAISS's `IndexHNSWSQ`, whose files (`IHNs`) it reads and writes
/// ([`HnswSqIndex::read_faiss`], [`HnswSqIndex::write_faiss`]).
///
/// The graph is built and searched by the same code as [`crate::HnswIndex`]'s; distances are
/// computed on the codes by the scalar-quantiser kernels ([`SqCodes`]). A point is inserted
/// with its f32 vector as the query (as FAISS does); the neighbour choice compares codes.
/// Scores are those of the decoded vectors: the inner product, the cosine (vectors and
/// queries normalised) or minus the squared L2 distance.
///
/// ```
/// use vecindex::sq::SqKind;
/// use vecindex::{HnswParams, HnswSqIndex, Metric, VectorIndex};
/// let data = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
/// let index = HnswSqIndex::build(2, Metric::InnerProduct, SqKind::Sq8, HnswParams::default(),
///                                &["a", "b", "c"], &data)?;
/// let hits = index.search(&[0.0, 1.0], 2)?;
/// assert_eq!(index.id(hits[0][0].row), Some("b"));
/// assert_eq!(index.id(hits[0][1].row), Some("c"));
/// # Ok::<(), vecindex::Error>(())
/// ```
pub struct HnswSqIndex {
    pub(super) graph: Graph<SqRows>,
    pub(super) metric: Metric,
    pub(super) params: HnswParams,
    pub(super) ids: IdMap,
    pub(super) model_id: String,
}

impl std::fmt::Debug for HnswSqIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswSqIndex")
            .field("dim", &self.graph.dim)
            .field("kind", &self.kind())
            .field("metric", &self.metric)
            .field("params", &self.params)
            .field("len", &self.ids.len())
            .finish()
    }
}

impl HnswSqIndex {
    /// An empty index over a trained quantiser.
    pub fn with_quantizer(sq: ScalarQuantizer, metric: Metric, params: HnswParams) -> Result<Self> {
        params.validate()?;
        let dim = sq.dim();
        let store = SqRows {
            codes: SqCodes::new(sq, metric),
        };
        Ok(Self {
            graph: Graph::empty_with(Distance::of_metric(metric), dim, store),
            metric,
            params,
            ids: IdMap::new(),
            model_id: String::new(),
        })
    }

    /// An empty index whose quantiser is trained on `training` (row-major; ignored for fp16),
    /// as FAISS's `train`.
    pub fn train(
        dim: usize,
        metric: Metric,
        kind: SqKind,
        params: HnswParams,
        training: &[f32],
    ) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension(dim));
        }
        // Cosine compares the normalised vectors: train on what will be encoded.
        let training = metric.prepared(training, dim);
        let sq = ScalarQuantizer::train(kind, dim, &training)?;
        Self::with_quantizer(sq, metric, params)
    }

    /// Trains the quantiser on `vectors` and inserts them (in parallel on the current rayon
    /// pool).
    pub fn build<S: AsRef<str>>(
        dim: usize,
        metric: Metric,
        kind: SqKind,
        params: HnswParams,
        ids: &[S],
        vectors: &[f32],
    ) -> Result<Self> {
        let mut index = Self::train(dim, metric, kind, params, vectors)?;
        index.add(ids, vectors)?;
        Ok(index)
    }

    /// Records the model id the vectors came from.
    pub fn with_model_id(mut self, model_id: impl Into<String>) -> Self {
        self.model_id = model_id.into();
        self
    }

    /// The kind of codes.
    pub fn kind(&self) -> SqKind {
        self.graph.store.codes.quantizer().kind()
    }

    /// The quantiser.
    pub fn quantizer(&self) -> &ScalarQuantizer {
        self.graph.store.codes.quantizer()
    }

    /// The parameters.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// The ids in row order.
    pub fn ids(&self) -> &IdMap {
        &self.ids
    }

    /// Sets the default `ef_search` used by [`VectorIndex::search`].
    pub fn set_ef_search(&mut self, ef_search: usize) -> Result<()> {
        let params = HnswParams {
            ef_search,
            ..self.params
        };
        params.validate()?;
        self.params = params;
        Ok(())
    }

    /// Bytes held by the codes, their norms and the graph.
    pub fn memory_bytes(&self) -> usize {
        self.graph.heap_bytes()
    }

    /// Searches one query with candidate list size `ef` (raised to `k` when smaller).
    pub fn search_one_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>> {
        check_query(query, self.graph.dim, k)?;
        check_ef(ef)?;
        let query = self.metric.prepared(query, self.graph.dim);
        Ok(self.graph.search(&query, k.min(self.ids.len()), ef))
    }

    /// Searches a batch of queries (in parallel) with candidate list size `ef`.
    pub fn search_with_ef(&self, queries: &[f32], k: usize, ef: usize) -> Result<Vec<Vec<Hit>>> {
        let dim = self.graph.dim;
        check_queries(queries, dim, k)?;
        check_ef(ef)?;
        let queries = self.metric.prepared(queries, dim);
        Ok(queries
            .par_chunks_exact(dim)
            .map(|q| self.graph.search(q, k.min(self.ids.len()), ef))
            .collect())
    }

    /// [`VectorIndex::add`], calling `progress(inserted, total)` about every 1 % of the batch
    /// and once at the end, from the inserting threads.
    pub fn add_with_progress<S: AsRef<str>>(
        &mut self,
        ids: &[S],
        vectors: &[f32],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<()> {
        let dim = self.graph.dim;
        let order = batch_order(dim, &self.ids, self.params.seed, ids, vectors)?;
        if order.is_empty() {
            return Ok(());
        }
        let vectors = self.metric.prepared(vectors, dim);
        let store = SqRows {
            codes: SqCodes::new(self.quantizer().clone(), self.metric),
        };
        let empty = Graph::empty_with(self.graph.distance, dim, store);
        let old = std::mem::replace(&mut self.graph, empty);
        let params = BuildParams {
            m: self.params.m,
            ef_construction: self.params.ef_construction,
            seed: self.params.seed,
        };
        match Graph::extended(old, &vectors, &order, params, progress) {
            Ok(graph) => self.graph = graph,
            Err(failed) => {
                let (old, e) = *failed;
                self.graph = old;
                return Err(Error::Hnsw(format!("cannot insert: {e}")));
            }
        }
        self.ids.extend(ids)
    }
}

impl VectorIndex for HnswSqIndex {
    fn dim(&self) -> usize {
        self.graph.dim
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
        self.add_with_progress(ids, vectors, &|_, _| ())
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.search_with_ef(queries, k, self.params.ef_search)
    }
}
