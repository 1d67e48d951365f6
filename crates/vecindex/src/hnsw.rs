//! Approximate search on an HNSW graph this crate builds and stores as `hnsw_rs` dumps.

use std::path::Path;

use hnsw_rs::prelude::{Distance, Hnsw, HnswIo};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use crate::error::{Error, Result, format_err, io_err};
use crate::hnsw_graph::build::BuildParams;
use crate::hnsw_graph::{DumpLayout, Graph, GraphDistance};
use crate::ids::IdMap;
use crate::persist::Loaded;
use crate::topk::best_first;
use crate::{Hit, MAX_DIM, Metric, VectorIndex, check_queries, check_query, check_rows};

/// Largest `M` accepted: `hnsw_rs` exits the process above 256 and stores `M` in a byte.
pub const MAX_M: usize = 255;
/// Largest `ef_construction` / `ef_search` accepted.
pub const MAX_EF: usize = 1 << 16;
/// Number of layers `hnsw_rs` keeps (its own maximum), for [`HnswIndex::build_with_hnsw_rs`].
const MAX_LAYERS: usize = 16;

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

/// The distance `hnsw_rs` sees: `max(0, 1 - dot)` for inner product (the stock `DistDot` panics
/// when rounding pushes a unit-vector dot product above 1), squared L2 otherwise. Both are never
/// negative or NaN, which `hnsw_rs` asserts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HnswDistance {
    metric: Metric,
}

impl HnswDistance {
    pub(crate) fn new(metric: Metric) -> Self {
        Self { metric }
    }
}

impl Distance<f32> for HnswDistance {
    #[inline]
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        GraphDistance::of(self.metric).eval(a, b)
    }
}

