//! A read-only copy of an `hnsw_rs` graph in flat arrays, and the standard HNSW search on it
//! (greedy descent through the upper layers, then an `ef`-bounded best-first search of layer 0,
//! as in hnswlib and FAISS).
//!
//! `hnsw_rs`'s own search allocates an `Arc` per candidate, keeps visited points in a SipHash
//! `HashMap` and takes a read lock per neighbour list; at d = 768 that made it ~14x slower than
//! FAISS on the same graph. Here neighbour lists are rows of `u32`, vectors one aligned matrix,
//! the visited set a generation-stamped array reused per thread, and heap entries one `u64`.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hnsw_rs::prelude::Hnsw;
use rayon::prelude::*;

use crate::hnsw::HnswDistance;
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
    /// Copies the graph out of `hnsw`, whose points carry our rows `0..n` as origin ids.
    /// Fails (with a message) when the graph does not hold exactly those rows.
    pub(crate) fn export(
        hnsw: &Hnsw<'static, f32, HnswDistance>,
        metric: Metric,
        dim: usize,
        n: usize,
    ) -> Result<Self, String> {
        let row_blocks = dim.div_ceil(BLOCK);
        let empty = || Self {
            metric,
            dim,
            n: 0,
            row_blocks,
            vectors: Vec::new(),
            l0: Vec::new(),
            l0_stride: 1,
            upper: Vec::new(),
            upper_stride: 1,
            upper_start: Vec::new(),
            level: Vec::new(),
            entry: 0,
            max_level: 0,
        };
        if n == 0 {
            return Ok(empty());
        }
        if u32::try_from(n).is_err() {
            return Err(format!("{n} points: more than u32 rows"));
        }
        let pi = hnsw.get_point_indexation();
        let max_level = pi.get_max_level_observed();
        let mut points = Vec::with_capacity(n);
        for l in 0..=max_level as usize {
            points.extend(pi.get_layer_iterator(l));
        }
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
            n,
            vectors: vec![Block::default(); n * row_blocks],
            l0: vec![0; n * l0_stride],
            l0_stride,
            upper_stride,
            upper_start: vec![u32::MAX; n],
            level: vec![0; n],
            entry: entry as u32,
            max_level,
            ..empty()
        };
        let mut seen = vec![false; n];
        for (i, nd) in nodes.iter().enumerate() {
            let r = nd.row;
            if r >= n || std::mem::replace(&mut seen[r], true) {
                return Err(format!("hnsw_rs graph holds row {r} twice or out of range"));
            }
            if points[i].get_v().len() != dim {
                return Err(format!(
                    "hnsw_rs point {r} has dimension {}",
                    points[i].get_v().len()
                ));
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
                for (b, src) in blocks.iter_mut().zip(points[i].get_v().chunks(BLOCK)) {
                    b.0[..src.len()].copy_from_slice(src);
                }
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
        match self.metric {
            Metric::InnerProduct => {
                let dot = kernels::dot_kernel();
                self.search_with(s, k, ef, |v| (1.0 - dot(query, v)).max(0.0))
            }
            Metric::L2 => {
                let l2 = kernels::l2_kernel();
                self.search_with(s, k, ef, |v| l2(query, v).max(0.0))
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
        // Greedy descent: move to the closest neighbour until none is closer, layer by layer.
        let mut cur = key_of(self.entry);
        for layer in (1..=self.max_level).rev() {
            loop {
                let mut best = cur;
                for &nb in self.upper_links(row_of(cur), layer) {
                    let kn = key_of(nb);
                    if kn < best {
                        best = kn;
                    }
                }
                if best == cur {
                    break;
                }
                cur = best;
            }
        }

        // Best-first search of layer 0 keeping the `ef` closest points seen.
        let stamp = s.next_stamp(self.n);
        let visited = &mut s.visited;
        let (cand, top, fresh) = (&mut s.cand, &mut s.top, &mut s.fresh);
        cand.clear();
        top.clear();
        visited[row_of(cur) as usize] = stamp;
        cand.push(Reverse(cur));
        top.push(cur);
        let mut worst = cur;
        while let Some(Reverse(c)) = cand.pop() {
            if c > worst && top.len() >= ef {
                break;
            }
            // Collect the unvisited neighbours, then measure them while prefetching the
            // vectors of those a few places ahead, so memory loads overlap arithmetic.
            fresh.clear();
            for &nb in self.layer0(row_of(c)) {
                let v = &mut visited[nb as usize];
                if *v != stamp {
                    *v = stamp;
                    fresh.push(nb);
                }
            }
            let lines = self.row_blocks.min(PREFETCH_LINES);
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
                    if let Some(&w) = top.peek() {
                        worst = w;
                    }
                }
            }
        }

        let mut found: Vec<u64> = top.drain().collect();
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
