//! Cosine and inner product on vectors of any length: flat and HNSW agree, cosine is its own
//! metric (normalised vectors and queries, zero vectors left at zero), and it survives a save.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use vecindex::faiss_io::ReadOptions;
use vecindex::{FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};

/// `n` rows of `d` floats with norms spread over 0.1 to 5.1 (xorshift directions).
fn uneven(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let raw = xorshift_vectors(n, d, seed);
    let mut s = seed | 1;
    raw.chunks_exact(d)
        .flat_map(|r| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let norm = 0.1 + 5.0 * (s >> 40) as f32 / (1u64 << 24) as f32;
            normalise(r.to_vec()).into_iter().map(move |x| x * norm)
        })
        .collect()
}

#[test]
fn cosine_is_a_metric_of_its_own() {
    assert_eq!("cosine".parse::<Metric>().unwrap(), Metric::Cosine);
    assert_eq!("COSINE".parse::<Metric>().unwrap(), Metric::Cosine);
    assert_eq!("ip".parse::<Metric>().unwrap(), Metric::InnerProduct);
    assert_eq!(
        "inner_product".parse::<Metric>().unwrap(),
        Metric::InnerProduct
    );
    assert_eq!("l2".parse::<Metric>().unwrap(), Metric::L2);
    assert!("dot".parse::<Metric>().is_err());
    for m in [Metric::InnerProduct, Metric::L2, Metric::Cosine] {
        assert_eq!(m.to_string().parse::<Metric>().unwrap(), m);
    }
    assert_eq!(Metric::Cosine.faiss_code(), 0);
    assert_eq!(Metric::Cosine.faiss_distance(0.5), 0.5);
    assert!((Metric::Cosine.score(&[3.0, 4.0], &[6.0, 8.0]) - 1.0).abs() < 1e-6);
    assert_eq!(Metric::Cosine.score(&[0.0, 0.0], &[6.0, 8.0]), 0.0);
}

/// Flat cosine scores are cosines (naive, in f64) whatever the lengths; a zero vector, stored
/// or queried, scores 0 against everything.
#[test]
fn flat_cosine_scores_are_cosines_and_zero_vectors_stay_zero() {
    let (n, d, k) = (300, 12, 10);
    let mut data = uneven(n, d, 3);
    data[7 * d..8 * d].fill(0.0);
    let queries = uneven(20, d, 4);
    let index = FlatIndex::from_vectors(d, Metric::Cosine, &ids(n), &data).unwrap();
    let want = naive(&data, &queries, d, Metric::Cosine, k);
    // Batched (matrix product) and single-query paths.
    let batch = index.search(&queries, k).unwrap();
    for (qi, q) in queries.chunks_exact(d).enumerate() {
        let single = index.search_one(q, k).unwrap();
        for got in [&batch[qi], &single] {
            assert_matches_naive(got, &want[qi], &data, q, d, Metric::Cosine, 1e-5);
        }
    }
    let stored = index.vector(3).unwrap();
    let norm: f32 = stored.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-6,
        "stored vectors are normalised: {norm}"
    );
    assert!(index.vector(7).unwrap().iter().all(|&x| x == 0.0));
    let zero = vec![0.0; d];
    let hits = index.search(&zero, n).unwrap();
    assert!(hits[0].iter().all(|h| h.score == 0.0));
    // The zero vector scores 0 for any query.
    let all = index.search(&queries[..d], n).unwrap();
    assert_eq!(all[0].iter().find(|h| h.row == 7).unwrap().score, 0.0);
}

/// Row sets of each query's hits, and their scores in order.
fn rows_and_scores(hits: &[Vec<vecindex::Hit>]) -> Vec<(Vec<usize>, Vec<f32>)> {
    hits.iter()
        .map(|h| {
            let mut rows: Vec<usize> = h.iter().map(|x| x.row).collect();
            rows.sort_unstable();
            (rows, h.iter().map(|x| x.score).collect())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// On vectors whose lengths differ (0.1 to 5.1), HNSW searched with `ef` = n returns the
    /// top-k of exact search, with its scores, for inner product and cosine: the graph orders
    /// by minus the inner product, unclamped (a clamped `max(0, 1 - dot)` ties every dot
    /// product above 1 and returns the wrong rows).
    #[test]
    fn hnsw_at_full_ef_equals_flat_on_vectors_of_any_length(
        seed in 1u64..u64::MAX, n in 60usize..250, d in 2usize..24, cosine in any::<bool>(),
    ) {
        let metric = if cosine { Metric::Cosine } else { Metric::InnerProduct };
        let k = 8;
        let data = uneven(n, d, seed);
        let queries = uneven(10, d, seed ^ 0x5555);
        let params = HnswParams { m: 8, ef_construction: 64, ef_search: 16, seed };
        let hnsw = on_one_thread(|| HnswIndex::build(d, metric, params, &ids(n), &data).unwrap());
        let flat = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap();
        let exact = rows_and_scores(&flat.search(&queries, k).unwrap());
        let approx = rows_and_scores(&hnsw.search_with_ef(&queries, k, n).unwrap());
        for (qi, (e, a)) in exact.iter().zip(&approx).enumerate() {
            prop_assert_eq!(&e.0, &a.0, "{} query {}: rows (seed {})", metric, qi, seed);
            for (x, y) in e.1.iter().zip(&a.1) {
                prop_assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{} query {}: {} vs {}", metric, qi, x, y);
            }
        }
    }
}

/// A cosine index, flat (own format and FAISS) and HNSW, saved and loaded: still cosine, the
/// same answers.
#[test]
fn cosine_indexes_save_and_load() {
    let (n, d) = (200, 10);
    let data = uneven(n, d, 9);
    let queries = uneven(15, d, 10);
    let dir = tempfile::tempdir().unwrap();
    let flat = FlatIndex::from_vectors(d, Metric::Cosine, &ids(n), &data).unwrap();
    let want = flat.search(&queries, 5).unwrap();
    flat.save(&dir.path().join("f.vix")).unwrap();
    let back = FlatIndex::load(&dir.path().join("f.vix")).unwrap();
    assert_eq!(back.metric(), Metric::Cosine);
    assert_eq!(back.search(&queries, 5).unwrap(), want);
    let faiss = dir.path().join("f.faiss");
    flat.write_faiss(&faiss).unwrap();
    assert_eq!(&std::fs::read(&faiss).unwrap()[..4], b"IxFI");
    for mmap in [false, true] {
        let options = ReadOptions {
            mmap,
            ..ReadOptions::default()
        };
        let back = FlatIndex::read_faiss(&faiss, options).unwrap();
        assert_eq!(back.metric(), Metric::Cosine);
        assert_eq!(back.search(&queries, 5).unwrap(), want);
    }

    let params = HnswParams {
        m: 8,
        ..HnswParams::default()
    };
    let hnsw = HnswIndex::build(d, Metric::Cosine, params, &ids(n), &data).unwrap();
    let want = hnsw.search(&queries, 5).unwrap();
    hnsw.save(&dir.path().join("h.vix")).unwrap();
    let back = HnswIndex::load(&dir.path().join("h.vix")).unwrap();
    assert_eq!(back.metric(), Metric::Cosine);
    assert_eq!(back.search(&queries, 5).unwrap(), want);
}
