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
        let index = on_one_thread(|| HnswIndex::build(d, metric, params, &ids(n), &data).unwrap());
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

/// The rows `i` whose best hit, searching with row `i`'s own vector as query `i`, is not `i`.
fn not_found_themselves(hits: &[Vec<vecindex::Hit>]) -> Vec<usize> {
    hits.iter()
        .enumerate()
        .filter(|(i, h)| h[0].row != *i)
        .map(|(i, _)| i)
        .collect()
}

/// Row sets per query.
fn rows(hits: &[Vec<vecindex::Hit>]) -> Vec<Vec<usize>> {
    hits.iter()
        .map(|h| {
            let mut r: Vec<usize> = h.iter().map(|x| x.row).collect();
            r.sort_unstable();
            r
        })
        .collect()
}

/// Data close to uniform on the sphere (one centre, a large spread: the hardest case), its
/// queries, and an index of it built on one thread.
fn uniform_index(metric: Metric, seed: u64) -> (Vec<f32>, Vec<f32>, HnswIndex) {
    let (n, nq, d) = (3000, 200, 32);
    let data = clustered(n, d, 1, 10.0, seed + 2);
    let queries = clustered(nq, d, 1, 10.0, seed + 3);
    let params = HnswParams {
        m: 12,
        ef_construction: 100,
        seed,
        ..HnswParams::default()
    };
    let index = on_one_thread(|| HnswIndex::build(d, metric, params, &ids(n), &data).unwrap());
    (data, queries, index)
}

/// Hits best first (ties by row), single-query calls equal to the batch, exact results once
/// `ef` covers the whole graph, `k` above `n` clamped, every point found by its own vector.
#[test]
fn search_is_sorted_exact_at_full_ef_and_single_equals_batch() {
    let seed = seed();
    for metric in [Metric::InnerProduct, Metric::L2, Metric::Cosine] {
        let (data, queries, index) = uniform_index(metric, seed);
        let (n, d, k) = (index.len(), index.dim(), 10);
        let flat = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap();
        let exact = flat.search(&queries, k).unwrap();
        for ef in [10, 16, 64] {
            let ours = index.search_with_ef(&queries, k, ef).unwrap();
            for a in &ours {
                assert_eq!(a.len(), k);
                assert!(a.windows(2).all(|w| w[0].score > w[1].score
                    || (w[0].score == w[1].score && w[0].row < w[1].row)));
            }
            let single: Vec<Vec<vecindex::Hit>> = queries
                .chunks_exact(d)
                .map(|q| index.search_one_with_ef(q, k, ef).unwrap())
                .collect();
            assert_eq!(
                single, ours,
                "{metric} ef={ef}: single query differs from batch"
            );
        }
        // With ef = n the search reaches every point connected to the entry point: exact.
        let ours = index.search_with_ef(&queries, k, n).unwrap();
        assert_eq!(rows(&ours), rows(&exact), "{metric}: ef = n is not exact");
        // k above n is clamped; ef below k is raised to k.
        assert_eq!(
            index.search_with_ef(&queries[..d], n + 5, 1).unwrap()[0].len(),
            n
        );
        // Every point finds itself.
        let lost = not_found_themselves(&index.search_with_ef(&data, 1, 32).unwrap()).len();
        assert_eq!(lost, 0, "{metric}: {lost} points do not find themselves");
    }
}

/// Our search of the graph against `hnsw_rs`'s own search of the same graph: recall at least
/// as good (small tolerance) and the same scores for rows both return (within rounding for
/// inner product: `hnsw_rs` scores `1 - (1 - dot)`).
#[cfg(feature = "hnsw-rs-compare")]
#[test]
fn own_search_matches_or_beats_hnsw_rs_search() {
    let seed = seed();
    for metric in [Metric::InnerProduct, Metric::L2] {
        let (data, queries, index) = uniform_index(metric, seed);
        let (n, d, k) = (index.len(), index.dim(), 10);
        let flat = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap();
        let exact = flat.search(&queries, k).unwrap();
        // Both searches walk the same graph from nearly the same start; which of them gets a few
        // more neighbours at small ef is chance (±1 % over seeds), so per-ef differences get a
        // 2 % allowance and the mean over all ef values 0.5 %.
        let efs = [10, 16, 32, 64, 128];
        let (mut sum_ours, mut sum_theirs) = (0.0, 0.0);
        // hnsw_rs reloads the index's dump: the same graph, searched by hnsw_rs.
        let hnsw_rs = index.hnsw_rs_searcher().unwrap();
        for ef in efs {
            let ours = index.search_with_ef(&queries, k, ef).unwrap();
            let theirs = hnsw_rs.search_with_ef(&queries, k, ef).unwrap();
            let (r_ours, r_theirs) = (recall(&exact, &ours), recall(&exact, &theirs));
            eprintln!("{metric}: ef={ef} recall@{k} ours {r_ours:.4}, hnsw_rs {r_theirs:.4}");
            assert!(
                r_ours >= r_theirs - 0.02,
                "{metric} ef={ef}: ours {r_ours} < hnsw_rs {r_theirs} (seed {seed})"
            );
            sum_ours += r_ours;
            sum_theirs += r_theirs;
            for (a, b) in ours.iter().zip(&theirs) {
                for h in a {
                    if let Some(x) = b.iter().find(|x| x.row == h.row) {
                        let tol = if metric == Metric::L2 { 0.0 } else { 1e-6 };
                        assert!(
                            (x.score - h.score).abs() <= tol,
                            "{metric}: row {}: {} vs {}",
                            h.row,
                            x.score,
                            h.score
                        );
                    }
                }
            }
        }
        assert!(
            sum_ours >= sum_theirs - 0.005 * efs.len() as f64,
            "{metric}: mean recall ours {} < hnsw_rs {} (seed {seed})",
            sum_ours / efs.len() as f64,
            sum_theirs / efs.len() as f64
        );
    }
}

