//! Builds an HNSW graph straight into the flat layout searches walk, in parallel: the insertion
//! of hnswlib and FAISS (greedy descent through the upper layers, an `ef_construction` search
//! of each layer from the point's own level down, neighbours chosen by the relative-neighbour
//! heuristic, reverse links pruned by the same heuristic when a list is full).
//!
//! Writers take a per-point lock around the lists of that point; searches read lists without
//! locks, through atomics: a list read while another thread rewrites it may mix the old and
//! the new neighbours, every one of them a point of the graph, which only changes which
//! candidates that one insertion looks at (hnswlib and FAISS read the same way).
//!
//! Levels are drawn from the parameters' seed, and the point with the highest level is
//! inserted first, alone: it is the entry point from then on, so parallel insertions never
//! change it. With one thread the graph is the same for the same seed and input.

use std::cmp::Reverse;
use std::sync::atomic::{
    AtomicBool, AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Mutex, PoisonError};

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::distance::{distance_of, key, row_of};
use super::graph::{Graph, Lists, Scratch, descend};
use super::store::Store;
use crate::huge_pages;

/// Highest level a point is given (`hnsw_rs` dumps 16 layers, 0..=15).
const MAX_LEVEL: u8 = 15;

/// What a build needs besides the vectors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BuildParams {
    /// Neighbours per point on the upper layers; layer 0 keeps `2 * m`.
    pub m: usize,
    pub ef_construction: usize,
    /// Seeds the new points' levels.
    pub seed: u64,
}

/// Neighbour lists of one kind (layer 0, or all upper layers): records of `1 + cap` u32, the
/// count then the neighbours, addressed by their offset (as the graph's arrays are).
struct Records {
    ids: Vec<AtomicU32>,
    cap: usize,
}

impl Records {
    fn new(records: usize, cap: usize) -> Self {
        Self {
            ids: huge_pages::collected(
                records * (1 + cap),
                (0..records * (1 + cap)).map(|_| AtomicU32::new(0)),
            ),
            cap,
        }
    }

    #[inline(always)]
    fn record(&self, at: usize) -> &[AtomicU32] {
        &self.ids[at..][..1 + self.cap]
    }

    /// The neighbours of record `r` as they are now (no lock: see the module's docs).
    #[inline(always)]
    fn read(&self, r: usize, out: &mut Vec<u32>) {
        let rec = self.record(r);
        let count = (rec[0].load(Relaxed) as usize).min(self.cap);
        out.clear();
        out.extend(rec[1..=count].iter().map(|a| a.load(Relaxed)));
    }

    /// Replaces record `r`'s list (the caller holds the owner's lock).
    fn write(&self, r: usize, list: impl ExactSizeIterator<Item = u32>) {
        let rec = self.record(r);
        let count = list.len().min(self.cap);
        for (slot, id) in rec[1..].iter().zip(list) {
            slot.store(id, Relaxed);
        }
        rec[0].store(count as u32, Relaxed);
    }

    fn into_plain(self) -> Vec<u32> {
        self.ids.into_iter().map(AtomicU32::into_inner).collect()
    }
}

/// A graph being built: its vectors and levels are final, its lists are being written.
struct Build<'a, V: Store> {
    g: &'a Graph<V>,
    /// The new points' vectors as given (row `first_new + i` is vector `i`): the query of a
    /// point's insertion, as FAISS inserts into a compressed graph.
    given: &'a [f32],
    first_new: usize,
    l0: Records,
    upper: Records,
    locks: Vec<Mutex<()>>,
    /// Points whose insertion has finished (all their lists written): only those are used as
    /// the starting point of a lower layer's search, since a point still being inserted has
    /// no lists yet below the layer its insertion has reached.
    done: Vec<AtomicBool>,
    /// Points whose lists this build wrote: only theirs need sorting afterwards.
    touched: Vec<AtomicBool>,
    ef: usize,
}

/// A graph-being-built's lists on `layer`, read without locks (see the module's docs).
struct AtLayer<'a, 'g, V: Store> {
    build: &'a Build<'g, V>,
    layer: u8,
}

impl<V: Store> Lists for AtLayer<'_, '_, V> {
    #[inline(always)]
    fn each(&self, row: u32, mut f: impl FnMut(u32)) {
        let (recs, at) = self.build.records(row, self.layer);
        let rec = recs.record(at);
        let count = (rec[0].load(Relaxed) as usize).min(recs.cap);
        for id in &rec[1..=count] {
            f(id.load(Relaxed));
        }
    }
}

