//! The HNSW graph in flat arrays and the standard HNSW search on it: greedy descent through the
//! upper layers, then an `ef`-bounded best-first search of layer 0, as in hnswlib and FAISS.
//!
//! `hnsw_rs`'s own search allocates an `Arc` per candidate, keeps visited points in a SipHash
//! `HashMap` and takes a read lock per neighbour list; at d = 768 that made it ~14x slower than
//! FAISS on the same graph. Here neighbour lists are rows of `u32`, vectors one aligned matrix,
//! the visited set a generation-stamped array reused per thread, and heap entries one `u64`.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use super::distance::{Distance, GraphDistance, distance_of, key, row_of};
use super::store::{F32Rows, SqRows, Store, prefetch_lines};
use crate::topk::best_first;
use crate::{Hit, huge_pages};

/// Floats per 64-byte block; rows of the vector matrix start on a block.
pub(super) const BLOCK: usize = 16;

/// How many neighbours ahead of the one being measured the prefetch runs. Measured at d = 768
/// on 20k points (Zen 4, 2 cores, CPU time per single query): whole rows into L2 (`T1`) 4 to 10
/// ahead took 0.16-0.18 ms at ef 16, against 0.23 ms for 24 lines into L1 3 ahead, 0.26-0.29
/// ms for whole rows into L1, ~0.25 ms for no prefetch.
const PREFETCH_AHEAD: usize = 5;

/// One cache line of floats, so that a `Vec<Block>` is 64-byte aligned.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
pub(super) struct Block(pub(super) [f32; BLOCK]);

/// The graph and its vectors (f32 rows by default, or codes: [`Store`]), indexed by the
/// index's rows.
pub(crate) struct Graph<V: Store = F32Rows> {
    pub(super) distance: Distance,
    pub(super) dim: usize,
    /// Rows of the graph (equals the index's length).
    pub(super) n: usize,
    /// The vectors, `n` rows.
    pub(super) store: V,
    /// Layer 0: per row `1 + l0_max` u32, the neighbour count then the neighbours.
    pub(super) l0: Vec<u32>,
    pub(super) l0_stride: usize,
    /// Upper layers: rows with level >= 1 own `level` consecutive records of `upper_stride` u32
    /// (count then neighbours) for layers 1..=level, starting at `upper_start[row]`.
    pub(super) upper: Vec<u32>,
    pub(super) upper_stride: usize,
    pub(super) upper_start: Vec<u32>,
    pub(super) level: Vec<u8>,
    pub(super) entry: u32,
    pub(super) max_level: u8,
}

impl<V: Store> std::fmt::Debug for Graph<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("n", &self.n)
            .field("dim", &self.dim)
            .field("max_level", &self.max_level)
            .field("entry", &self.entry)
            .finish()
    }
}

/// One point of a graph being laid out ([`Graph::assemble`]): its row, level and neighbour
/// rows per layer 0..=level.
pub(super) struct Node {
    pub(super) row: usize,
    pub(super) level: u8,
    pub(super) links: Vec<Vec<u32>>,
}

impl Graph {
    /// A graph of no points.
    pub(crate) fn empty(distance: Distance, dim: usize) -> Self {
        Self::empty_with(distance, dim, F32Rows::new(distance, dim))
    }

    /// Lays `nodes` (each row of `0..n` exactly once) out in flat arrays; `fill(i, blocks)`
    /// writes node `i`'s vector into its row's zeroed blocks.
    pub(super) fn assemble(
        distance: Distance,
        dim: usize,
        n: usize,
        entry: usize,
        max_level: u8,
        nodes: &[Node],
        fill: impl Fn(usize, &mut [Block]) + Sync,
    ) -> Result<Self, String> {
        let mut store = F32Rows::new(distance, dim);
        let rb = store.row_blocks;
        store.vectors = huge_pages::filled(n * rb, Block::default());
        if nodes.len() == n && nodes.iter().all(|nd| nd.row < n) {
            let mut by_row = vec![usize::MAX; n];
            for (i, nd) in nodes.iter().enumerate() {
                by_row[nd.row] = i;
            }
            store
                .vectors
                .par_chunks_mut(rb)
                .zip(by_row.par_iter())
                .filter(|(_, i)| **i != usize::MAX)
                .for_each(|(blocks, &i)| fill(i, blocks));
        }
        Self::assemble_with(distance, dim, n, entry, max_level, nodes, store)
    }

