//! How close two runs' embeddings of the same images are.

use anyhow::bail;
use embed_pipeline::Extraction;
use ndarray::Array2;

/// How close one run's embeddings (fast JPEG, or a reduced precision) are to the exact ones,
/// image by image.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq)]
pub(super) struct Agreement {
    /// Images compared.
    pub(super) rows: usize,
    /// Mean and smallest cosine between an image's fast and exact embeddings ("fast": the run
    /// compared; "exact": the reference run).
    pub(super) mean_cosine: f64,
    pub(super) min_cosine: f64,
    /// Images whose fast embedding has its own exact embedding as nearest exact neighbour.
    pub(super) self_top1: usize,
    /// Images whose two embeddings are bit-identical (fast JPEG: too small for the fast mode to
    /// apply).
    pub(super) identical: usize,
    /// Mean and largest cosine between *different* images' exact embeddings: what a cosine
    /// means for these weights (random weights put unrelated images close together).
    pub(super) other_mean_cosine: f64,
    pub(super) other_max_cosine: f64,
}

impl Agreement {
    pub(super) fn of(exact: &Extraction, fast: &Extraction) -> anyhow::Result<Self> {
        if exact.ids != fast.ids {
            bail!("the two runs compared embedded different images (an image failed in one)");
        }
        let unit = |m: &Array2<f32>| {
            let mut m = m.mapv(f64::from);
            for mut row in m.rows_mut() {
                let n = row.dot(&row).sqrt();
                if n > 0.0 {
                    row /= n;
                }
            }
            m
        };
        let (e, f) = (unit(&exact.embeddings), unit(&fast.embeddings));
        let rows = e.nrows();
        if rows == 0 {
            bail!("no images were embedded");
        }
        let cross = f.dot(&e.t()); // cross[i][j] = cos(fast_i, exact_j)
        let gram = e.dot(&e.t());
        let mut a = Self {
            rows,
            mean_cosine: 0.0,
            min_cosine: f64::INFINITY,
            self_top1: 0,
            identical: 0,
            other_mean_cosine: 0.0,
            other_max_cosine: f64::NEG_INFINITY,
        };
        a.identical = exact
            .embeddings
            .rows()
            .into_iter()
            .zip(fast.embeddings.rows())
            .filter(|(x, y)| x == y)
            .count();
        for i in 0..rows {
            let own = cross[[i, i]];
            a.mean_cosine += own;
            a.min_cosine = a.min_cosine.min(own);
            if (0..rows).all(|j| j == i || cross[[i, j]] < own) {
                a.self_top1 += 1;
            }
            for j in (0..rows).filter(|&j| j != i) {
                a.other_mean_cosine += gram[[i, j]];
                a.other_max_cosine = a.other_max_cosine.max(gram[[i, j]]);
            }
        }
        a.mean_cosine /= rows as f64;
        if rows > 1 {
            a.other_mean_cosine /= (rows * (rows - 1)) as f64;
        } else {
            a.other_mean_cosine = f64::NAN;
            a.other_max_cosine = f64::NAN;
        }
        Ok(a)
    }
}
