//! An HNSW graph in flat arrays, the standard HNSW search on it (greedy descent through the
//! upper layers, then an `ef`-bounded best-first search of layer 0, as in hnswlib and FAISS),
//! its insertion ([`build`]), and its reading from and writing to `hnsw_rs` dumps (the file
//! format); [`Graph::export`] copies a graph `hnsw_rs` built, for comparisons.
//!
//! `hnsw_rs`'s own search allocates an `Arc` per candidate, keeps visited points in a SipHash
//! `HashMap` and takes a read lock per neighbour list; at d = 768 that made it ~14x slower than
//! FAISS on the same graph. Here neighbour lists are rows of `u32`, vectors one aligned matrix,
//! the visited set a generation-stamped array reused per thread, and heap entries one `u64`.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use std::sync::Arc;

use hnsw_rs::prelude::{Hnsw, Point};
use rayon::prelude::*;

pub(crate) mod build;

use crate::hnsw::HnswDistance;
use crate::huge_pages;
use crate::topk::best_first;
use crate::{Hit, Metric, kernels};

/// Floats per 64-byte block; rows of the vector matrix start on a block.
const BLOCK: usize = 16;

/// Most cache lines of a neighbour's vector prefetched before its distance is computed (the
/// whole row up to d = 1024; the hardware prefetcher follows longer rows).
const PREFETCH_LINES: usize = 64;

/// How many neighbours ahead of the one being measured the prefetch runs. Measured at d = 768
/// on 20k points (Zen 4, 2 cores, CPU time per single query): whole rows into L2 (`T1`) 4 to 10
/// ahead took 0.16-0.18 ms at ef 16, against 0.23 ms for 24 lines into L1 3 ahead, 0.26-0.29
/// ms for whole rows into L1, ~0.25 ms for no prefetch.
const PREFETCH_AHEAD: usize = 5;

/// One cache line of floats, so that a `Vec<Block>` is 64-byte aligned.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Block([f32; BLOCK]);

/// The graph and vectors of an `hnsw_rs` index, indexed by our rows.
pub(crate) struct Graph {
    metric: Metric,
    dim: usize,
    /// Rows of the graph (equals the index's length).
    n: usize,
    /// Blocks per vector row.
    row_blocks: usize,
    /// `n * row_blocks` blocks, row-major, zero padded.
    vectors: Vec<Block>,
    /// Layer 0: per row `1 + l0_max` u32, the neighbour count then the neighbours.
    l0: Vec<u32>,
    l0_stride: usize,
    /// Upper layers: rows with level >= 1 own `level` consecutive records of `upper_stride` u32
    /// (count then neighbours) for layers 1..=level, starting at `upper_start[row]`.
    upper: Vec<u32>,
    upper_stride: usize,
    upper_start: Vec<u32>,
    level: Vec<u8>,
    entry: u32,
    max_level: u8,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("n", &self.n)
            .field("dim", &self.dim)
            .field("max_level", &self.max_level)
            .field("entry", &self.entry)
            .finish()
    }
}

/// One exported point: its row, level and neighbour rows per layer 0..=level.
struct Node {
    row: usize,
    level: u8,
    links: Vec<Vec<u32>>,
}

impl Graph {
    /// A graph of no points.
    pub(crate) fn empty(metric: Metric, dim: usize) -> Self {
        Self {
            metric,
            dim,
            n: 0,
            row_blocks: dim.div_ceil(BLOCK),
            vectors: Vec::new(),
            l0: Vec::new(),
            l0_stride: 1,
            upper: Vec::new(),
            upper_stride: 1,
            upper_start: Vec::new(),
            level: Vec::new(),
            entry: 0,
            max_level: 0,
        }
    }