/// Approximate nearest-neighbour search on an HNSW graph. Vectors are inserted in parallel
/// (rayon). For [`Metric::InnerProduct`] the vectors should be unit-normalised (the graph uses
/// `1 - dot` as its distance); scores are `1 - distance` (inner product) or `-distance` (L2).
///
/// The graph and the vectors live in flat arrays this crate owns: insertion (hnswlib's and
/// FAISS's algorithm: heuristic neighbour choice, reverse links pruned by the same heuristic)
/// and the standard HNSW search both run on them, and the vectors are held once. Files are
/// `hnsw_rs` 0.3 dumps inside this crate's format, which `hnsw_rs` reloads; `hnsw_rs` is
/// used for its file format and, in tests and benchmarks, as the reference search.
pub struct HnswIndex {
    /// The graph searches walk and `add` extends.
    graph: Graph,
    /// How a loaded index's file laid its graph out, to save it back the same way; `None`
    /// once added to (saved with [`DumpLayout::native`]).
    layout: Option<DumpLayout>,
    dim: usize,
    metric: Metric,
    params: HnswParams,
    ids: IdMap,
    model_id: String,
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
            graph: Graph::empty(metric, dim),
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
    fn check_batch<S: AsRef<str>>(&self, ids: &[S], vectors: &[f32]) -> Result<Vec<usize>> {
        let rows = check_rows(vectors, self.dim)?;
        if rows != ids.len() {
            return Err(Error::IdCountMismatch {
                ids: ids.len(),
                vectors: rows,
            });
        }
        self.ids.check_new(ids)?;
        let first = self.ids.len();
        let mut order: Vec<usize> = (0..rows).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.params.seed ^ first as u64);
        order.shuffle(&mut rng);
        Ok(order)
    }

    /// Kept for compatibility: the index holds one graph since insertion moved off
    /// `hnsw_rs`'s graph, so there is nothing to release. Always `Ok`.
    pub fn release_insertion_graph(&mut self) -> Result<()> {
        Ok(())
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
        Ok(self.graph.search(query, k.min(self.ids.len()), ef))
    }

    /// Searches a batch of queries (in parallel) with candidate list size `ef`.
    pub fn search_with_ef(&self, queries: &[f32], k: usize, ef: usize) -> Result<Vec<Vec<Hit>>> {
        check_queries(queries, self.dim, k)?;
        check_ef(ef)?;
        Ok(queries
            .par_chunks_exact(self.dim)
            .map(|q| self.graph.search(q, k.min(self.ids.len()), ef))
            .collect())
    }

    /// Builds the graph with `hnsw_rs`'s own insertion (`Hnsw::parallel_insert_slice`) and
    /// copies it out, as this crate did before it inserted itself: kept to compare build time
    /// and recall against in tests and benchmarks. Same input order as [`HnswIndex::build`].
    #[doc(hidden)]
    pub fn build_with_hnsw_rs<S: AsRef<str>>(
        dim: usize,
        metric: Metric,
        params: HnswParams,
        ids: &[S],
        vectors: &[f32],
    ) -> Result<Self> {
        let mut index = Self::new(dim, metric, params, ids.len())?;
        let order = index.check_batch(ids, vectors)?;
        if order.is_empty() {
            return Ok(index);
        }
        let hnsw = Hnsw::new(
            params.m,
            ids.len(),
            MAX_LAYERS,
            params.ef_construction,
            HnswDistance { metric },
        );
        let batch: Vec<(&[f32], usize)> = order
            .iter()
            .map(|&i| (&vectors[i * dim..(i + 1) * dim], i))
            .collect();
        hnsw.parallel_insert_slice(&batch);
        let fail = |e: String| Error::Hnsw(format!("cannot copy hnsw_rs's graph: {e}"));
        index.graph = Graph::export(&hnsw, metric, dim, ids.len()).map_err(fail)?;
        index.layout = Some(DumpLayout::of_hnsw_rs(&hnsw, dim, ids.len()).map_err(fail)?);
        index.ids.extend(ids)?;
        Ok(index)
    }

    /// The graph reloaded by `hnsw_rs` from this index's dump, to search with `hnsw_rs`'s own
    /// search (slower; kept to compare recall and speed against in tests and benchmarks).
    #[doc(hidden)]
    pub fn hnsw_rs_searcher(&self) -> Result<HnswRsSearcher> {
        let (graph, data) = self.dump_bytes()?;
        Ok(HnswRsSearcher {
            hnsw: hnsw_rs_load(
                Path::new("<index>"),
                &graph,
                &data,
                self.metric,
                self.ids.len(),
            )?,
            dim: self.dim,
            metric: self.metric,
        })
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
        let old = std::mem::replace(&mut self.graph, Graph::empty(self.metric, self.dim));
        let params = BuildParams {
            m: self.params.m,
            ef_construction: self.params.ef_construction,
            seed: self.params.seed,
        };
        match Graph::extended(old, vectors, &order, params, progress) {
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

    #[cfg(test)]
    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Always `false`: kept for compatibility (the index held a second graph, `hnsw_rs`'s,
    /// after `new` and `add` when `hnsw_rs` inserted).
    pub fn holds_hnsw_rs_graph(&self) -> bool {
        false
    }

    /// Bytes held by the graph and its vectors.
    pub fn search_copy_bytes(&self) -> usize {
        self.graph.heap_bytes()
    }

    /// Saves the index in this crate's format (header, ids, the `hnsw_rs` dump, checksum):
    /// written to a temporary file, synced, then renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::persist::save_hnsw(self, path)
    }

    /// Loads an index saved by [`HnswIndex::save`]. The checksum and every header field are
    /// verified, then the embedded `hnsw_rs` dump is read straight into the flat arrays
    /// searches use and checked (every row exactly once) before this returns; the vectors are
    /// held once, and [`VectorIndex::add`] inserts into the loaded graph.
    pub fn load(path: &Path) -> Result<Self> {
        crate::persist::load_hnsw(path)
    }

    /// Errors unless the stored model id equals `expected`.
    pub fn check_model_id(&self, expected: &str) -> Result<()> {
        crate::persist::check_model(&self.model_id, expected)
    }

    /// The `hnsw_rs` dump (graph file, data file) as bytes, written from the graph: in a
    /// loaded index's own layout until it is added to, else in [`DumpLayout::native`]'s.
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
        self.graph
            .write_dump(layout, &HnswDistance::new(self.metric))
            .map_err(Error::Hnsw)
    }

    /// Rebuilds an index from a verified file's parts.
    pub(crate) fn from_dump(
        path: &Path,
        l: &Loaded<'_>,
        graph: &[u8],
        data: &[u8],
    ) -> Result<Self> {
        let mut g = graph;
        let (descr, graph_rest) = std::panic::catch_unwind(move || {
            hnsw_rs::hnswio::load_description(&mut g).map(|d| (d, g))
        })
        .map_err(|_| format_err(path, "unreadable hnsw_rs description"))?
        .map_err(|e| format_err(path, format!("hnsw_rs description: {e}")))?;
        if descr.dimension != l.dim
            || descr.nb_point != l.count
            || descr.max_nb_connection as usize != l.params.m
            || descr.distname != std::any::type_name::<HnswDistance>()
            || descr.t_name != "f32"
        {
            return Err(format_err(
                path,
                format!(
                    "embedded hnsw_rs dump (dim {}, {} points, M {}, distance {}, type {}) disagrees with the header (dim {}, {} points, M {})",
                    descr.dimension,
                    descr.nb_point,
                    descr.max_nb_connection,
                    descr.distname,
                    descr.t_name,
                    l.dim,
                    l.count,
                    l.params.m
                ),
            ));
        }
        // hnsw_rs exits the process on a dump format it does not know.
        if !matches!(descr.format_version, 3 | 4) {
            return Err(format_err(
                path,
                format!("hnsw_rs dump format {}", descr.format_version),
            ));
        }
        check_data_dump(data, l.dim, l.count).map_err(|m| format_err(path, m))?;
        check_graph_dump(graph_rest, descr.nb_layer, descr.dumpmode, l.count)
            .map_err(|m| format_err(path, m))?;
        if descr.dumpmode != 1 {
            return Err(format_err(
                path,
                "embedded hnsw_rs dump is a light dump (neighbours without their layer and rank)",
            ));
        }
        // Read the dump straight into the graph searches use, as hnsw_rs would reload it
        // and `Graph::export` copy it out; this also checks what the framing checks above
        // cannot (every row present once on the layers searches walk, up to the entry point's
        // level; seen from the fuzzer: a dump framing six points of which hnsw_rs walks four),
        // so a file it refuses is a load error, not a loaded index whose every search fails.
        let (graph, layout) = Graph::from_dump(
            l.metric,
            l.dim,
            l.count,
            graph,
            graph.len() - graph_rest.len(),
            descr.nb_layer,
            data,
        )
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

/// Hands an `hnsw_rs` dump to `hnsw_rs` (through files in a temporary folder, its only way in)
/// and returns the graph it reloads (to compare against in tests and benchmarks). `path` names
/// the source in errors.
pub(crate) fn hnsw_rs_load(
    path: &Path,
    graph: &[u8],
    data: &[u8],
    metric: Metric,
    count: usize,
) -> Result<Hnsw<'static, f32, HnswDistance>> {
    let dir = tempfile::tempdir().map_err(io_err(Path::new("<temporary directory>")))?;
    for (name, bytes) in [("hnsw.hnsw.graph", graph), ("hnsw.hnsw.data", data)] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).map_err(io_err(&p))?;
    }
    // The reloaded graph borrows its loader for its whole life: the loader (a few hundred
    // bytes) is leaked.
    let io: &'static HnswIo = Box::leak(Box::new(HnswIo::new(dir.path(), "hnsw")));
    let mut hnsw = std::panic::catch_unwind(move || {
        io.load_hnsw_with_dist::<f32, HnswDistance>(HnswDistance { metric })
    })
    .map_err(|_| format_err(path, "hnsw_rs could not reload the dump"))?
    .map_err(|e| format_err(path, format!("hnsw_rs: {e}")))?;
    if hnsw.get_nb_point() != count {
        return Err(format_err(
            path,
            "hnsw_rs reloaded a different number of points",
        ));
    }
    hnsw.set_searching_mode(true);
    Ok(hnsw)
}