    /// The vector of `row`.
    #[inline(always)]
    pub(super) fn vector(&self, row: u32) -> &[f32] {
        self.store.vector(row)
    }
}

impl<V: Store> Graph<V> {
    /// A graph of no points over an empty `store`.
    pub(crate) fn empty_with(distance: Distance, dim: usize, store: V) -> Self {
        Self {
            distance,
            dim,
            n: 0,
            store,
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

    /// Lays `nodes` (each row of `0..n` exactly once) out in flat arrays, over `store`
    /// (`n` rows).
    pub(super) fn assemble_with(
        distance: Distance,
        dim: usize,
        n: usize,
        entry: usize,
        max_level: u8,
        nodes: &[Node],
        store: V,
    ) -> Result<Self, String> {
        if store.rows() != n {
            return Err(format!("{} vectors for {n} points", store.rows()));
        }
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
            distance,
            dim,
            n,
            store,
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
        // Layer 0 is filled in parallel: rows are disjoint chunks.
        let by_row = {
            let mut by_row = vec![usize::MAX; n];
            for (i, nd) in nodes.iter().enumerate() {
                by_row[nd.row] = i;
            }
            by_row
        };
        g.l0.par_chunks_mut(l0_stride)
            .zip(by_row.par_iter())
            .for_each(|(links, &i)| {
                let nd = &nodes[i];
                let list = nd.links.first().map_or(&[][..], Vec::as_slice);
                links[0] = list.len() as u32;
                links[1..=list.len()].copy_from_slice(list);
            });
        Ok(g)
    }

    /// Approximate memory held, in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.store.heap_bytes()
            + 4 * (self.l0.len() + self.upper.len() + self.upper_start.len())
            + self.level.len()
    }

    #[inline(always)]
    pub(super) fn layer0(&self, row: u32) -> &[u32] {
        let rec = &self.l0[row as usize * self.l0_stride..][..self.l0_stride];
        &rec[1..=rec[0] as usize]
    }

    #[inline(always)]
    pub(super) fn upper_links(&self, row: u32, layer: u8) -> &[u32] {
        let r = row as usize;
        if self.level[r] < layer {
            return &[];
        }
        let at = self.upper_start[r] as usize + (layer as usize - 1) * self.upper_stride;
        let rec = &self.upper[at..at + self.upper_stride];
        &rec[1..=rec[0] as usize]
    }
}

impl Graph {
    /// The `k` best rows for `query` (already checked: `dim` finite floats), best first,
    /// with candidate list size `ef` (raised to `k`).
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<Hit> {
        if self.n == 0 || k == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        with_scratch(|s| self.search_in(s, query, k, ef))
    }

    fn search_in(&self, s: &mut Scratch, query: &[f32], k: usize, ef: usize) -> Vec<Hit> {
        // One instance per distance, the distance a constant in each: its branch in
        // `GraphDistance::eval` folds away in the hot loop.
        match self.distance {
            Distance::SquaredL2 => {
                let d = GraphDistance::of(Distance::SquaredL2);
                self.search_with(s, k, ef, |row| d.eval(query, self.vector(row)))
            }
            Distance::NegDot => {
                let d = GraphDistance::of(Distance::NegDot);
                self.search_with(s, k, ef, |row| d.eval(query, self.vector(row)))
            }
            Distance::ClampedDot => {
                let d = GraphDistance::of(Distance::ClampedDot);
                self.search_with(s, k, ef, |row| d.eval(query, self.vector(row)))
            }
        }
    }
}

impl Graph<SqRows> {
    /// The `k` best rows for `query` (already checked: `dim` finite floats), best first,
    /// with candidate list size `ef` (raised to `k`); distances computed on the codes.
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<Hit> {
        if self.n == 0 || k == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        let q = self.store.codes.prepare_unchecked(query);
        with_scratch(|s| self.search_with(s, k, ef, |row| self.store.dist(&q, row)))
    }
}

/// Runs `f` with this thread's search buffers.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        // Only reachable if a search ran inside another on this thread; use a fresh buffer.
        Err(_) => f(&mut Scratch::default()),
    })
}