/// Per-thread buffers of one insertion.
struct Work<V: Store> {
    search: Scratch,
    /// The inserted point's query, a neighbour's, a candidate's (compressed stores prepare
    /// them here).
    qbuf: V::Buf,
    nbuf: V::Buf,
    cbuf: V::Buf,
    /// Candidates of the current layer, nearest first.
    found: Vec<u64>,
    chosen: Vec<u64>,
    list: Vec<u32>,
    pool: Vec<u64>,
    pruned: Vec<u64>,
}

impl<V: Store> Default for Work<V> {
    fn default() -> Self {
        Self {
            search: Scratch::default(),
            qbuf: V::Buf::default(),
            nbuf: V::Buf::default(),
            cbuf: V::Buf::default(),
            found: Vec::new(),
            chosen: Vec::new(),
            list: Vec::new(),
            pool: Vec::new(),
            pruned: Vec::new(),
        }
    }
}

impl<V: Store> Build<'_, V> {
    /// Where `row`'s list on `layer` is (`layer <= level[row]`).
    #[inline(always)]
    fn records(&self, row: u32, layer: u8) -> (&Records, usize) {
        if layer == 0 {
            (&self.l0, row as usize * self.g.l0_stride)
        } else {
            (
                &self.upper,
                self.g.upper_start[row as usize] as usize
                    + (layer as usize - 1) * self.g.upper_stride,
            )
        }
    }

    fn lock(&self, row: u32) -> std::sync::MutexGuard<'_, ()> {
        self.locks[row as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Inserts `q` (whose vector and level are in the graph), entering at `entry`, the
    /// graph's top point, on level `top`.
    fn insert(&self, w: &mut Work<V>, q: u32, entry: u32, top: u8) {
        let g = self.g;
        let dim = g.dim;
        let given = &self.given[(q as usize - self.first_new) * dim..][..dim];
        let mut qbuf = std::mem::take(&mut w.qbuf);
        let qv = g.store.query(given, &mut qbuf);
        let level = g.level[q as usize];
        let mut cur = key(g.store.dist(qv, entry), entry);
        // Points still being inserted compare as farthest: they are never moved to.
        for layer in ((level + 1)..=top).rev() {
            cur = descend(&AtLayer { build: self, layer }, cur, |nb| {
                if self.done[nb as usize].load(Acquire) {
                    key(g.store.dist(qv, nb), nb)
                } else {
                    u64::MAX
                }
            });
        }
        for layer in (0..=level.min(top)).rev() {
            self.search_layer(w, qv, cur, layer);
            w.found.retain(|&k| row_of(k) != q);
            if w.found.is_empty() {
                continue;
            }
            let cap = if layer == 0 {
                self.l0.cap
            } else {
                self.upper.cap
            };
            if w.found.len() <= cap {
                w.chosen.clone_from(&w.found);
            } else {
                self.choose(&mut w.cbuf, &w.found, cap, &mut w.chosen);
            }
            self.set_own(w, q, qv, layer);
            for i in 0..w.chosen.len() {
                let nb = row_of(w.chosen[i]);
                self.link(w, nb, q, layer);
            }
            // The next layer starts from the nearest point whose lists are all written (the
            // one started from here, at worst).
            if let Some(&k) = w
                .found
                .iter()
                .find(|&&k| self.done[row_of(k) as usize].load(Acquire))
            {
                cur = k;
            }
        }
        self.done[q as usize].store(true, Release);
        w.qbuf = qbuf;
    }

    /// Writes `w.chosen` as `q`'s list on `layer`. Points that linked themselves to `q`
    /// meanwhile stay: the list is then the heuristic's choice among both.
    fn set_own(&self, w: &mut Work<V>, q: u32, qv: V::Query<'_>, layer: u8) {
        let _own = self.lock(q);
        self.touched[q as usize].store(true, Relaxed);
        let (recs, r) = self.records(q, layer);
        recs.read(r, &mut w.list);
        w.list
            .retain(|&x| !w.chosen.iter().any(|&k| row_of(k) == x));
        if w.list.is_empty() {
            recs.write(r, w.chosen.iter().map(|&k| row_of(k)));
            return;
        }
        let store = &self.g.store;
        w.pool.clear();
        w.pool.extend_from_slice(&w.chosen);
        w.pool
            .extend(w.list.iter().map(|&x| key(store.dist(qv, x), x)));
        w.pool.sort_unstable();
        if w.pool.len() <= recs.cap {
            recs.write(r, w.pool.iter().map(|&k| row_of(k)));
        } else {
            self.choose(&mut w.cbuf, &w.pool, recs.cap, &mut w.pruned);
            recs.write(r, w.pruned.iter().map(|&k| row_of(k)));
        }
    }

    /// Best-first search of `layer` from `start` keeping the `ef` nearest points seen; leaves
    /// them in `w.found`, nearest first.
    fn search_layer(&self, w: &mut Work<V>, qv: V::Query<'_>, start: u64, layer: u8) {
        let g = self.g;
        g.search_layer(
            &mut w.search,
            &AtLayer { build: self, layer },
            start,
            self.ef,
            |nb| key(g.store.dist(qv, nb), nb),
        );
        w.found.clear();
        w.found.extend(w.search.top.drain());
        w.found.sort_unstable();
    }

    /// The relative-neighbour heuristic: of `cands` (keys of distances to the point, nearest
    /// first) keeps, up to `cap`, each one that is nearer the point than every one kept
    /// before it.
    fn choose(&self, buf: &mut V::Buf, cands: &[u64], cap: usize, out: &mut Vec<u64>) {
        let store = &self.g.store;
        out.clear();
        for &c in cands {
            if out.len() >= cap {
                break;
            }
            let to_point = distance_of(c);
            if out.is_empty() {
                out.push(c);
                continue;
            }
            let cv = store.row_query(row_of(c), buf);
            if out
                .iter()
                .all(|&kept| store.dist(cv, row_of(kept)) >= to_point)
            {
                out.push(c);
            }
        }
    }

    /// Adds `q` to `nb`'s list on `layer`; a full list keeps the heuristic's choice among its
    /// neighbours and `q`.
    fn link(&self, w: &mut Work<V>, nb: u32, q: u32, layer: u8) {
        let _own = self.lock(nb);
        let (recs, r) = self.records(nb, layer);
        recs.read(r, &mut w.list);
        if w.list.contains(&q) {
            return;
        }
        self.touched[nb as usize].store(true, Relaxed);
        if w.list.len() < recs.cap {
            w.list.push(q);
            recs.write(r, w.list.iter().copied());
            return;
        }
        let store = &self.g.store;
        let nv = store.row_query(nb, &mut w.nbuf);
        w.pool.clear();
        w.pool.extend(
            w.list
                .iter()
                .chain(std::iter::once(&q))
                .map(|&x| key(store.dist(nv, x), x)),
        );
        w.pool.sort_unstable();
        self.choose(&mut w.cbuf, &w.pool, recs.cap, &mut w.pruned);
        recs.write(r, w.pruned.iter().map(|&k| row_of(k)));
    }
}

