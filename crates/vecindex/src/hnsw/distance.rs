//! The distances a graph is built and searched with, and the heap keys they become.

use crate::{Metric, kernels};

/// What a graph measures between two of its vectors; smaller is nearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Distance {
    /// The squared L2 distance ([`Metric::L2`]).
    SquaredL2,
    /// Minus the inner product, unclamped ([`Metric::InnerProduct`], and [`Metric::Cosine`] on
    /// normalised vectors): the order of exact search for vectors of any length.
    NegDot,
    /// `max(0, 1 - dot)`: the inner-product distance of graphs saved in format 1. It ties every
    /// dot product at or above 1, so it only orders unit vectors exactly; such graphs keep it so
    /// that they answer as they did.
    ClampedDot,
}

impl Distance {
    /// The distance a new graph for `metric` uses.
    pub(crate) fn of_metric(metric: Metric) -> Self {
        match metric {
            Metric::L2 => Distance::SquaredL2,
            Metric::InnerProduct | Metric::Cosine => Distance::NegDot,
        }
    }

    /// The score (greater is closer) of a hit at distance `d`.
    #[inline(always)]
    pub(crate) fn score(self, d: f32) -> f32 {
        // `+ 0.0` turns -0.0 into 0.0, so zero scores tie instead of ordering by sign.
        match self {
            Distance::SquaredL2 | Distance::NegDot => -d + 0.0,
            Distance::ClampedDot => 1.0 - d + 0.0,
        }
    }
}

/// A [`Distance`] with its kernel looked up once. Never NaN: `f32::max` and `f32::min` return
/// the other operand for a NaN one (inf - inf on overflowing input), so a NaN becomes 0 for the
/// clamped distances and `f32::MAX` (the farthest) for [`Distance::NegDot`].
#[derive(Clone, Copy)]
pub(crate) struct GraphDistance {
    distance: Distance,
    kernel: kernels::Kernel,
}

impl GraphDistance {
    #[inline(always)]
    pub(crate) fn of(distance: Distance) -> Self {
        let kernel = match distance {
            Distance::SquaredL2 => kernels::l2_kernel(),
            Distance::NegDot | Distance::ClampedDot => kernels::dot_kernel(),
        };
        Self { distance, kernel }
    }

    #[inline(always)]
    pub(crate) fn eval(self, a: &[f32], b: &[f32]) -> f32 {
        let v = (self.kernel)(a, b);
        match self.distance {
            Distance::SquaredL2 => v.max(0.0),
            Distance::NegDot => (-v).min(f32::MAX),
            Distance::ClampedDot => (1.0 - v).max(0.0),
        }
    }
}

/// A heap entry: the distance above the row, the distance's bits mapped so that comparing the
/// keys as integers compares the distances (sign bit set for non-negative distances, all bits
/// flipped for negative ones), and equal distances order by row. `+ 0.0` turns -0.0 into 0.0
/// so that the two zeros tie. Distances are never NaN ([`GraphDistance`]).
#[inline(always)]
pub(crate) fn key(d: f32, row: u32) -> u64 {
    let bits = (d + 0.0).to_bits();
    let ordered = bits ^ (((bits as i32) >> 31) as u32 | 0x8000_0000);
    (u64::from(ordered) << 32) | u64::from(row)
}

/// The row of a [`key`].
#[inline(always)]
pub(crate) fn row_of(key: u64) -> u32 {
    key as u32
}

/// The distance of a [`key`].
#[inline(always)]
pub(crate) fn distance_of(key: u64) -> f32 {
    let ordered = (key >> 32) as u32;
    let bits = if ordered & 0x8000_0000 != 0 {
        ordered ^ 0x8000_0000
    } else {
        !ordered
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys order as their distances, negative ones included, then by row; the distance reads
    /// back.
    #[test]
    fn keys_order_as_distances_then_rows() {
        let ds = [
            f32::NEG_INFINITY,
            -f32::MAX,
            -3.5,
            -1.0,
            -f32::MIN_POSITIVE,
            0.0,
            f32::MIN_POSITIVE,
            0.25,
            1.0,
            f32::MAX,
            f32::INFINITY,
        ];
        let keys: Vec<u64> = ds.iter().flat_map(|&d| [key(d, 0), key(d, 7)]).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:x?}");
        for &d in &ds {
            assert_eq!(distance_of(key(d, 3)).to_bits(), d.to_bits());
            assert_eq!(row_of(key(d, 3)), 3);
        }
        assert_eq!(key(-0.0, 1), key(0.0, 1));
    }

    /// Minus the inner product, unclamped; NaN (from overflow) is the farthest.
    #[test]
    fn neg_dot_is_not_clamped() {
        let d = GraphDistance::of(Distance::NegDot);
        assert_eq!(d.eval(&[2.0, 0.0], &[3.0, 1.0]), -6.0);
        assert_eq!(d.eval(&[1.0, 0.0], &[-0.5, 1.0]), 0.5);
        let clamped = GraphDistance::of(Distance::ClampedDot);
        assert_eq!(clamped.eval(&[2.0, 0.0], &[3.0, 1.0]), 0.0);
        // A NaN inner product (overflow to inf - inf; whether a sum overflows to ±inf or NaN
        // depends on the kernel's FMA order) is the farthest distance.
        let nan_dot = GraphDistance::of(Distance::NegDot).eval(&[f32::NAN, 0.0], &[1.0, 1.0]);
        assert_eq!(nan_dot, f32::MAX);
        assert_eq!(Distance::NegDot.score(-6.0), 6.0);
        assert_eq!(Distance::ClampedDot.score(0.25), 0.75);
        assert_eq!(Distance::SquaredL2.score(2.0), -2.0);
    }
}