/// Points added after the first search (which copies the graph) are found; old ones still are.
#[test]
fn added_points_are_found_after_earlier_searches() {
    let seed = seed();
    let (n1, n2, d) = (1500, 700, 24);
    let data = clustered(n1 + n2, d, 30, 0.1, seed + 4);
    let all_ids = ids(n1 + n2);
    for metric in [Metric::InnerProduct, Metric::L2] {
        let params = HnswParams {
            m: 16,
            seed,
            ..HnswParams::default()
        };
        let mut index = on_one_thread(|| {
            HnswIndex::build(d, metric, params, &all_ids[..n1], &data[..n1 * d]).unwrap()
        });
        let before = index.search_with_ef(&data[n1 * d..], 1, 64).unwrap();
        assert!(before.iter().all(|h| h[0].row < n1));
        on_one_thread(|| index.add(&all_ids[n1..], &data[n1 * d..]).unwrap());
        assert_eq!(index.len(), n1 + n2);
        let lost = not_found_themselves(&index.search_with_ef(&data, 1, 64).unwrap());
        assert!(lost.is_empty(), "{metric}: not found after add: {lost:?}");
        let one = index
            .search_one_with_ef(&data[(n1 + 3) * d..(n1 + 4) * d], 3, 16)
            .unwrap();
        assert_eq!(one[0].row, n1 + 3);
        assert_eq!(index.id(one[0].row), Some(all_ids[n1 + 3].as_str()));
    }
}

/// The default, parallel build and add: the graph differs from run to run, so the bounds leave
/// room for the insertion race (seen: at most 1 point of 2,200 lost at `ef` 64) while still
/// failing on a real fault (a stale graph copy after `add` loses all 700 new points; a broken
/// search loses recall by far more than 1 %).
#[test]
fn parallel_build_keeps_recall() {
    let seed = seed();
    let (n1, n2, nq, d, k) = (3000, 1000, 200, 32, 10);
    let data = clustered(n1 + n2, d, 40, 0.1, seed + 7);
    let queries = clustered(nq, d, 40, 0.1, seed + 8);
    let all_ids = ids(n1 + n2);
    for metric in [Metric::InnerProduct, Metric::L2] {
        let params = HnswParams {
            seed,
            ..HnswParams::default()
        };
        let mut index =
            HnswIndex::build(d, metric, params, &all_ids[..n1], &data[..n1 * d]).unwrap();
        index.search_with_ef(&queries, k, 16).unwrap();
        index.add(&all_ids[n1..], &data[n1 * d..]).unwrap();
        let flat = FlatIndex::from_vectors(d, metric, &all_ids, &data).unwrap();
        let r = recall(
            &flat.search(&queries, k).unwrap(),
            &index.search_with_ef(&queries, k, 128).unwrap(),
        );
        let lost_rows = not_found_themselves(&index.search_with_ef(&data, 1, 64).unwrap());
        let lost = lost_rows.len();
        let lost_new = lost_rows.iter().filter(|&&i| i >= n1).count();
        eprintln!(
            "{metric}: recall@{k} at ef 128 = {r:.4}, {lost} of {} lost",
            n1 + n2
        );
        assert!(r >= 0.97, "{metric}: recall@{k} {r} < 0.97 (seed {seed})");
        assert!(
            lost <= (n1 + n2) / 500 && lost_new <= n2 / 500,
            "{metric}: {lost} points ({lost_new} added ones) do not find themselves (seed {seed})"
        );
    }
}

/// A saved and reloaded index answers exactly as the original, for both metrics and several `ef`.
#[test]
fn save_load_gives_identical_results() {
    let seed = seed();
    let (n, nq, d) = (2500, 100, 40);
    let data = clustered(n, d, 25, 0.15, seed + 5);
    let queries = clustered(nq, d, 25, 0.15, seed + 6);
    let dir = tempfile::tempdir().unwrap();
    for metric in [Metric::InnerProduct, Metric::L2] {
        let index = HnswIndex::build(d, metric, HnswParams::default(), &ids(n), &data).unwrap();
        let path = dir.path().join(format!("{metric}.vix"));
        // Saving after a search and before one both work; the copy is not part of the file.
        let first = index.search_with_ef(&queries, 10, 16).unwrap();
        index.save(&path).unwrap();
        let back = HnswIndex::load(&path).unwrap();
        assert_eq!(back.search_with_ef(&queries, 10, 16).unwrap(), first);
        for ef in [10, 64, 300] {
            assert_eq!(
                back.search_with_ef(&queries, 10, ef).unwrap(),
                index.search_with_ef(&queries, 10, ef).unwrap(),
                "{metric} ef={ef}"
            );
        }
    }
}