/// A point's level: `floor(-ln(u) / ln(m))` for `u` uniform in (0, 1], as `hnsw_rs` and the
/// HNSW paper draw it, capped at [`MAX_LEVEL`].
fn draw_level(rng: &mut impl Rng, m: usize) -> u8 {
    let u: f64 = 1.0 - rng.r#gen::<f64>();
    let level = (-u.ln() / (m as f64).ln()).floor();
    if level >= f64::from(MAX_LEVEL) {
        MAX_LEVEL
    } else {
        level as u8
    }
}

impl<V: Store> Graph<V> {
    /// The graph of `old`'s points and `vectors` (row-major, `dim` finite floats each, rows
    /// `old.n..`), inserted in `order` (indices into `vectors`, each once); `progress(done,
    /// total)` is called from the inserting threads about every 1 % of the points and at the
    /// end. Built in parallel
    /// on the current rayon pool. Fails, before anything is moved, only when the rows do not
    /// fit u32 ids.
    pub(crate) fn extended(
        mut old: Graph<V>,
        vectors: &[f32],
        order: &[usize],
        params: BuildParams,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Graph<V>, Box<(Graph<V>, String)>> {
        let dim = old.dim;
        let added = vectors.len() / dim;
        let n = old.n + added;
        if u32::try_from(n).is_err() || order.len() != added {
            return Err(Box::new((old, format!("{n} points: more than u32 rows"))));
        }
        let m = params.m;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(params.seed ^ ((old.n as u64) << 1));
        let new_levels: Vec<u8> = (0..added).map(|_| draw_level(&mut rng, m)).collect();
        let records: usize = old
            .level
            .iter()
            .chain(&new_levels)
            .map(|&l| l as usize)
            .sum();
        if u32::try_from(records * (1 + m)).is_err() {
            // Cannot happen below u32::MAX / 15 points; checked rather than assumed.
            return Err(Box::new((
                old,
                "upper layers too large for u32 offsets".into(),
            )));
        }
        let mut level = old.level.clone();
        level.extend(new_levels);

        let mut upper_start = vec![u32::MAX; n];
        let mut next = 0u32;
        for (start, &l) in upper_start.iter_mut().zip(&level) {
            if l > 0 {
                *start = next;
                next += u32::from(l) * (1 + m) as u32;
            }
        }
        let l0 = Records::new(n, 2 * m);
        let upper = Records::new(records, m);
        // The old lists, as insertion walks them: at most the caps (an `hnsw_rs` dump keeps
        // at most M and 2M), and only points that live on the list's layer (a loaded file
        // could name others; searches skip them, insertion would read past their records).
        let mut kept = Vec::new();
        for row in 0..old.n as u32 {
            for layer in 0..=level[row as usize] {
                let (list, at, cap) = match layer {
                    0 => (old.layer0(row), row as usize * (1 + 2 * m), l0.cap),
                    _ => (
                        old.upper_links(row, layer),
                        upper_start[row as usize] as usize + (layer as usize - 1) * (1 + m),
                        upper.cap,
                    ),
                };
                kept.clear();
                kept.extend(
                    list.iter()
                        .copied()
                        .filter(|&nb| nb != row && level[nb as usize] >= layer)
                        .take(cap),
                );
                let recs = if layer == 0 { &l0 } else { &upper };
                recs.write(at, kept.iter().copied());
            }
        }

        // The old lists are copied: free them before the vectors grow.
        old.l0 = Vec::new();
        old.upper = Vec::new();

        // Vectors: the old rows as they are, the new ones appended.
        let old_n = old.n;
        old.store.push(vectors);

        let mut g = Graph {
            distance: old.distance,
            dim,
            n,
            store: old.store,
            l0: Vec::new(),
            l0_stride: 1 + 2 * m,
            upper: Vec::new(),
            upper_stride: 1 + m,
            upper_start,
            level,
            entry: old.entry,
            max_level: old.max_level,
        };
        let mut order: Vec<u32> = order.iter().map(|&i| (old.n + i) as u32).collect();
        // The highest new point goes first; if it is above the graph's top (or the graph is
        // empty), it becomes the entry point.
        let first_top = (0..order.len()).max_by_key(|&i| (g.level[order[i] as usize], Reverse(i)));
        let build = Build {
            given: vectors,
            first_new: old_n,
            l0,
            upper,
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            done: (0..n).map(|i| AtomicBool::new(i < old.n)).collect(),
            touched: (0..n).map(|_| AtomicBool::new(false)).collect(),
            ef: params.ef_construction.max(1),
            g: &g,
        };
        let (mut entry, mut top) = (g.entry, g.max_level);
        if let Some(i) = first_top {
            let q = order.remove(i);
            let lq = g.level[q as usize];
            if old.n > 0 {
                build.insert(&mut Work::default(), q, entry, top);
            }
            if old.n == 0 || lq > top {
                (entry, top) = (q, lq);
            }
            build.done[q as usize].store(true, Release);
        }
        let total = added;
        let step = (total / 100).max(1);
        let inserted = std::sync::atomic::AtomicUsize::new(total - order.len());
        order.par_iter().for_each_init(Work::default, |w, &q| {
            build.insert(w, q, entry, top);
            let done = inserted.fetch_add(1, Relaxed) + 1;
            if done.is_multiple_of(step) && done < total {
                progress(done, total);
            }
        });
        if total > 0 {
            progress(total, total);
        }
        let Build {
            l0, upper, touched, ..
        } = build;
        g.l0 = l0.into_plain();
        g.upper = upper.into_plain();
        g.entry = entry;
        g.max_level = top;
        let mut touched: Vec<bool> = touched.into_iter().map(AtomicBool::into_inner).collect();
        g.link_orphans(&mut touched);
        g.sort_lists(&touched);
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Metric;
    use crate::hnsw::distance::{Distance, GraphDistance};

    /// `n` vectors of `d` floats around 20 centres (xorshift noise), unit length for IP.
    fn data(n: usize, d: usize, seed: u64, metric: Metric) -> Vec<f32> {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let centres: Vec<f32> = (0..20 * d).map(|_| next()).collect();
        let mut v = Vec::with_capacity(n * d);
        for i in 0..n {
            let c = &centres[(i % 20) * d..][..d];
            let row: Vec<f32> = c.iter().map(|&x| x + 0.3 * next()).collect();
            let norm = match metric {
                Metric::InnerProduct | Metric::Cosine => {
                    row.iter().map(|x| x * x).sum::<f32>().sqrt()
                }
                Metric::L2 => 1.0,
            };
            v.extend(row.iter().map(|x| x / norm));
        }
        v
    }

    fn params(seed: u64) -> BuildParams {
        BuildParams {
            m: 8,
            ef_construction: 64,
            seed,
        }
    }

    fn build(metric: Metric, d: usize, v: &[f32], p: BuildParams, threads: usize) -> Graph {
        let order: Vec<usize> = (0..v.len() / d).collect();
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let empty = Graph::empty(Distance::of_metric(metric), d);
                Graph::extended(empty, v, &order, p, &|_, _| ())
            })
            .map_err(|e| e.1)
            .unwrap()
    }

