//! [`HnswIndex`], the public type, and its parameters.

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::build::BuildParams;
use super::distance::Distance;
use super::dump::{self, Description, DumpLayout};
use super::graph::Graph;
use crate::error::{Error, Result, format_err};
use crate::ids::IdMap;
use crate::persist::Loaded;
use crate::{Hit, MAX_DIM, Metric, VectorIndex, check_queries, check_query, check_rows};

/// Largest `M` accepted: `hnsw_rs` exits the process above 256 and stores `M` in a byte.
pub const MAX_M: usize = 255;
/// Largest `ef_construction` / `ef_search` accepted.
pub const MAX_EF: usize = 1 << 16;

/// HNSW build and search parameters, checked by [`HnswParams::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Neighbours kept per node and layer (layer 0 keeps `2 * m`); 2..=[`MAX_M`].
    pub m: usize,
    /// Candidate list size while building; 1..=[`MAX_EF`].
    pub ef_construction: usize,
    /// Default candidate list size while searching (raised to `k` when smaller); 1..=[`MAX_EF`].
    pub ef_search: usize,
    /// Seeds the order in which each batch passed to `add` is inserted and the levels its
    /// points are given. Built on one thread (a one-thread rayon pool), the same input and
    /// seed give the same graph; parallel insertion is not deterministic.
    pub seed: u64,
}

impl Default for HnswParams {
    /// `m = 32, ef_construction = 200, ef_search = 128, seed = 0`.
    fn default() -> Self {
        Self {
            m: 32,
            ef_construction: 200,
            ef_search: 128,
            seed: 0,
        }
    }
}

impl HnswParams {
    pub(crate) fn zero() -> Self {
        Self {
            m: 0,
            ef_construction: 0,
            ef_search: 0,
            seed: 0,
        }
    }

    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_M).contains(&self.m) {
            return Err(Error::InvalidParams(format!(
                "M = {} outside 2..={MAX_M}",
                self.m
            )));
        }
        if !(1..=MAX_EF).contains(&self.ef_construction) {
            return Err(Error::InvalidParams(format!(
                "ef_construction = {} outside 1..={MAX_EF}",
                self.ef_construction
            )));
        }
        if !(1..=MAX_EF).contains(&self.ef_search) {
            return Err(Error::InvalidParams(format!(
                "ef_search = {} outside 1..={MAX_EF}",
                self.ef_search
            )));
        }
        Ok(())
    }
}

/// Approximate nearest-neighbour search on an HNSW graph. Vectors are inserted in parallel
/// (rayon). Scores are those of exact search: the inner product, the cosine (vectors and
/// queries are normalised, zero vectors left as they are) or minus the squared L2 distance;
/// the graph orders by minus the inner product (unclamped, for vectors of any length) or by
/// the squared L2 distance.
///
/// The graph and the vectors live in flat arrays this crate owns: insertion (hnswlib's and
/// FAISS's algorithm: heuristic neighbour choice, reverse links pruned by the same heuristic)
/// and the standard HNSW search both run on them, and the vectors are held once. Files embed
/// the graph as an `hnsw_rs` 0.3 dump (little-endian) inside this crate's format.
///
/// Inner-product indexes saved in format 1 searched with `max(0, 1 - dot)` and scored
/// `1 - distance`; loaded, they keep that distance (and it is saved with them), so they answer
/// as they did. Rebuild them to get exact inner-product scores.
pub struct HnswIndex {
    /// The graph searches walk and `add` extends.
    pub(super) graph: Graph,
    /// How a loaded index's file laid its graph out, to save it back the same way; `None`
    /// once added to (saved with [`DumpLayout::native`]).
    pub(super) layout: Option<DumpLayout>,
    pub(super) dim: usize,
    pub(super) metric: Metric,
    pub(super) params: HnswParams,
    pub(super) ids: IdMap,
    pub(super) model_id: String,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("params", &self.params)
            .field("len", &self.ids.len())
            .field("model_id", &self.model_id)
            .finish()
    }
}