    /// Copies the graph out of `hnsw`, whose points carry our rows `0..n` as origin ids.
    /// Fails (with a message) when the graph does not hold exactly those rows.
    pub(crate) fn export(
        hnsw: &Hnsw<'static, f32, HnswDistance>,
        metric: Metric,
        dim: usize,
        n: usize,
    ) -> Result<Self, String> {
        if n == 0 {
            return Ok(Self::empty(metric, dim));
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
        Self::assemble(metric, dim, n, entry, max_level, &nodes, |i, blocks| {
            for (b, src) in blocks.iter_mut().zip(points[i].get_v().chunks(BLOCK)) {
                b.0[..src.len()].copy_from_slice(src);
            }
        })
    }

    /// Lays `nodes` (each row of `0..n` exactly once) out in flat arrays; `fill(i, blocks)`
    /// writes node `i`'s vector into its row's zeroed blocks.
    fn assemble(
        metric: Metric,
        dim: usize,
        n: usize,
        entry: usize,
        max_level: u8,
        nodes: &[Node],
        fill: impl Fn(usize, &mut [Block]) + Sync,
    ) -> Result<Self, String> {
        let row_blocks = dim.div_ceil(BLOCK);
        if nodes.len() != n {
            return Err(format!("graph holds {} points, the index {n}", nodes.len()));
        }
        let l0_max = nodes
            .iter()
            .map(|nd| nd.links.first().map_or(0, Vec::len))
            .max()
            .unwrap_or(0);
        let up_max = nodes
            .iter()
            .flat_map(|nd| nd.links.iter().skip(1).map(Vec::len))
            .max()
            .unwrap_or(0);
        let (l0_stride, upper_stride) = (1 + l0_max, 1 + up_max);
        let mut g = Self {
            metric,
            dim,
            n,
            row_blocks,
            vectors: huge_pages::filled(n * row_blocks, Block::default()),
            l0: huge_pages::filled(n * l0_stride, 0),
            l0_stride,
            upper_stride,
            upper_start: vec![u32::MAX; n],
            level: vec![0; n],
            entry: entry as u32,
            max_level,
            upper: Vec::new(),
        };
        let mut seen = vec![false; n];
        for nd in nodes {
            let r = nd.row;
            if r >= n || std::mem::replace(&mut seen[r], true) {
                return Err(format!("graph holds row {r} twice or out of range"));
            }
            g.level[r] = nd.level;
            if nd.level > 0 {
                g.upper_start[r] = u32::try_from(g.upper.len())
                    .map_err(|_| "upper layers too large for u32 offsets".to_string())?;
                for l in 1..=nd.level as usize {
                    let list = nd.links.get(l).map_or(&[][..], Vec::as_slice);
                    g.upper.push(list.len() as u32);
                    g.upper.extend_from_slice(list);
                    g.upper.resize(g.upper.len() + up_max - list.len(), 0);
                }
            }
        }
        // Vectors and layer 0 are filled in parallel: rows are disjoint chunks.
        let by_row = {
            let mut by_row = vec![usize::MAX; n];
            for (i, nd) in nodes.iter().enumerate() {
                by_row[nd.row] = i;
            }
            by_row
        };
        g.vectors
            .par_chunks_mut(row_blocks)
            .zip(g.l0.par_chunks_mut(l0_stride))
            .zip(by_row.par_iter())
            .for_each(|((blocks, links), &i)| {
                let nd = &nodes[i];
                fill(i, blocks);
                let list = nd.links.first().map_or(&[][..], Vec::as_slice);
                links[0] = list.len() as u32;
                links[1..=list.len()].copy_from_slice(list);
            });
        Ok(g)
    }

    /// Approximate memory held, in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.vectors.len() * std::mem::size_of::<Block>()
            + 4 * (self.l0.len() + self.upper.len() + self.upper_start.len())
            + self.level.len()
    }

    #[inline(always)]
    fn row_ptr(&self, row: u32) -> *const f32 {
        // In bounds: rows come from the graph, which only stores rows < n.
        self.vectors[row as usize * self.row_blocks].0.as_ptr()
    }

    #[inline(always)]
    fn vector(&self, row: u32) -> &[f32] {
        let blocks = &self.vectors[row as usize * self.row_blocks..][..self.row_blocks];
        // SAFETY: `Block` is `repr(C)` around `[f32; 16]` (size 64, no padding), so `row_blocks`
        // consecutive blocks are `16 * row_blocks >= dim` initialised, aligned f32.
        let floats = unsafe {
            std::slice::from_raw_parts(blocks.as_ptr().cast::<f32>(), self.row_blocks * BLOCK)
        };
        &floats[..self.dim]
    }

    #[inline(always)]
    fn layer0(&self, row: u32) -> &[u32] {
        let rec = &self.l0[row as usize * self.l0_stride..][..self.l0_stride];
        &rec[1..=rec[0] as usize]
    }

    #[inline(always)]
    fn upper_links(&self, row: u32, layer: u8) -> &[u32] {
        let r = row as usize;
        if self.level[r] < layer {
            return &[];
        }
        let at = self.upper_start[r] as usize + (layer as usize - 1) * self.upper_stride;
        let rec = &self.upper[at..at + self.upper_stride];
        &rec[1..=rec[0] as usize]
    }