    /// Every list within its cap, without the point itself or repeats, of points that live on
    /// that layer, ordered by (distance, row); the entry point on the top level, which is the
    /// highest level drawn.
    fn check_well_formed(g: &Graph, m: usize) {
        let d = GraphDistance::of(g.distance);
        let top = *g.level.iter().max().unwrap();
        assert_eq!(g.max_level, top);
        assert_eq!(g.level[g.entry as usize], top);
        for row in 0..g.n as u32 {
            for layer in 0..=g.level[row as usize] {
                let (list, cap) = match layer {
                    0 => (g.layer0(row), 2 * m),
                    _ => (g.upper_links(row, layer), m),
                };
                assert!(
                    list.len() <= cap,
                    "row {row} layer {layer}: {} links",
                    list.len()
                );
                assert!(!list.contains(&row), "row {row} links itself");
                let mut seen = list.to_vec();
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), list.len(), "row {row}: repeated links");
                assert!(list.iter().all(|&nb| g.level[nb as usize] >= layer));
                let keys: Vec<u64> = list
                    .iter()
                    .map(|&nb| key(d.eval(g.vector(row), g.vector(nb)), nb))
                    .collect();
                assert!(keys.windows(2).all(|w| w[0] < w[1]), "row {row}: unsorted");
            }
        }
    }

    /// How many points, searched with their own vector, are not their own first hit.
    fn lost(g: &Graph, v: &[f32], rows: std::ops::Range<usize>) -> usize {
        rows.filter(|&r| g.search(&v[r * g.dim..][..g.dim], 1, 64)[0].row != r)
            .count()
    }

    #[test]
    fn one_thread_builds_are_reproducible_and_well_formed() {
        for metric in [Metric::InnerProduct, Metric::L2] {
            let (n, d) = (1500, 16);
            let v = data(n, d, 7, metric);
            let a = build(metric, d, &v, params(1), 1);
            let b = build(metric, d, &v, params(1), 1);
            check_well_formed(&a, 8);
            assert_eq!((a.entry, a.max_level), (b.entry, b.max_level));
            assert_eq!(a.level, b.level);
            assert_eq!(a.l0, b.l0);
            assert_eq!(a.upper, b.upper);
            let c = build(metric, d, &v, params(2), 1);
            assert_ne!(a.level, c.level, "the seed draws the levels");
            // Levels follow P(level >= l) = M^-l: about n / 8 points above layer 0.
            let above = a.level.iter().filter(|&&l| l > 0).count();
            assert!((120..260).contains(&above), "{above} points above layer 0");
            assert_eq!(lost(&a, &v, 0..n), 0, "{metric}");
        }
    }

    #[test]
    fn parallel_builds_and_extensions_are_well_formed_and_find_their_points() {
        for metric in [Metric::InnerProduct, Metric::L2] {
            let (n1, n2, d) = (1200, 1800, 24);
            let v = data(n1 + n2, d, 11, metric);
            let g = build(metric, d, &v[..n1 * d], params(3), 4);
            check_well_formed(&g, 8);
            // Grown in a different order, on four threads, with a small M whose levels reach
            // higher: the new points raise the top level and the entry point with it. (M = 2
            // keeps 4 links per point on layer 0: a graph for the levels, not for recall; on
            // this set it loses a third of the points, M = 4 0.3 %, M = 8 none.)
            let p = BuildParams { m: 2, ..params(3) };
            let small = build(metric, d, &v[..5 * d], p, 1);
            let small_top = small.max_level;
            let order: Vec<usize> = (0..n1 + n2 - 5).rev().collect();
            let grown = rayon::ThreadPoolBuilder::new()
                .num_threads(4)
                .build()
                .unwrap()
                .install(|| Graph::extended(small, &v[5 * d..], &order, p, &|_, _| ()))
                .map_err(|e| e.1)
                .unwrap();
            check_well_formed(&grown, 2);
            assert!(
                grown.max_level > small_top,
                "M = 2 draws levels up to ~log2(n)"
            );
            let g = rayon::ThreadPoolBuilder::new()
                .num_threads(4)
                .build()
                .unwrap()
                .install(|| {
                    let order: Vec<usize> = (0..n2).collect();
                    Graph::extended(g, &v[n1 * d..], &order, params(3), &|_, _| ())
                })
                .map_err(|e| e.1)
                .unwrap();
            check_well_formed(&g, 8);
            assert_eq!(g.n, n1 + n2);
            assert!(lost(&g, &v, 0..n1 + n2) <= 3, "{metric}");
        }
    }

    /// A point no list holds is linked into its nearest neighbour's list, and found again.
    #[test]
    fn orphans_are_linked_back() {
        let (n, d, metric) = (800, 16, Metric::L2);
        let v = data(n, d, 5, metric);
        let mut g = build(metric, d, &v, params(9), 1);
        let orphan = (0..n as u32).find(|&r| r != g.entry).unwrap();
        // Cut it out of every layer-0 list (upper layers too, so that no descent lands on it).
        for row in 0..n {
            let at = row * g.l0_stride;
            let count = g.l0[at] as usize;
            let kept: Vec<u32> = g.l0[at + 1..=at + count]
                .iter()
                .copied()
                .filter(|&x| x != orphan)
                .collect();
            g.l0[at] = kept.len() as u32;
            g.l0[at + 1..=at + kept.len()].copy_from_slice(&kept);
        }
        g.level[orphan as usize] = 0;
        let held = |g: &Graph| {
            (0..n as u32)
                .filter(|&r| g.layer0(r).contains(&orphan))
                .count()
        };
        assert_eq!(held(&g), 0);
        g.link_orphans(&mut vec![false; n]);
        assert_eq!(held(&g), 1);
        let nearest = g.layer0(orphan)[0];
        assert!(g.layer0(nearest).contains(&orphan));
        assert_eq!(lost(&g, &v, orphan as usize..orphan as usize + 1), 0);
    }

    /// A loaded graph may name, in an upper layer's list, a point that does not live on that
    /// layer (searches skip it): extending such a graph drops those links instead of reading
    /// past the point's records.
    #[test]
    fn links_to_points_below_the_layer_are_dropped_when_extending() {
        let (n, d, metric) = (600, 8, Metric::L2);
        let v = data(n + 50, d, 13, metric);
        let mut g = build(metric, d, &v[..n * d], params(4), 1);
        let high = (0..n as u32).find(|&r| g.level[r as usize] >= 1).unwrap();
        let low = (0..n as u32).find(|&r| g.level[r as usize] == 0).unwrap();
        let at = g.upper_start[high as usize] as usize;
        g.upper[at] = 1;
        g.upper[at + 1] = low;
        let order: Vec<usize> = (0..50).collect();
        let grown = Graph::extended(g, &v[n * d..], &order, params(4), &|_, _| ())
            .map_err(|e| e.1)
            .unwrap();
        check_well_formed(&grown, 8);
        assert!(!grown.upper_links(high, 1).contains(&low));
    }
}