/// `new` + `add`, saved, loaded, saved again, reloaded: the same answers at every step, the
/// same bytes; (with the `hnsw-rs-compare` feature) the file is one `hnsw_rs` reloads (its
/// search on it has the same recall either time); a loaded index takes new points and saves
/// them.
#[test]
fn new_add_save_load_resave_and_add_again() {
    let seed = seed();
    let (n1, n2, nq, d) = (2000, 500, 100, 32);
    let data = clustered(n1 + n2, d, 25, 0.12, seed + 11);
    let queries = clustered(nq, d, 25, 0.12, seed + 12);
    let all_ids = ids(n1 + n2);
    let dir = tempfile::tempdir().unwrap();
    for metric in [Metric::InnerProduct, Metric::L2] {
        let params = HnswParams {
            m: 16,
            seed,
            ..HnswParams::default()
        };
        let mut built = HnswIndex::new(d, metric, params, n1).unwrap();
        built.add(&all_ids[..n1], &data[..n1 * d]).unwrap();
        assert!(built.search_copy_bytes() >= n1 * d * 4);
        let want = built.search_with_ef(&queries, 10, 64).unwrap();
        let (a, b) = (
            dir.path().join(format!("{metric}-a.vix")),
            dir.path().join(format!("{metric}-b.vix")),
        );
        built.save(&a).unwrap();
        let loaded = HnswIndex::load(&a).unwrap();
        assert_eq!(loaded.search_with_ef(&queries, 10, 64).unwrap(), want);

        // Saved again from the loaded graph: loads to the same answers.
        loaded.save(&b).unwrap();
        let again = HnswIndex::load(&b).unwrap();
        for ef in [10, 64, 300] {
            assert_eq!(
                again.search_with_ef(&queries, 10, ef).unwrap(),
                built.search_with_ef(&queries, 10, ef).unwrap(),
                "{metric} ef={ef}"
            );
        }
        assert_eq!(again.ids(), built.ids());
        assert_eq!(again.params(), built.params());
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        // hnsw_rs reloads the file (the built index's dump, and the re-saved one) and its own
        // search finds what ours finds, give or take its search's misses.
        #[cfg(feature = "hnsw-rs-compare")]
        {
            let flat = FlatIndex::from_vectors(d, metric, &all_ids[..n1], &data[..n1 * d]).unwrap();
            let exact = flat.search(&queries, 10).unwrap();
            let theirs = recall(
                &exact,
                &again
                    .hnsw_rs_searcher()
                    .unwrap()
                    .search_with_ef(&queries, 10, 64)
                    .unwrap(),
            );
            let original = recall(
                &exact,
                &built
                    .hnsw_rs_searcher()
                    .unwrap()
                    .search_with_ef(&queries, 10, 64)
                    .unwrap(),
            );
            let ours = recall(&exact, &want);
            assert_eq!(
                theirs, original,
                "{metric}: same graph, same hnsw_rs answers"
            );
            assert!(
                theirs >= ours - 0.02,
                "{metric}: hnsw_rs recall {theirs} on our graph, ours {ours}"
            );
        }

        // add to the loaded index: old and new points are found, and it saves and reloads.
        let mut grown = again;
        grown.add(&all_ids[n1..], &data[n1 * d..]).unwrap();
        assert_eq!(grown.len(), n1 + n2);
        let lost = not_found_themselves(&grown.search_with_ef(&data, 1, 64).unwrap());
        assert!(
            lost.len() <= (n1 + n2) / 500,
            "{metric}: {} points lost after load + add: {lost:?}",
            lost.len()
        );
        grown.save(&b).unwrap();
        let back = HnswIndex::load(&b).unwrap();
        assert_eq!(
            back.search_with_ef(&queries, 10, 64).unwrap(),
            grown.search_with_ef(&queries, 10, 64).unwrap()
        );
    }
}

/// `add_with_progress` reports about every 1 % and ends at the batch's size.
#[test]
fn add_reports_progress() {
    let (n, d) = (1000, 16);
    let data = clustered(n, d, 10, 0.1, seed());
    let calls = std::sync::Mutex::new(Vec::new());
    let mut index = HnswIndex::new(d, Metric::L2, HnswParams::default(), n).unwrap();
    index
        .add_with_progress(&ids(n), &data, &|done, total| {
            calls.lock().unwrap().push((done, total));
        })
        .unwrap();
    let calls = calls.into_inner().unwrap();
    assert_eq!(calls.last(), Some(&(n, n)));
    assert!(calls.iter().all(|&(done, total)| total == n && done <= n));
    assert!((90..=101).contains(&calls.len()), "{} calls", calls.len());
    assert_eq!(index.len(), n);
}