    /// The `k` best rows for `query` (already checked: `dim` finite floats), best first,
    /// with candidate list size `ef` (raised to `k`).
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<Hit> {
        if self.n == 0 || k == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.search_in(&mut s, query, k, ef),
            // Only reachable if a search ran inside another on this thread; use a fresh buffer.
            Err(_) => self.search_in(&mut Scratch::default(), query, k, ef),
        })
    }

    fn search_in(&self, s: &mut Scratch, query: &[f32], k: usize, ef: usize) -> Vec<Hit> {
        // One instance per metric, the metric a constant in each: its branch in
        // `GraphDistance::eval` folds away in the hot loop.
        match self.metric {
            Metric::InnerProduct => {
                let d = GraphDistance::of(Metric::InnerProduct);
                self.search_with(s, k, ef, |v| d.eval(query, v))
            }
            Metric::L2 => {
                let d = GraphDistance::of(Metric::L2);
                self.search_with(s, k, ef, |v| d.eval(query, v))
            }
        }
    }

    #[inline(always)]
    fn search_with<D: Fn(&[f32]) -> f32>(
        &self,
        s: &mut Scratch,
        k: usize,
        ef: usize,
        dist: D,
    ) -> Vec<Hit> {
        let key_of = |row: u32| key(dist(self.vector(row)), row);
        // Greedy descent through the upper layers, then a best-first search of layer 0.
        let mut cur = key_of(self.entry);
        for layer in (1..=self.max_level).rev() {
            cur = descend(&OnLayer { g: self, layer }, cur, key_of);
        }
        self.search_layer(s, &OnLayer { g: self, layer: 0 }, cur, ef, key_of);

        let mut found: Vec<u64> = s.top.drain().collect();
        found.sort_unstable();
        found.truncate(k);
        let mut hits: Vec<Hit> = found
            .into_iter()
            .map(|kd| {
                let d = f32::from_bits((kd >> 32) as u32);
                Hit {
                    row: row_of(kd) as usize,
                    score: match self.metric {
                        Metric::InnerProduct => 1.0 - d,
                        Metric::L2 => -d,
                    } + 0.0,
                }
            })
            .collect();
        hits.sort_unstable_by(best_first);
        hits
    }
}

/// The graph's distance, the one [`HnswDistance`] gives `hnsw_rs`: `max(0, 1 - dot)` for inner
/// product, the squared L2 distance (at least 0) otherwise, with the kernel looked up once.
/// Never negative or NaN (`f32::max` returns 0 for a NaN left operand: inf - inf on
/// overflowing input), which [`key`] and `hnsw_rs` rely on.
#[derive(Clone, Copy)]
pub(crate) struct GraphDistance {
    metric: Metric,
    kernel: kernels::Kernel,
}

impl GraphDistance {
    #[inline(always)]
    pub(crate) fn of(metric: Metric) -> Self {
        let kernel = match metric {
            Metric::InnerProduct => kernels::dot_kernel(),
            Metric::L2 => kernels::l2_kernel(),
        };
        Self { metric, kernel }
    }

    #[inline(always)]
    pub(crate) fn eval(self, a: &[f32], b: &[f32]) -> f32 {
        let v = (self.kernel)(a, b);
        match self.metric {
            Metric::InnerProduct => (1.0 - v).max(0.0),
            Metric::L2 => v.max(0.0),
        }
    }
}

/// Neighbour lists on one layer, as a search walks them: the graph's own ([`OnLayer`]), or
/// those of a graph being built.
trait Lists {
    /// Calls `f` with each neighbour of `row`.
    fn each(&self, row: u32, f: impl FnMut(u32));
}

/// The graph's lists on `layer`.
struct OnLayer<'a> {
    g: &'a Graph,
    layer: u8,
}

impl Lists for OnLayer<'_> {
    #[inline(always)]
    fn each(&self, row: u32, mut f: impl FnMut(u32)) {
        let list = match self.layer {
            0 => self.g.layer0(row),
            layer => self.g.upper_links(row, layer),
        };
        for &nb in list {
            f(nb);
        }
    }
}