/// `hnsw_rs`'s own search on an index's graph ([`HnswIndex::hnsw_rs_searcher`]).
#[doc(hidden)]
pub struct HnswRsSearcher {
    hnsw: Hnsw<'static, f32, HnswDistance>,
    dim: usize,
    metric: Metric,
}

impl HnswRsSearcher {
    /// Searches a batch of queries (in parallel) with `hnsw_rs`'s search, candidate list
    /// size `ef` (raised to `k`).
    pub fn search_with_ef(&self, queries: &[f32], k: usize, ef: usize) -> Result<Vec<Vec<Hit>>> {
        check_queries(queries, self.dim, k)?;
        check_ef(ef)?;
        let n = self.hnsw.get_nb_point();
        Ok(queries
            .par_chunks_exact(self.dim)
            .map(|q| {
                let k = k.min(n);
                let mut hits: Vec<Hit> = self
                    .hnsw
                    .search(q, k, ef.max(k))
                    .iter()
                    .map(|nb| Hit {
                        row: nb.d_id,
                        score: match self.metric {
                            Metric::InnerProduct => 1.0 - nb.distance,
                            Metric::L2 => -nb.distance,
                        } + 0.0,
                    })
                    .collect();
                hits.sort_unstable_by(best_first);
                hits.truncate(k);
                hits
            })
            .collect())
    }
}