impl<V: Store> Graph<V> {
    /// Greedy descent then the layer-0 search, `dist(row)` the distance from the query.
    #[inline(always)]
    fn search_with<D: Fn(u32) -> f32>(
        &self,
        s: &mut Scratch,
        k: usize,
        ef: usize,
        dist: D,
    ) -> Vec<Hit> {
        let key_of = |row: u32| key(dist(row), row);
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
            .map(|kd| Hit {
                row: row_of(kd) as usize,
                score: self.distance.score(distance_of(kd)),
            })
            .collect();
        hits.sort_unstable_by(best_first);
        hits
    }
}

/// Neighbour lists on one layer, as a search walks them: the graph's own ([`OnLayer`]), or
/// those of a graph being built.
pub(super) trait Lists {
    /// Calls `f` with each neighbour of `row`.
    fn each(&self, row: u32, f: impl FnMut(u32));

    /// Asks for `row`'s list to be brought into the cache (a hint; by default none).
    #[inline(always)]
    fn prefetch(&self, _row: u32) {}
}

/// The graph's lists on `layer`.
struct OnLayer<'a, V: Store> {
    g: &'a Graph<V>,
    layer: u8,
}

impl<V: Store> Lists for OnLayer<'_, V> {
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

    #[inline(always)]
    fn prefetch(&self, row: u32) {
        // Layer 0 only: the upper layers are small and walked a few steps per query.
        if self.layer == 0 {
            let g = self.g;
            let record = g.l0.as_ptr().wrapping_add(row as usize * g.l0_stride);
            prefetch_lines(record.cast(), (4 * g.l0_stride).div_ceil(64));
        }
    }
}

/// Greedy descent on one layer: from `cur`, moves to the nearest neighbour (keys of `key_of`)
/// until none is nearer; returns where it stopped.
#[inline(always)]
pub(super) fn descend(lists: &impl Lists, mut cur: u64, key_of: impl Fn(u32) -> u64) -> u64 {
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

impl<V: Store> Graph<V> {
    /// Best-first search of one layer's `lists` from `start`, keeping the `ef` nearest points
    /// seen (keys of `key_of`) in `s.top`.
    #[inline(always)]
    pub(super) fn search_layer(
        &self,
        s: &mut Scratch,
        lists: &impl Lists,
        start: u64,
        ef: usize,
        key_of: impl Fn(u32) -> u64,
    ) {
        let stamp = s.next_stamp(self.n);
        let (visited, cand, top, fresh) = (&mut s.visited, &mut s.cand, &mut s.top, &mut s.fresh);
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
            // The list of the candidate most likely expanded next starts loading while this
            // one's neighbours are measured (hnswlib does the same).
            if let Some(&Reverse(next)) = cand.peek() {
                lists.prefetch(row_of(next));
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
                self.store.prefetch(nb);
            }
            for (j, &nb) in fresh.iter().enumerate() {
                if let Some(&next) = fresh.get(j + PREFETCH_AHEAD) {
                    self.store.prefetch(next);
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

/// Per-thread search buffers, reused across queries and indexes.
#[derive(Default)]
pub(super) struct Scratch {
    /// `visited[row] == stamp` marks rows seen by the current query. One byte a row, as in
    /// FAISS's `VisitedTable`: at 1M rows the marks (1 MB) stay in a 2 MB second-level cache,
    /// where 4-byte stamps did not; the array is cleared once every 255 queries.
    visited: Vec<u8>,
    stamp: u8,
    cand: BinaryHeap<Reverse<u64>>,
    pub(super) top: BinaryHeap<u64>,
    fresh: Vec<u32>,
}

impl Scratch {
    /// A stamp no row of `visited` (grown to `n`) carries yet.
    fn next_stamp(&mut self, n: usize) -> u8 {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each query's stamp is one no row carries yet, also after the one-byte stamp wraps.
    #[test]
    fn visited_stamps_stay_fresh_across_the_wrap() {
        let mut s = Scratch::default();
        for q in 0..600 {
            let stamp = s.next_stamp(4);
            assert!(s.visited.iter().all(|&v| v != stamp), "query {q}");
            s.visited[q % 4] = stamp;
        }
    }
}