/// Greedy descent on one layer: from `cur`, moves to the nearest neighbour (keys of `key_of`)
/// until none is nearer; returns where it stopped.
#[inline(always)]
fn descend(lists: &impl Lists, mut cur: u64, key_of: impl Fn(u32) -> u64) -> u64 {
    loop {
        let mut best = cur;
        lists.each(row_of(cur), |nb| {
            let kn = key_of(nb);
            if kn < best {
                best = kn;
            }
        });
        if best == cur {
            return cur;
        }
        cur = best;
    }
}

impl Graph {
    /// Best-first search of one layer's `lists` from `start`, keeping the `ef` nearest points
    /// seen (keys of `key_of`) in `s.top`.
    #[inline(always)]
    fn search_layer(
        &self,
        s: &mut Scratch,
        lists: &impl Lists,
        start: u64,
        ef: usize,
        key_of: impl Fn(u32) -> u64,
    ) {
        let stamp = s.next_stamp(self.n);
        let (visited, cand, top, fresh) = (&mut s.visited, &mut s.cand, &mut s.top, &mut s.fresh);
        let lines = self.row_blocks.min(PREFETCH_LINES);
        cand.clear();
        top.clear();
        visited[row_of(start) as usize] = stamp;
        cand.push(Reverse(start));
        top.push(start);
        let mut worst = start;
        while let Some(Reverse(c)) = cand.pop() {
            if c > worst && top.len() >= ef {
                break;
            }
            // Collect the unvisited neighbours, then measure them while prefetching the
            // vectors of those a few places ahead, so memory loads overlap arithmetic.
            fresh.clear();
            lists.each(row_of(c), |nb| {
                let v = &mut visited[nb as usize];
                if *v != stamp {
                    *v = stamp;
                    fresh.push(nb);
                }
            });
            for &nb in fresh.iter().take(PREFETCH_AHEAD) {
                prefetch(self.row_ptr(nb), lines);
            }
            for (j, &nb) in fresh.iter().enumerate() {
                if let Some(&next) = fresh.get(j + PREFETCH_AHEAD) {
                    prefetch(self.row_ptr(next), lines);
                }
                let kn = key_of(nb);
                if top.len() < ef || kn < worst {
                    cand.push(Reverse(kn));
                    top.push(kn);
                    if top.len() > ef {
                        top.pop();
                    }
                    if let Some(&t) = top.peek() {
                        worst = t;
                    }
                }
            }
        }
    }
}

/// A heap entry: the distance's bits above the row. Distances are never negative (`+ 0.0`
/// turns -0.0 into 0.0) nor NaN, so comparing the bits compares the distances, and equal
/// distances order by row.
#[inline(always)]
fn key(d: f32, row: u32) -> u64 {
    (u64::from((d + 0.0).to_bits()) << 32) | u64::from(row)
}

#[inline(always)]
fn row_of(key: u64) -> u32 {
    key as u32
}

