//! HNSW recall against exact search at a CI-friendly size, self-retrieval, parameters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use vecindex::{Error, FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};

fn seed() -> u64 {
    let seed = std::env::var("VECINDEX_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_126);
    eprintln!("seed = {seed} (set VECINDEX_TEST_SEED to change)");
    seed
}

fn recall(exact: &[Vec<vecindex::Hit>], approx: &[Vec<vecindex::Hit>]) -> f64 {
    let mut found = 0usize;
    let mut total = 0usize;
    for (e, a) in exact.iter().zip(approx) {
        total += e.len();
        found += e
            .iter()
            .filter(|h| a.iter().any(|x| x.row == h.row))
            .count();
    }
    found as f64 / total as f64
}

#[test]
fn recall_and_self_retrieval() {
    let seed = seed();
    let (n, nq, d, k) = (6000, 300, 64, 10);
    let data = clustered(n, d, 60, 0.08, seed);
    let queries = clustered(nq, d, 60, 0.08, seed + 1);
    for metric in [Metric::InnerProduct, Metric::L2] {
        let params = HnswParams {
            seed,
            ..HnswParams::default()
        };
        let t = std::time::Instant::now();
        let index = HnswIndex::build(d, metric, params, &ids(n), &data).unwrap();
        let build = t.elapsed();
        let flat = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap();
        let exact = flat.search(&queries, k).unwrap();
        for ef in [16, 32, 64, 256] {
            let r = recall(&exact, &index.search_with_ef(&queries, k, ef).unwrap());
            eprintln!("{metric}: ef={ef} recall@{k} = {r:.4}");
        }
        let approx = index.search(&queries, k).unwrap();
        let r = recall(&exact, &approx);
        eprintln!("{metric}: n={n} d={d} {params:?} build {build:?} recall@{k} = {r:.4}");
        assert!(r >= 0.95, "{metric}: recall@{k} {r} < 0.95 (seed {seed})");
        // Scores agree with exact scores of the returned rows.
        for (q, hits) in queries.chunks_exact(d).zip(&approx) {
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
            for h in hits {
                let exact_score = metric.score(q, &data[h.row * d..(h.row + 1) * d]);
                assert!(
                    (exact_score - h.score).abs() < 1e-4,
                    "{exact_score} vs {}",
                    h.score
                );
            }
        }
        // Every inserted point finds itself (or an identical vector) as its best match.
        let hits = index.search_with_ef(&data, 1, 64).unwrap();
        let lost: Vec<usize> = hits
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                h.is_empty()
                    || (h[0].row != *i
                        && data[h[0].row * d..(h[0].row + 1) * d] != data[i * d..(i + 1) * d])
            })
            .map(|(i, _)| i)
            .collect();
        eprintln!(
            "{metric}: {} of {n} points do not find themselves",
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "{metric}: points that cannot find themselves: {:?}",
            &lost[..lost.len().min(20)]
        );
    }
}

#[test]
fn parameters_are_validated_before_hnsw_rs() {
    let bad = [
        HnswParams {
            m: 257,
            ..HnswParams::default()
        },
        HnswParams {
            m: 256,
            ..HnswParams::default()
        },
        HnswParams {
            m: 1,
            ..HnswParams::default()
        },
        HnswParams {
            ef_construction: 0,
            ..HnswParams::default()
        },
        HnswParams {
            ef_search: 0,
            ..HnswParams::default()
        },
        HnswParams {
            ef_search: usize::MAX,
            ..HnswParams::default()
        },
    ];
    for p in bad {
        assert!(
            matches!(
                HnswIndex::new(8, Metric::InnerProduct, p, 10),
                Err(Error::InvalidParams(_))
            ),
            "{p:?}"
        );
    }
    let mut index = HnswIndex::new(2, Metric::InnerProduct, HnswParams::default(), 0).unwrap();
    assert!(index.search(&[1.0, 0.0], 3).unwrap()[0].is_empty());
    index.add(&["a", "b"], &[1.0, 0.0, 0.0, 1.0]).unwrap();
    assert!(matches!(index.search(&[1.0, 0.0], 0), Err(Error::ZeroK)));
    assert!(matches!(
        index.search(&[f32::NAN, 0.0], 1),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        index.search_one_with_ef(&[1.0], 1, 10),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        index.search_with_ef(&[1.0, 0.0], 1, 0),
        Err(Error::InvalidParams(_))
    ));
    assert!(matches!(
        index.add(&["a"], &[1.0, 0.0]),
        Err(Error::DuplicateId(_))
    ));
    // k > n gives n hits; unit vectors whose dot product rounds above 1 do not panic.
    let hits = index.search(&[1.0, 1e-8], 5).unwrap();
    assert_eq!(hits[0].len(), 2);
    assert_eq!(index.id(hits[0][0].row), Some("a"));
    let v = normalise(vec![0.3, 0.7]);
    index.add(&["c", "d"], &[v[0], v[1], v[0], v[1]]).unwrap();
    let hits = index.search(&v, 4).unwrap();
    assert_eq!(hits[0].len(), 4);
    assert_eq!(hits[0][0].row, 2, "tie broken by insertion order");
}