impl HnswIndex {
    /// An empty index; `capacity` is a hint for the number of vectors to come (unused: the
    /// graph grows by whole batches).
    pub fn new(dim: usize, metric: Metric, params: HnswParams, capacity: usize) -> Result<Self> {
        let _ = capacity;
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension(dim));
        }
        params.validate()?;
        Ok(Self {
            graph: Graph::empty(Distance::of_metric(metric), dim),
            layout: None,
            dim,
            metric,
            params,
            ids: IdMap::new(),
            model_id: String::new(),
        })
    }

    /// Builds an index from ids and row-major vectors: [`HnswIndex::new`] then
    /// [`VectorIndex::add`] (parallel insertion on the current rayon pool).
    pub fn build<S: AsRef<str>>(
        dim: usize,
        metric: Metric,
        params: HnswParams,
        ids: &[S],
        vectors: &[f32],
    ) -> Result<Self> {
        let mut index = Self::new(dim, metric, params, ids.len())?;
        index.add(ids, vectors)?;
        Ok(index)
    }

    /// Checks a batch for [`VectorIndex::add`] and [`HnswIndex::build`]; returns the order
    /// to insert its rows in (shuffled by the seed: clustered or sorted data inserted in a
    /// random order gives a better-connected graph).
    pub(super) fn check_batch<S: AsRef<str>>(
        &self,
        ids: &[S],
        vectors: &[f32],
    ) -> Result<Vec<usize>> {
        batch_order(self.dim, &self.ids, self.params.seed, ids, vectors)
    }

    /// Records the model id the vectors came from (stored by [`HnswIndex::save`]).
    pub fn with_model_id(mut self, model_id: impl Into<String>) -> Self {
        self.model_id = model_id.into();
        self
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

    /// Searches one query with candidate list size `ef` (raised to `k` when smaller).
    pub fn search_one_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>> {
        check_query(query, self.dim, k)?;
        check_ef(ef)?;
        let query = self.metric.prepared(query, self.dim);
        Ok(self.graph.search(&query, k.min(self.ids.len()), ef))
    }

    /// Searches a batch of queries (in parallel) with candidate list size `ef`.
    pub fn search_with_ef(&self, queries: &[f32], k: usize, ef: usize) -> Result<Vec<Vec<Hit>>> {
        check_queries(queries, self.dim, k)?;
        check_ef(ef)?;
        let queries = self.metric.prepared(queries, self.dim);
        Ok(queries
            .par_chunks_exact(self.dim)
            .map(|q| self.graph.search(q, k.min(self.ids.len()), ef))
            .collect())
    }

    /// [`VectorIndex::add`], calling `progress(inserted, total)` about every 1 % of the batch
    /// and once at the end, from the inserting threads (for progress output on long builds:
    /// 100,000 × 768 took 116 s on two cores).
    pub fn add_with_progress<S: AsRef<str>>(
        &mut self,
        ids: &[S],
        vectors: &[f32],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<()> {
        let order = self.check_batch(ids, vectors)?;
        if order.is_empty() {
            return Ok(());
        }
        let vectors = self.metric.prepared(vectors, self.dim);
        let empty = Graph::empty(self.graph.distance, self.dim);
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
        self.layout = None;
        self.ids.extend(ids)
    }

    #[cfg(all(test, feature = "hnsw-rs-compare"))]
    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The distance the graph orders by (saved with the index).
    pub(crate) fn graph_distance(&self) -> Distance {
        self.graph.distance
    }

    /// Bytes held by the graph and its vectors.
    pub fn search_copy_bytes(&self) -> usize {
        self.graph.heap_bytes()
    }

    /// Saves the index in this crate's format (header, ids, the graph as an `hnsw_rs` dump,
    /// checksum): written to a temporary file, synced, then renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::persist::save_hnsw(self, path)
    }

    /// Loads an index saved by [`HnswIndex::save`] (in this or an earlier format version).
    /// The checksum and every header field are verified, then the embedded dump is read
    /// straight into the flat arrays searches use and checked (every row exactly once) before
    /// this returns; the vectors are held once, and [`VectorIndex::add`] inserts into the
    /// loaded graph.
    pub fn load(path: &Path) -> Result<Self> {
        crate::persist::load_hnsw(path)
    }

    /// Errors unless the stored model id equals `expected`.
    pub fn check_model_id(&self, expected: &str) -> Result<()> {
        crate::persist::check_model(&self.model_id, expected)
    }

    /// The dump (graph part, data part) as bytes, written from the graph: in a loaded index's
    /// own layout until it is added to, else in [`DumpLayout::native`]'s.
    pub(crate) fn dump_bytes(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        if self.ids.is_empty() {
            return Err(Error::Hnsw(
                "an empty HNSW index cannot be saved (its graph has no entry point yet)".into(),
            ));
        }
        let native;
        let layout = match &self.layout {
            Some(layout) => layout,
            None => {
                // `validate` keeps M within a byte.
                native = DumpLayout::native(
                    &self.graph,
                    self.params.m as u8,
                    self.params.ef_construction,
                );
                &native
            }
        };
        self.graph.write_dump(layout).map_err(Error::Hnsw)
    }

    /// Rebuilds an index from a verified file's parts; `distance` is the one its header names.
    pub(crate) fn from_dump(
        path: &Path,
        l: &Loaded<'_>,
        distance: Distance,
        graph: &[u8],
        data: &[u8],
    ) -> Result<Self> {
        let (descr, descr_len) = Description::parse(graph).map_err(|m| format_err(path, m))?;
        if descr.dim != l.dim as u64
            || descr.points != l.count as u64
            || usize::from(descr.m) != l.params.m
        {
            return Err(format_err(
                path,
                format!(
                    "embedded hnsw_rs dump (dim {}, {} points, M {}) disagrees with the header (dim {}, {} points, M {})",
                    descr.dim, descr.points, descr.m, l.dim, l.count, l.params.m
                ),
            ));
        }
        dump::check_data_dump(data, l.dim, l.count).map_err(|m| format_err(path, m))?;
        dump::check_graph_dump(&graph[descr_len..], descr.layers, descr.dump_mode, l.count)
            .map_err(|m| format_err(path, m))?;
        if descr.dump_mode != 1 {
            return Err(format_err(
                path,
                "embedded hnsw_rs dump is a light dump (neighbours without their layer and rank)",
            ));
        }
        // The framing checks above cannot see everything: the graph read also checks that
        // every row is present once on the layers searches walk, up to the entry point's
        // level (seen from the fuzzer: a dump framing six points of which four are walked),
        // so such a file is a load error, not a loaded index whose every search fails.
        let (graph, layout) =
            Graph::from_dump(distance, l.dim, l.count, graph, (&descr, descr_len), data)
                .map_err(|m| format_err(path, m))?;
        Ok(Self {
            graph,
            layout: Some(layout),
            dim: l.dim,
            metric: l.metric,
            params: l.params,
            ids: l.ids.clone(),
            model_id: l.model_id.clone(),
        })
    }
}

/// Checks a batch of `ids` and row-major `vectors` for an index of `dim` holding `held`;
/// returns the order to insert its rows in (shuffled by `seed`: clustered or sorted data
/// inserted in a random order gives a better-connected graph).
pub(super) fn batch_order<S: AsRef<str>>(
    dim: usize,
    held: &IdMap,
    seed: u64,
    ids: &[S],
    vectors: &[f32],
) -> Result<Vec<usize>> {
    let rows = check_rows(vectors, dim)?;
    if rows != ids.len() {
        return Err(Error::IdCountMismatch {
            ids: ids.len(),
            vectors: rows,
        });
    }
    held.check_new(ids)?;
    let first = held.len();
    let mut order: Vec<usize> = (0..rows).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ first as u64);
    order.shuffle(&mut rng);
    Ok(order)
}

pub(super) fn check_ef(ef: usize) -> Result<()> {
    if !(1..=MAX_EF).contains(&ef) {
        return Err(Error::InvalidParams(format!(
            "ef = {ef} outside 1..={MAX_EF}"
        )));
    }
    Ok(())
}

impl VectorIndex for HnswIndex {
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
        self.add_with_progress(ids, vectors, &|_, _| ())
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.search_with_ef(queries, k, self.params.ef_search)
    }
}
