//! Comparisons with the `hnsw_rs` crate, behind the `hnsw-rs-compare` feature: its insertion
//! ([`HnswIndex::build_with_hnsw_rs`], the graph copied out of `hnsw_rs` afterwards) and its
//! search on an index's graph ([`HnswIndex::hnsw_rs_searcher`], `hnsw_rs` reloading the
//! index's dump). Tests and benchmarks measure build time and recall against them; nothing
//! else in the crate uses `hnsw_rs`.

use std::path::Path;
use std::sync::Arc;

use hnsw_rs::prelude::{Hnsw, HnswIo, Point};
use rayon::prelude::*;

use super::distance::{Distance, GraphDistance};
use super::dump::{Description, DumpLayout};
use super::graph::{BLOCK, Graph, Node};
use super::index::{HnswIndex, check_ef};
use crate::error::{Error, Result, format_err, io_err};
use crate::topk::best_first;
use crate::{Hit, HnswParams, Metric, check_queries};

/// Number of layers `hnsw_rs` keeps (its own maximum).
const MAX_LAYERS: usize = 16;

/// The distance `hnsw_rs` sees. `hnsw_rs` asserts that distances are never negative, so
/// inner product and cosine get `max(0, 1 - dot)` (the stock `DistDot` panics when rounding
/// pushes a unit-vector dot product above 1), which orders unit vectors as minus the inner
/// product does; L2 gets the squared L2 distance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HnswDistance {
    metric: Metric,
}

impl HnswDistance {
    #[cfg(test)]
    pub(crate) fn new(metric: Metric) -> Self {
        Self { metric }
    }
}

impl hnsw_rs::prelude::Distance<f32> for HnswDistance {
    #[inline]
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = match self.metric {
            Metric::L2 => Distance::SquaredL2,
            Metric::InnerProduct | Metric::Cosine => Distance::ClampedDot,
        };
        GraphDistance::of(d).eval(a, b)
    }
}

impl HnswIndex {
    /// Builds the graph with `hnsw_rs`'s own insertion (`Hnsw::parallel_insert_slice`) and
    /// copies it out, to compare build time and recall against in tests and benchmarks. Same
    /// input order as [`HnswIndex::build`]. For inner product `hnsw_rs` orders by
    /// `max(0, 1 - dot)`: give it unit vectors.
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
        let vectors = metric.prepared(vectors, dim);
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
        let distance = index.graph.distance;
        index.graph = Graph::export(&hnsw, distance, dim, ids.len()).map_err(fail)?;
        index.layout = Some(DumpLayout::of_hnsw_rs(&hnsw, dim, ids.len()).map_err(fail)?);
        index.ids.extend(ids)?;
        Ok(index)
    }

    /// The graph reloaded by `hnsw_rs` from this index's dump, to search with `hnsw_rs`'s own
    /// search (slower; kept to compare recall and speed against in tests and benchmarks).
    /// `hnsw_rs` reads dumps in the host's byte order: little-endian hosts only.
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
}

/// Hands a dump to `hnsw_rs` (through files in a temporary folder, its only way in) and
/// returns the graph it reloads. `hnsw_rs` wants the stored distance name to be its distance
/// type's `type_name`: the copy it gets says so. `path` names the source in errors.
pub(crate) fn hnsw_rs_load(
    path: &Path,
    graph: &[u8],
    data: &[u8],
    metric: Metric,
    count: usize,
) -> Result<Hnsw<'static, f32, HnswDistance>> {
    let (descr, len) = Description::parse(graph).map_err(|m| format_err(path, m))?;
    let mut renamed = descr.encode_naming(std::any::type_name::<HnswDistance>());
    renamed.extend_from_slice(&graph[len..]);
    let dir = tempfile::tempdir().map_err(io_err(Path::new("<temporary directory>")))?;
    for (name, bytes) in [("hnsw.hnsw.graph", &renamed[..]), ("hnsw.hnsw.data", data)] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).map_err(io_err(&p))?;
    }
    // The reloaded graph borrows its loader for its whole life: the loader (a few hundred
    // bytes) is leaked.
    let io: &'static HnswIo = Box::leak(Box::new(HnswIo::new(dir.path(), "hnsw")));
    let mut hnsw = io
        .load_hnsw_with_dist::<f32, HnswDistance>(HnswDistance { metric })
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
pub struct HnswRsSearcher {
    hnsw: Hnsw<'static, f32, HnswDistance>,
    dim: usize,
    metric: Metric,
}

