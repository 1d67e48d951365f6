//! Exact search against a naive loop, and the error cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use vecindex::{Error, FlatIndex, Metric, VectorIndex};

/// Values either on a 1/8 grid (products and sums exact: many exact ties and duplicates) or
/// continuous in [-1, 1].
fn values(len: usize, grid: bool) -> impl Strategy<Value = Vec<f32>> {
    let v = if grid {
        (-8i32..=8).prop_map(|i| i as f32 / 8.0).boxed()
    } else {
        (-1.0f32..1.0).boxed()
    };
    proptest::collection::vec(v, len)
}

/// (d, n, nq, k, grid, data, queries, duplicate pairs, zeroed rows).
type Case = (
    usize,
    usize,
    usize,
    usize,
    bool,
    Vec<f32>,
    Vec<f32>,
    Vec<usize>,
    Vec<usize>,
);

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..17,
        0usize..70,
        1usize..20,
        1usize..90,
        any::<bool>(),
    )
        .prop_flat_map(|(d, n, nq, k, grid)| {
            (
                Just(d),
                Just(n),
                Just(nq),
                Just(k),
                Just(grid),
                values(n * d, grid),
                values(nq * d, grid),
                // Rows to overwrite with a copy of another row (duplicates) and rows to zero.
                proptest::collection::vec(0usize..1000, 0..6),
                proptest::collection::vec(0usize..1000, 0..4),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]
    #[test]
    fn flat_equals_naive((d, n, nq, k, grid, mut data, queries, dups, zeros) in case()) {
        if n > 0 {
            for w in dups.chunks(2) {
                if let [a, b] = w {
                    let (a, b) = (a % n, b % n);
                    let src = data[b * d..(b + 1) * d].to_vec();
                    data[a * d..(a + 1) * d].copy_from_slice(&src);
                }
            }
            for z in &zeros {
                let z = z % n;
                data[z * d..(z + 1) * d].iter_mut().for_each(|x| *x = 0.0);
            }
        }
        for metric in [Metric::InnerProduct, Metric::L2] {
            let index = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap();
            let want = naive(&data, &queries, d, metric, k);
            // Batched (through the matrix product when nq >= 8) and one query at a time.
            let batched = index.search(&queries, k).unwrap();
            prop_assert_eq!(batched.len(), nq);
            for (i, q) in queries.chunks_exact(d).enumerate() {
                let single = index.search_one(q, k).unwrap();
                prop_assert_eq!(single.len(), k.min(n));
                assert_matches_naive(&batched[i], &want[i], &data, q, d, metric, 1e-5);
                assert_matches_naive(&single, &want[i], &data, q, d, metric, 1e-5);
                if grid {
                    // Exact arithmetic: the rows themselves must match, ties by insertion order.
                    let rows: Vec<usize> = want[i].iter().map(|w| w.0).collect();
                    prop_assert_eq!(batched[i].iter().map(|h| h.row).collect::<Vec<_>>(), rows.clone());
                    prop_assert_eq!(single.iter().map(|h| h.row).collect::<Vec<_>>(), rows);
                }
            }
        }
    }
}

#[test]
fn errors_are_typed() {
    let mut index = FlatIndex::new(3, Metric::InnerProduct).unwrap();
    index
        .add(&["a", "b"], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
        .unwrap();
    assert!(matches!(
        index.search(&[1.0, 0.0, 0.0], 0),
        Err(Error::ZeroK)
    ));
    assert!(matches!(
        index.search_one(&[1.0, 0.0], 1),
        Err(Error::DimensionMismatch {
            expected: 3,
            got: 2
        })
    ));
    assert!(matches!(
        index.search(&[1.0, 0.0, 0.0, 1.0], 1),
        Err(Error::RaggedInput { .. })
    ));
    assert!(matches!(
        index.search(&[f32::NAN, 0.0, 0.0], 1),
        Err(Error::NonFinite { row: 0 })
    ));
    assert!(matches!(
        index.add(&["c"], &[0.0, f32::INFINITY, 0.0]),
        Err(Error::NonFinite { row: 0 })
    ));
    assert!(matches!(
        index.add(&["a"], &[0.0, 0.0, 1.0]),
        Err(Error::DuplicateId(_))
    ));
    assert!(matches!(
        index.add(&["c", "c"], &[0.0; 6]),
        Err(Error::DuplicateId(_))
    ));
    assert!(matches!(
        index.add(&["x\ny"], &[0.0; 3]),
        Err(Error::InvalidId(_))
    ));
    assert!(matches!(
        index.add(&["c"], &[0.0; 6]),
        Err(Error::IdCountMismatch { ids: 1, vectors: 2 })
    ));
    assert!(matches!(
        FlatIndex::new(0, Metric::L2),
        Err(Error::InvalidDimension(0))
    ));
    // Failed adds left nothing behind.
    assert_eq!(index.len(), 2);
    let hits = index.search(&[0.0, 2.0, 0.0], 5).unwrap();
    assert_eq!(hits[0].len(), 2);
    assert_eq!(index.id(hits[0][0].row), Some("b"));
    assert_eq!(hits[0][0].score, 2.0);
}

#[test]
fn l2_scores_are_minus_squared_distance() {
    let index = FlatIndex::from_vectors(2, Metric::L2, &["o", "p"], &[0.0, 0.0, 3.0, 4.0]).unwrap();
    let hits = index.search_one(&[0.0, 0.0], 2).unwrap();
    assert_eq!((hits[0].row, hits[0].score), (0, 0.0));
    assert_eq!((hits[1].row, hits[1].score), (1, -25.0));
    assert_eq!(Metric::L2.faiss_distance(hits[1].score), 25.0);
}