#[inline(always)]
fn prefetch(p: *const f32, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        for i in 0..lines {
            // SAFETY: prefetching is a hint that never faults; `lines` stays within the row.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(i * BLOCK).cast::<i8>()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, lines);
}

/// Per-thread search buffers, reused across queries and indexes.
#[derive(Default)]
struct Scratch {
    /// `visited[row] == stamp` marks rows seen by the current query.
    visited: Vec<u32>,
    stamp: u32,
    cand: BinaryHeap<Reverse<u64>>,
    top: BinaryHeap<u64>,
    fresh: Vec<u32>,
}

impl Scratch {
    /// A stamp no row of `visited` (grown to `n`) carries yet.
    fn next_stamp(&mut self, n: usize) -> u32 {
        if self.visited.len() < n {
            self.visited.resize(n, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.visited.fill(0);
            self.stamp = 1;
        }
        self.stamp
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

// ---------------------------------------------------------------------------------------------
// `hnsw_rs` dumps, read into a `Graph` and written back from one, so that a loaded index holds
// its vectors once (in the `Graph`) instead of a second time in a reloaded `hnsw_rs` graph.
// The layout is `hnsw_rs` 0.3's `DumpMode::Full` (native-endian); `HnswIndex::from_dump` checks
// its framing first (`check_graph_dump`, `check_data_dump`).

const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_POINT: u32 = 0x000a_678f;
pub(crate) const MAGIC_DATA: u32 = 0xa67f_0000;

/// What writing a loaded graph back as an `hnsw_rs` dump needs beyond the graph itself.
#[derive(Debug, Clone)]
pub(crate) struct DumpLayout {
    /// The dump's description, byte for byte (dimension, point count, `M`, distance name...).
    description: Vec<u8>,
    /// Neighbour lists written per point (the description's layer count; 16 in `hnsw_rs`).
    descr_layers: u8,
    /// Layers in the graph part (16 in `hnsw_rs`, most of them empty).
    layers: u8,
    /// Rows in dump order: layer by layer, by rank within the layer.
    order: Vec<u32>,
}

/// `hnsw`'s points layer by layer, each layer in rank order: the order `hnsw_rs` dumps them in,
/// which [`Graph::export`] and [`DumpLayout::of_hnsw_rs`] both follow.
fn points_in_dump_order(hnsw: &Hnsw<'static, f32, HnswDistance>) -> Vec<Arc<Point<'static, f32>>> {
    let pi = hnsw.get_point_indexation();
    (0..=pi.get_max_level_observed() as usize)
        .flat_map(|l| pi.get_layer_iterator(l))
        .collect()
}

/// `hnsw_rs`'s magic number of a version-4 description (the first bytes of a graph dump).
const MAGIC_DESCR_4: u32 = 0x002a_6779;

impl DumpLayout {
    /// The layout `hnsw_rs` dumps `hnsw` with (its description, byte for byte as `hnsw_rs`
    /// writes it, and its points in [`points_in_dump_order`]), so that [`Graph::write_dump`]
    /// of the graph [`Graph::export`] copies out of `hnsw` writes, without `hnsw_rs`'s graph,
    /// the dump `hnsw_rs` would write: the same description and data part, and a graph part
    /// that reads back into the same graph (unit test `layout_of_hnsw_rs_writes_hnsw_rs_dump`).
    pub(crate) fn of_hnsw_rs(
        hnsw: &Hnsw<'static, f32, HnswDistance>,
        dim: usize,
        n: usize,
    ) -> Result<Self, String> {
        let layers = u8::try_from(hnsw.get_max_level())
            .map_err(|_| format!("{} layers", hnsw.get_max_level()))?;
        let pi = hnsw.get_point_indexation();
        let description = description(
            hnsw.get_max_nb_connection(),
            pi.get_level_scale(),
            layers,
            hnsw.get_ef_construction(),
            hnsw.get_nb_point(),
            dim,
        );
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
            descr_layers: layers,
            layers,
            order,
        })
    }
}

impl DumpLayout {
    /// The layout for a graph this crate built: the description `hnsw_rs` would write for an
    /// index of these parameters (`hnsw_rs`'s level scale `1 / ln M`, its 16 layers), points
    /// layer by layer in row order, the entry point first on the top layer (where a reload
    /// takes it from).
    pub(crate) fn native(graph: &Graph, m: u8, ef_construction: usize) -> Self {
        const LAYERS: u8 = 16;
        let mut order: Vec<u32> = (0..graph.n as u32).collect();
        order.sort_by_key(|&r| (graph.level[r as usize], r != graph.entry, r));
        Self {
            description: description(
                m,
                1.0 / f64::from(m).ln(),
                LAYERS,
                ef_construction,
                graph.n,
                graph.dim,
            ),
            descr_layers: LAYERS,
            layers: LAYERS,
            order,
        }
    }
}

/// The description part of an `hnsw_rs` 0.3 dump (format 4, full dump), byte for byte.
fn description(m: u8, scale: f64, layers: u8, ef: usize, n: usize, dim: usize) -> Vec<u8> {
    let mut d = Vec::with_capacity(96);
    d.extend_from_slice(&MAGIC_DESCR_4.to_ne_bytes());
    d.push(1); // a full dump: neighbours with their layer and rank
    d.push(m);
    d.extend_from_slice(&scale.to_ne_bytes());
    d.push(layers);
    d.extend_from_slice(&ef.to_ne_bytes());
    d.extend_from_slice(&n.to_ne_bytes());
    d.extend_from_slice(&dim.to_ne_bytes());
    for name in [
        std::any::type_name::<HnswDistance>(),
        std::any::type_name::<f32>(),
    ] {
        d.extend_from_slice(&name.len().to_ne_bytes());
        d.extend_from_slice(name.as_bytes());
    }
    d
}

/// A neighbour as the dump names it: (distance, layer, rank in layer).
type DumpNeighbour = (f32, u8, i32);

/// A point of a graph dump, before its neighbours are resolved to rows.
struct DumpPoint {
    origin: usize,
    hood: Vec<Vec<DumpNeighbour>>,
}

/// A bounds-checked reader of native-endian numbers.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("embedded hnsw_rs graph dump: truncated")?;
        let out = &self.b[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_ne_bytes)
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.array().map(i32::from_ne_bytes)
    }
    fn usize(&mut self) -> Result<usize, String> {
        let v = u64::from_ne_bytes(self.array()?);
        usize::try_from(v).map_err(|_| "embedded hnsw_rs graph dump: count too large".into())
    }
    fn f32(&mut self) -> Result<f32, String> {
        self.array().map(f32::from_ne_bytes)
    }
}

impl Graph {
    /// Reads an `hnsw_rs` dump straight into a graph, as `hnsw_rs` would reload it and
    /// [`Graph::export`] copy it out: points on layers `0..=` the entry point's layer, each
    /// point's level the layer it is stored in, neighbour lists sorted by their stored distance
    /// and resolved through their (layer, rank), the entry point the first point of the top
    /// layer. `graph` is the whole graph part (its first `description_len` bytes the
    /// description, whose layer count is `descr_layers`); `data` the data part.
    pub(crate) fn from_dump(
        metric: Metric,
        dim: usize,
        n: usize,
        graph: &[u8],
        description_len: usize,
        descr_layers: u8,
        data: &[u8],
    ) -> Result<(Self, DumpLayout), String> {
        let bad = |what: String| format!("embedded hnsw_rs graph dump: {what}");
        if u32::try_from(n).is_err() {
            return Err(format!("{n} points: more than u32 rows"));
        }
        let mut r = Reader {
            b: graph,
            at: description_len,
        };
        let layers = r.u8()?;
        let mut by_layer: Vec<Vec<DumpPoint>> = Vec::with_capacity(layers as usize);
        for l in 0..layers {
            if r.u32()? != MAGIC_LAYER {
                return Err(bad(format!("bad magic at layer {l}")));
            }
            let count = r.usize()?;
            if count > n {
                return Err(bad(format!(
                    "layer {l} holds {count} points, the index {n}"
                )));
            }
            let mut points = Vec::with_capacity(count);
            for rank in 0..count {
                if r.u32()? != MAGIC_POINT {
                    return Err(bad(format!("bad point magic at layer {l}, rank {rank}")));
                }
                let origin = r.usize()?;
                let (p_layer, p_rank) = (r.u8()?, r.i32()?);
                // `hnsw_rs` asserts this on reload.
                if (p_layer, i64::from(p_rank)) != (l, rank as i64) {
                    return Err(bad(format!(
                        "point stored at layer {l}, rank {rank} calls itself ({p_layer}, {p_rank})"
                    )));
                }
                let mut hood = Vec::with_capacity(descr_layers as usize);
                for _ in 0..descr_layers {
                    let k = r.usize()?;
                    // Each neighbour takes 17 bytes: a count beyond the bytes left is a lie.
                    if k > (graph.len() - r.at) / 17 {
                        return Err(bad("truncated neighbour list".into()));
                    }
                    let mut list = Vec::with_capacity(k);
                    for _ in 0..k {
                        let _d_id = r.usize()?;
                        let (nl, nr) = (r.u8()?, r.i32()?);
                        list.push((r.f32()?, nl, nr));
                    }
                    hood.push(list);
                }
                points.push(DumpPoint { origin, hood });
            }
            by_layer.push(points);
        }
        let (_entry_origin, entry_layer, entry_rank) = (r.usize()?, r.u8()?, r.i32()?);
        if r.at != graph.len() {
            return Err(bad("trailing bytes".into()));
        }
        let resolve = |layer: u8, rank: i32| -> Option<usize> {
            let rank = usize::try_from(rank).ok()?;
            Some(by_layer.get(layer as usize)?.get(rank)?.origin)
        };
        if resolve(entry_layer, entry_rank).is_none() {
            return Err(bad(format!(
                "entry point ({entry_layer}, {entry_rank}) does not exist"
            )));
        }
        let max_level = entry_layer;
        let total: usize = by_layer.iter().map(Vec::len).sum();
        let kept: usize = by_layer[..=max_level as usize].iter().map(Vec::len).sum();
        if total != n || kept != n {
            return Err(format!("hnsw_rs graph holds {kept} points, the index {n}"));
        }

        // The data part: one record per point, in the graph part's order.
        let record = 4 + 8 + 8 + 4 * dim;
        if data.len() != 12 + n * record {
            return Err("embedded hnsw_rs data dump does not match the graph".into());
        }
        let mut order = Vec::with_capacity(n);
        let mut nodes = Vec::with_capacity(n);
        for (l, points) in by_layer.iter().enumerate() {
            for p in points {
                let at = 12 + order.len() * record + 4;
                let origin = u64::from_ne_bytes(data[at..at + 8].try_into().unwrap_or_default());
                if origin != p.origin as u64 || p.origin >= n {
                    return Err(format!(
                        "embedded hnsw_rs dump: point {} has data of point {origin}",
                        p.origin
                    ));
                }
                order.push(p.origin as u32);
                let mut links = Vec::with_capacity(l + 1);
                for list in p.hood.iter().take(l + 1) {
                    let mut list = list.clone();
                    if list.iter().any(|nb| nb.0.is_nan()) {
                        return Err(bad(format!("NaN distance at point {}", p.origin)));
                    }
                    list.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let mut rows = Vec::with_capacity(list.len());
                    for &(_, nl, nr) in &list {
                        let row = resolve(nl, nr).ok_or_else(|| {
                            bad(format!(
                                "neighbour ({nl}, {nr}) of point {} does not exist",
                                p.origin
                            ))
                        })?;
                        if row != p.origin {
                            rows.push(row as u32);
                        }
                    }
                    links.push(rows);
                }
                nodes.push(Node {
                    row: p.origin,
                    level: l as u8,
                    links,
                });
            }
        }
        let entry = by_layer[max_level as usize][0].origin;
        let graph_out = Self::assemble(metric, dim, n, entry, max_level, &nodes, |i, blocks| {
            let at = 12 + i * record + 20;
            let floats = data[at..at + 4 * dim]
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            for (j, v) in floats.enumerate() {
                blocks[j / BLOCK].0[j % BLOCK] = v;
            }
        })?;
        let layout = DumpLayout {
            description: graph[..description_len].to_vec(),
            descr_layers,
            layers,
            order,
        };
        Ok((graph_out, layout))
    }

    /// Writes the graph back as an `hnsw_rs` dump (graph part, data part) in `layout`'s point
    /// order, which `hnsw_rs` can reload and [`Graph::from_dump`] reads back into this graph.
    /// Neighbour distances are recomputed with `distance` (the one the graph was built with).
    pub(crate) fn write_dump(
        &self,
        layout: &DumpLayout,
        distance: &HnswDistance,
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        use hnsw_rs::prelude::Distance;
        if layout.order.len() != self.n || self.n == 0 {
            return Err("the dump layout does not fit the graph".into());
        }
        // Each row's rank within its layer, in dump order.
        let mut rank = vec![0i32; self.n];
        let mut next = vec![0i32; layout.layers.max(self.max_level + 1) as usize];
        for &row in &layout.order {
            let l = self.level[row as usize] as usize;
            rank[row as usize] = next[l];
            next[l] += 1;
        }
        let mut g = layout.description.clone();
        g.push(layout.layers);
        let mut pos = 0usize;
        for l in 0..layout.layers {
            let count = next.get(l as usize).copied().unwrap_or(0) as usize;
            g.extend_from_slice(&MAGIC_LAYER.to_ne_bytes());
            g.extend_from_slice(&count.to_ne_bytes());
            for &row in &layout.order[pos..pos + count] {
                if self.level[row as usize] != l {
                    return Err("the dump layout's order is not by layer".into());
                }
                g.extend_from_slice(&MAGIC_POINT.to_ne_bytes());
                g.extend_from_slice(&(row as usize).to_ne_bytes());
                g.push(l);
                g.extend_from_slice(&rank[row as usize].to_ne_bytes());
                for layer in 0..layout.descr_layers {
                    let list = match layer {
                        0 => self.layer0(row),
                        _ => self.upper_links(row, layer),
                    };
                    g.extend_from_slice(&list.len().to_ne_bytes());
                    for &nb in list {
                        g.extend_from_slice(&(nb as usize).to_ne_bytes());
                        g.push(self.level[nb as usize]);
                        g.extend_from_slice(&rank[nb as usize].to_ne_bytes());
                        let d = distance.eval(self.vector(row), self.vector(nb));
                        g.extend_from_slice(&d.to_ne_bytes());
                    }
                }
            }
            pos += count;
        }
        g.extend_from_slice(&(self.entry as usize).to_ne_bytes());
        g.push(self.max_level);
        g.extend_from_slice(&rank[self.entry as usize].to_ne_bytes());

        let record = 4 + 8 + 8 + 4 * self.dim;
        let mut d = Vec::with_capacity(12 + self.n * record);
        d.extend_from_slice(&MAGIC_DATA.to_ne_bytes());
        d.extend_from_slice(&self.dim.to_ne_bytes());
        for &row in &layout.order {
            d.extend_from_slice(&MAGIC_DATA.to_ne_bytes());
            d.extend_from_slice(&u64::from(row).to_ne_bytes());
            d.extend_from_slice(&(4 * self.dim as u64).to_ne_bytes());
            for v in self.vector(row) {
                d.extend_from_slice(&v.to_ne_bytes());
            }
        }
        Ok((g, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HnswIndex, HnswParams};

    /// Every field that searches read, compared; vectors compared as floats.
    fn assert_same(a: &Graph, b: &Graph) {
        assert_eq!((a.n, a.dim, a.metric), (b.n, b.dim, b.metric));
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

    fn description_len(graph: &[u8]) -> (usize, u8) {
        let mut rest = graph;
        let descr = hnsw_rs::hnswio::load_description(&mut rest).unwrap();
        (graph.len() - rest.len(), descr.nb_layer)
    }

    /// The layout made from a live `hnsw_rs` graph, with the graph copied out of it, writes the
    /// dump `hnsw_rs` writes itself: the same description and data part, byte for byte, and a
    /// graph part that reads back (ours, and `hnsw_rs`'s reload) into the same graph. Only
    /// the neighbour lists `hnsw_rs` keeps for layers above a point's own, which no search
    /// walks, are not written. (One insertion thread: the entry point is then the first point
    /// of the top layer, as the copy takes it.)
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
            let copied = Graph::export(&hnsw, metric, d, n).unwrap();
            let (our_graph, our_data) = copied
                .write_dump(&layout, &HnswDistance::new(metric))
                .unwrap();
            assert!(our_data == their_data, "{metric}: data parts differ");
            let (dl, layers) = description_len(&their_graph);
            assert_eq!(our_graph[..dl], their_graph[..dl], "{metric}: descriptions");
            let read = |g: &[u8]| {
                Graph::from_dump(metric, d, n, g, dl, layers, &our_data)
                    .unwrap()
                    .0
            };
            let theirs = read(&their_graph);
            assert_same(&read(&our_graph), &theirs);
            let reloaded = crate::hnsw::hnsw_rs_load(
                std::path::Path::new("t"),
                &our_graph,
                &our_data,
                metric,
                n,
            )
            .unwrap();
            assert_same(&Graph::export(&reloaded, metric, d, n).unwrap(), &theirs);
        }
    }

    /// Reading a dump ourselves gives the graph the previous load path gave (hnsw_rs reloads
    /// the dump, `export` copies it out), and writing it back then reading that gives it again.
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
            let (graph, dump) = index.dump_bytes().unwrap();
            let (dl, layers) = description_len(&graph);
            let (ours, layout) = Graph::from_dump(metric, d, n, &graph, dl, layers, &dump).unwrap();
            let reloaded =
                crate::hnsw::hnsw_rs_load(std::path::Path::new("t"), &graph, &dump, metric, n)
                    .unwrap();
            let theirs = Graph::export(&reloaded, metric, d, n).unwrap();
            assert_same(&ours, &theirs);
            // ... and both are the graph the build made.
            assert_same(&ours, index.graph());

            let distance = HnswDistance::new(metric);
            let (graph2, dump2) = ours.write_dump(&layout, &distance).unwrap();
            assert_eq!(
                dump2, dump,
                "{metric}: the data part is written as hnsw_rs writes it"
            );
            let (again, layout2) =
                Graph::from_dump(metric, d, n, &graph2, dl, layers, &dump2).unwrap();
            assert_same(&again, &ours);
            assert_eq!(layout2.order, layout.order);
            // hnsw_rs takes the written dump back, and gives the same graph.
            let reloaded2 =
                crate::hnsw::hnsw_rs_load(std::path::Path::new("t"), &graph2, &dump2, metric, n)
                    .unwrap();
            assert_same(&Graph::export(&reloaded2, metric, d, n).unwrap(), &ours);
        }
    }
}