impl HnswRsSearcher {
    /// Searches a batch of queries (in parallel) with `hnsw_rs`'s search, candidate list
    /// size `ef` (raised to `k`). Inner-product and cosine scores are `1 - distance`.
    pub fn search_with_ef(&self, queries: &[f32], k: usize, ef: usize) -> Result<Vec<Vec<Hit>>> {
        check_queries(queries, self.dim, k)?;
        check_ef(ef)?;
        let queries = self.metric.prepared(queries, self.dim);
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
                            Metric::L2 => -nb.distance,
                            Metric::InnerProduct | Metric::Cosine => 1.0 - nb.distance,
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

/// `hnsw`'s points layer by layer, each layer in rank order: the order `hnsw_rs` dumps them in,
/// which [`Graph::export`] and [`DumpLayout::of_hnsw_rs`] both follow.
fn points_in_dump_order(hnsw: &Hnsw<'static, f32, HnswDistance>) -> Vec<Arc<Point<'static, f32>>> {
    let pi = hnsw.get_point_indexation();
    (0..=pi.get_max_level_observed() as usize)
        .flat_map(|l| pi.get_layer_iterator(l))
        .collect()
}

impl DumpLayout {
    /// The layout `hnsw_rs` dumps `hnsw` with (its description's fields and its points in
    /// [`points_in_dump_order`]), so that [`Graph::write_dump`] of the graph
    /// [`Graph::export`] copies out of `hnsw` writes the dump `hnsw_rs` would write, but for
    /// the distance name (unit test `layout_of_hnsw_rs_writes_hnsw_rs_dump`).
    pub(crate) fn of_hnsw_rs(
        hnsw: &Hnsw<'static, f32, HnswDistance>,
        dim: usize,
        n: usize,
    ) -> std::result::Result<Self, String> {
        let layers = u8::try_from(hnsw.get_max_level())
            .map_err(|_| format!("{} layers", hnsw.get_max_level()))?;
        let pi = hnsw.get_point_indexation();
        let description = Description {
            format: 4,
            dump_mode: 1,
            m: hnsw.get_max_nb_connection(),
            level_scale: pi.get_level_scale(),
            layers,
            ef_construction: hnsw.get_ef_construction() as u64,
            points: hnsw.get_nb_point() as u64,
            dim: dim as u64,
        };
        let order: Vec<u32> = points_in_dump_order(hnsw)
            .iter()
            .map(|p| p.get_origin_id() as u32)
            .collect();
        if order.len() != n {
            return Err(format!(
                "hnsw_rs graph holds {} points, the index {n}",
                order.len()
            ));
        }
        Ok(Self {
            description,
            layers,
            order,
        })
    }
}

impl Graph {
    /// Copies the graph out of `hnsw`, whose points carry our rows `0..n` as origin ids.
    /// Fails (with a message) when the graph does not hold exactly those rows.
    pub(crate) fn export(
        hnsw: &Hnsw<'static, f32, HnswDistance>,
        distance: Distance,
        dim: usize,
        n: usize,
    ) -> std::result::Result<Self, String> {
        if n == 0 {
            return Ok(Self::empty(distance, dim));
        }
        if u32::try_from(n).is_err() {
            return Err(format!("{n} points: more than u32 rows"));
        }
        let max_level = hnsw.get_point_indexation().get_max_level_observed();
        let points = points_in_dump_order(hnsw);
        if points.len() != n {
            return Err(format!(
                "hnsw_rs graph holds {} points, the index {n}",
                points.len()
            ));
        }
        // The entry point is a point of the top layer: the first one placed there (`hnsw_rs` keeps
        // the first whose insertion finished, which is the same point unless inserts raced).
        let entry = points
            .iter()
            .find(|p| p.get_point_id().0 == max_level)
            .map(|p| p.get_origin_id())
            .ok_or("hnsw_rs graph has no point on its top layer")?;
        for p in &points {
            if p.get_v().len() != dim {
                return Err(format!(
                    "hnsw_rs point {} has dimension {}",
                    p.get_origin_id(),
                    p.get_v().len()
                ));
            }
        }
        let nodes: Vec<Node> = points
            .par_iter()
            .map(|p| {
                let level = p.get_point_id().0;
                let hood = p.get_neighborhood_id();
                let links = hood
                    .iter()
                    .take(level as usize + 1)
                    .map(|layer| {
                        layer
                            .iter()
                            .filter(|nb| nb.d_id < n && nb.d_id != p.get_origin_id())
                            .map(|nb| nb.d_id as u32)
                            .collect()
                    })
                    .collect();
                Node {
                    row: p.get_origin_id(),
                    level,
                    links,
                }
            })
            .collect();
        Self::assemble(distance, dim, n, entry, max_level, &nodes, |i, blocks| {
            for (b, src) in blocks.iter_mut().zip(points[i].get_v().chunks(BLOCK)) {
                b.0[..src.len()].copy_from_slice(src);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field that searches read, compared; vectors compared as floats.
    fn assert_same(a: &Graph, b: &Graph) {
        assert_eq!((a.n, a.dim, a.distance), (b.n, b.dim, b.distance));
        assert_eq!((a.entry, a.max_level), (b.entry, b.max_level));
        assert_eq!(a.level, b.level);
        for row in 0..a.n as u32 {
            assert_eq!(a.vector(row), b.vector(row), "vector of row {row}");
            assert_eq!(a.layer0(row), b.layer0(row), "layer 0 of row {row}");
            for l in 1..=a.level[row as usize] {
                assert_eq!(
                    a.upper_links(row, l),
                    b.upper_links(row, l),
                    "layer {l} of row {row}"
                );
            }
        }
    }

    /// A dump's description as `hnsw_rs` reads it (whatever its distance name), its length,
    /// and its distance name.
    fn description_of(graph: &[u8]) -> (Description, usize, String) {
        let mut rest = graph;
        let d = hnsw_rs::hnswio::load_description(&mut rest).unwrap();
        let descr = Description {
            format: d.format_version as u8,
            dump_mode: d.dumpmode,
            m: d.max_nb_connection,
            level_scale: d.level_scale,
            layers: d.nb_layer,
            ef_construction: d.ef as u64,
            points: d.nb_point as u64,
            dim: d.dimension as u64,
        };
        (descr, graph.len() - rest.len(), d.distname)
    }

    /// The distance a graph `hnsw_rs` built for `metric` is ordered by.
    fn hnsw_rs_order(metric: Metric) -> Distance {
        match metric {
            Metric::L2 => Distance::SquaredL2,
            _ => Distance::ClampedDot,
        }
    }

    /// The layout made from a live `hnsw_rs` graph, with the graph copied out of it, writes the
    /// dump `hnsw_rs` writes itself: the same description (but for the distance name, ours a
    /// constant) and data part, byte for byte, and a graph part that reads back (ours, and
    /// `hnsw_rs`'s reload) into the same graph. Only the neighbour lists `hnsw_rs` keeps for
    /// layers above a point's own, which no search walks, are not written. (One insertion
    /// thread: the entry point is then the first point of the top layer, as the copy takes
    /// it.)
    #[test]
    fn layout_of_hnsw_rs_writes_hnsw_rs_dump() {
        let (n, d) = (600, 10);
        let data: Vec<f32> = (0..n * d)
            .map(|i| (((i * 7919) % 1013) as f32 / 1013.0) - 0.5)
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        for metric in [Metric::InnerProduct, Metric::L2] {
            let params = HnswParams {
                m: 8,
                ..HnswParams::default()
            };
            let hnsw = Hnsw::new(
                params.m,
                n,
                16,
                params.ef_construction,
                HnswDistance::new(metric),
            );
            let batch: Vec<(&[f32], usize)> = data.chunks_exact(d).zip(0..n).collect();
            pool.install(|| hnsw.parallel_insert_slice(&batch));
            // hnsw_rs's own dump, through its files.
            let dir = tempfile::tempdir().unwrap();
            let base = hnsw_rs::prelude::AnnT::file_dump(&hnsw, dir.path(), "hnsw").unwrap();
            let their_graph = std::fs::read(dir.path().join(format!("{base}.hnsw.graph"))).unwrap();
            let their_data = std::fs::read(dir.path().join(format!("{base}.hnsw.data"))).unwrap();
            // Ours: the graph copied out and written in the layout read off hnsw_rs's graph.
            let layout = DumpLayout::of_hnsw_rs(&hnsw, d, n).unwrap();
            // A graph we build for the same parameters gets hnsw_rs's description too.
            let ids: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
            let native = HnswIndex::build(d, metric, params, &ids, &data).unwrap();
            let native = DumpLayout::native(native.graph(), 8, params.ef_construction);
            assert_eq!(native.description, layout.description, "{metric}");
            let order = hnsw_rs_order(metric);
            let copied = Graph::export(&hnsw, order, d, n).unwrap();
            let (our_graph, our_data) = copied.write_dump(&layout).unwrap();
            assert!(our_data == their_data, "{metric}: data parts differ");
            let (ours, our_len, our_name) = description_of(&our_graph);
            let (theirs, their_len, _) = description_of(&their_graph);
            assert_eq!(ours, theirs, "{metric}: descriptions");
            assert_eq!(our_name, super::super::dump::DISTANCE_NAME);
            assert_eq!(
                Description::parse(&our_graph).unwrap(),
                (ours.clone(), our_len)
            );
            let read = |g: &[u8], len: usize| {
                Graph::from_dump(order, d, n, g, (&ours, len), &our_data)
                    .unwrap()
                    .0
            };
            let theirs = read(&their_graph, their_len);
            assert_same(&read(&our_graph, our_len), &theirs);
            let reloaded = hnsw_rs_load(Path::new("t"), &our_graph, &our_data, metric, n).unwrap();
            assert_same(&Graph::export(&reloaded, order, d, n).unwrap(), &theirs);
        }
    }

    /// Reading a dump ourselves gives the graph `hnsw_rs`'s reload gives (copied out with
    /// `export`), and writing it back then reading that gives it again.
    #[test]
    fn from_dump_equals_hnsw_rs_reload_and_write_dump_round_trips() {
        let (n, d) = (700, 12);
        let data: Vec<f32> = (0..n * d)
            .map(|i| (((i * 7919) % 1009) as f32 / 1009.0) - 0.5)
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        for metric in [Metric::InnerProduct, Metric::L2] {
            let params = HnswParams {
                m: 8,
                ..HnswParams::default()
            };
            let index = HnswIndex::build(d, metric, params, &ids, &data).unwrap();
            let distance = index.graph_distance();
            let (graph, dump) = index.dump_bytes().unwrap();
            let descr = Description::parse(&graph).unwrap();
            let (ours, layout) =
                Graph::from_dump(distance, d, n, &graph, (&descr.0, descr.1), &dump).unwrap();
            let reloaded = hnsw_rs_load(Path::new("t"), &graph, &dump, metric, n).unwrap();
            let theirs = Graph::export(&reloaded, distance, d, n).unwrap();
            assert_same(&ours, &theirs);
            // ... and both are the graph the build made.
            assert_same(&ours, index.graph());

            let (graph2, dump2) = ours.write_dump(&layout).unwrap();
            assert_eq!(
                dump2, dump,
                "{metric}: the data part is written as it was read"
            );
            let (again, layout2) =
                Graph::from_dump(distance, d, n, &graph2, (&descr.0, descr.1), &dump2).unwrap();
            assert_same(&again, &ours);
            assert_eq!(layout2.order, layout.order);
            // hnsw_rs takes the written dump back, and gives the same graph.
            let reloaded2 = hnsw_rs_load(Path::new("t"), &graph2, &dump2, metric, n).unwrap();
            assert_same(&Graph::export(&reloaded2, distance, d, n).unwrap(), &ours);
        }
    }
}
