//! What a build does once every point is inserted: links back the points no list holds, and
//! sorts the lists the build wrote.

use rayon::prelude::*;

use super::distance::{key, row_of};
use super::graph::Graph;
use super::store::Store;

impl<V: Store> Graph<V> {
    /// Links the points no layer-0 list holds (the heuristic can prune a point out of every
    /// list it was in, and a search then never reaches it) into the list of their nearest
    /// neighbour: appended when there is room, else in place of that list's farthest point
    /// when that one is held by another list too. A safety net: none were left in the
    /// builds measured (20k x 768, and the tests' sets), but nothing rules them out.
    pub(super) fn link_orphans(&mut self, touched: &mut [bool]) {
        let mut held = vec![0u32; self.n];
        for row in 0..self.n as u32 {
            for &nb in self.layer0(row) {
                held[nb as usize] += 1;
            }
        }
        let cap = self.l0_stride - 1;
        let (mut buf, mut nbuf) = (V::Buf::default(), V::Buf::default());
        for row in 0..self.n as u32 {
            if held[row as usize] > 0 || row == self.entry {
                continue;
            }
            let v = self.store.row_query(row, &mut buf);
            let mut near: Vec<u64> = self
                .layer0(row)
                .iter()
                .map(|&nb| key(self.store.dist(v, nb), nb))
                .collect();
            near.sort_unstable();
            for nb in near.into_iter().map(row_of) {
                let at = nb as usize * self.l0_stride;
                let count = self.l0[at] as usize;
                if count < cap {
                    self.l0[at + 1 + count] = row;
                    self.l0[at] += 1;
                    held[row as usize] += 1;
                    touched[nb as usize] = true;
                    break;
                }
                let nv = self.store.row_query(nb, &mut nbuf);
                let (far, slot) = (1..=count)
                    .map(|i| {
                        let x = self.l0[at + i];
                        (key(self.store.dist(nv, x), x), i)
                    })
                    .max()
                    .unwrap_or((0, 0));
                if slot > 0 && held[row_of(far) as usize] > 1 {
                    self.l0[at + slot] = row;
                    held[row_of(far) as usize] -= 1;
                    held[row as usize] += 1;
                    touched[nb as usize] = true;
                    break;
                }
            }
        }
    }

    /// Orders every neighbour list by distance to its point (ties by row), the order
    /// `hnsw_rs` keeps and a loaded dump is read in, so that a saved and reloaded graph
    /// walks its lists as this one does. Only the `touched` points' lists: the others are as
    /// a previous build or a load left them, sorted.
    pub(super) fn sort_lists(&mut self, touched: &[bool]) {
        let mut l0 = std::mem::take(&mut self.l0);
        let mut upper = std::mem::take(&mut self.upper);
        let sort = |g: &Graph<V>, buf: &mut V::Buf, row: u32, rec: &mut [u32]| {
            let count = rec[0] as usize;
            let v = g.store.row_query(row, buf);
            let mut keys: Vec<u64> = rec[1..=count]
                .iter()
                .map(|&x| key(g.store.dist(v, x), x))
                .collect();
            keys.sort_unstable();
            for (slot, k) in rec[1..].iter_mut().zip(keys) {
                *slot = row_of(k);
            }
        };
        let this = &*self;
        l0.par_chunks_mut(self.l0_stride)
            .enumerate()
            .filter(|(row, _)| touched[*row])
            .for_each_init(V::Buf::default, |buf, (row, rec)| {
                sort(this, buf, row as u32, rec)
            });
        // Each point's upper records are consecutive: hand them out point by point.
        let mut parts: Vec<(u32, &mut [u32])> = Vec::new();
        let mut rest = &mut upper[..];
        // (`upper_start` grows with the row.)
        for row in (0..self.n as u32).filter(|&r| self.level[r as usize] > 0) {
            let len = self.level[row as usize] as usize * self.upper_stride;
            let (mine, more) = rest.split_at_mut(len);
            if touched[row as usize] {
                parts.push((row, mine));
            }
            rest = more;
        }
        let stride = self.upper_stride;
        parts
            .par_iter_mut()
            .for_each_init(V::Buf::default, |buf, (row, recs)| {
                for rec in recs.chunks_mut(stride) {
                    sort(this, buf, *row, rec);
                }
            });
        self.l0 = l0;
        self.upper = upper;
    }
}
