//! Per-query top-k selection: greater score first, ties by smaller row (insertion order).

use std::cmp::Ordering;

use crate::Hit;

/// Orders hits best first: score descending (`f32::total_cmp`), then row ascending.
#[inline]
pub(crate) fn best_first(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.row.cmp(&b.row))
}

/// Keeps the `k` best hits seen so far. Candidates are appended to a buffer and the buffer is
/// cut back to `k` (by `select_nth_unstable`) whenever it doubles, so each push is a comparison
/// against the current k-th best in the common case.
pub(crate) struct TopK {
    k: usize,
    buf: Vec<Hit>,
    /// The k-th best hit after the last cut; anything not better is discarded.
    bar: Option<Hit>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            buf: Vec::with_capacity(2 * k.min(1 << 16)),
            bar: None,
        }
    }

    /// Offers a hit. Rows must be offered in increasing order for equal scores to keep the
    /// smaller row (the bar check treats an equal score as worse).
    #[inline]
    pub(crate) fn push(&mut self, row: usize, score: f32) {
        // `+ 0.0` turns -0.0 into 0.0, so zero scores tie instead of ordering by sign.
        let hit = Hit {
            row,
            score: score + 0.0,
        };
        if let Some(bar) = &self.bar
            && best_first(&hit, bar) != Ordering::Less
        {
            return;
        }
        self.buf.push(hit);
        if self.buf.len() >= 2 * self.k.max(16) {
            self.cut();
        }
    }

    /// Current threshold score: hits scoring strictly below it cannot enter.
    #[inline]
    pub(crate) fn bar_score(&self) -> f32 {
        self.bar.map_or(f32::NEG_INFINITY, |b| b.score)
    }

    fn cut(&mut self) {
        if self.buf.len() > self.k {
            self.buf.select_nth_unstable_by(self.k - 1, best_first);
            self.buf.truncate(self.k);
        }
        if self.buf.len() == self.k {
            self.bar = self.buf.iter().copied().max_by(best_first);
        }
    }

    /// Merges another selector's hits into this one.
    pub(crate) fn merge(&mut self, other: TopK) {
        for h in other.buf {
            self.buf.push(h);
        }
        self.cut();
    }

    /// The best `min(k, seen)` hits, best first.
    pub(crate) fn into_sorted(mut self) -> Vec<Hit> {
        self.cut();
        self.buf.sort_unstable_by(best_first);
        self.buf.truncate(self.k);
        self.buf
    }
}