fn check_ef(ef: usize) -> Result<()> {
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

/// Checks the framing of an `hnsw_rs` data dump (native-endian, as `hnsw_rs` writes it): a
/// header (magic u32, dimension usize), then per point magic u32, origin id u64, byte length
/// u64 and the vector. `hnsw_rs` trusts each length: it allocates it, reads `dim` floats from
/// it unchecked, and exits the process when a read fails, so every record must be exactly one
/// vector of `dim` f32 and the dump must hold exactly `count` of them.
fn check_data_dump(data: &[u8], dim: usize, count: usize) -> std::result::Result<(), String> {
    const MAGIC_DATA: u32 = 0xa67f_0000;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(data.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(data.get(at..at + 8)?.try_into().ok()?))
    };
    if u32_at(0) != Some(MAGIC_DATA) || u64_at(4) != Some(dim as u64) {
        return Err("embedded hnsw_rs data dump has a bad header".into());
    }
    let record = 4 + 8 + 8 + dim * 4;
    let body = data.len() - 12;
    if count.checked_mul(record) != Some(body) {
        return Err(format!(
            "embedded hnsw_rs data dump holds {body} bytes, {count} points of dimension {dim} need {}",
            count.saturating_mul(record)
        ));
    }
    for i in 0..count {
        let at = 12 + i * record;
        if u32_at(at) != Some(MAGIC_DATA) || u64_at(at + 12) != Some(dim as u64 * 4) {
            return Err(format!(
                "embedded hnsw_rs data dump: record {i} is malformed"
            ));
        }
    }
    Ok(())
}

/// Checks the framing of an `hnsw_rs` graph dump after its description (native-endian): the
/// layer count (at most 16), then per layer a magic u32 and a point count (usize), per point a
/// magic u32, origin id (usize), layer (u8), rank (i32) and, for each of the description's
/// layers, a neighbour count (usize) and that many neighbours; then the entry point. `hnsw_rs`
/// allocates every count it reads and, once the points outnumber the data dump's records,
/// exits the process, so the counts are checked against the bytes there are and the points
/// must number exactly `count`.
fn check_graph_dump(
    g: &[u8],
    descr_layers: u8,
    dumpmode: u8,
    count: usize,
) -> std::result::Result<(), String> {
    const MAGIC_LAYER: u32 = 0x000a_676f;
    const MAGIC_POINT: u32 = 0x000a_678f;
    const MAX_LAYERS: u8 = 16;
    let bad = |what: &str| format!("embedded hnsw_rs graph dump: {what}");
    let mut at = 0usize;
    let mut take = |n: usize| -> std::result::Result<&[u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= g.len())
            .ok_or_else(|| bad("truncated"))?;
        let out = &g[at..end];
        at = end;
        Ok(out)
    };
    fn num(b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        u64::from_ne_bytes(a)
    }
    if descr_layers > MAX_LAYERS {
        return Err(bad("too many layers in the description"));
    }
    let layers = take(1)?[0];
    if layers > MAX_LAYERS {
        return Err(bad("too many layers"));
    }
    let neighbour = 8 + if dumpmode == 1 { 5 } else { 0 } + 4;
    let mut points = 0usize;
    for _ in 0..layers {
        if num(take(4)?) != u64::from(MAGIC_LAYER) {
            return Err(bad("bad layer magic"));
        }
        let n = num(take(8)?);
        points = usize::try_from(n)
            .ok()
            .and_then(|n| points.checked_add(n))
            .filter(|&p| p <= count)
            .ok_or_else(|| bad("more points than the index holds"))?;
        for _ in 0..n {
            if num(take(4)?) != u64::from(MAGIC_POINT) {
                return Err(bad("bad point magic"));
            }
            take(8 + 1 + 4)?;
            for _ in 0..descr_layers {
                let k = usize::try_from(num(take(8)?)).map_err(|_| bad("neighbour count"))?;
                take(
                    k.checked_mul(neighbour)
                        .ok_or_else(|| bad("neighbour count"))?,
                )?;
            }
        }
    }
    if points != count {
        return Err(bad("fewer points than the index holds"));
    }
    take(8 + 1 + 4).map(|_| ())
}
