//! HNSW over scalar-quantised codes: recall against exact search, FAISS `IndexHNSWSQ` files
//! both ways through the project venv's `faiss-cpu`, growing a loaded graph, damaged files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compressed;

use compressed::*;
use vecindex::faiss_io::{IdSource, ReadOptions};
use vecindex::sq::{FlatSqIndex, SqKind};
use vecindex::{Error, FlatIndex, HnswParams, HnswSqIndex, Metric, VectorIndex};

const KINDS: [(SqKind, &str); 2] = [(SqKind::Sq8, "sq8"), (SqKind::Fp16, "fp16")];
const METRICS: [(Metric, &str); 2] = [(Metric::InnerProduct, "ip"), (Metric::L2, "l2")];

fn params(m: usize, ef_construction: usize, ef_search: usize) -> HnswParams {
    HnswParams {
        m,
        ef_construction,
        ef_search,
        seed: 5,
    }
}

/// The flat index over the same codes, for exact scores on the decoded vectors.
fn flat_of(index: &HnswSqIndex, data: &[f32]) -> FlatSqIndex {
    let mut flat = FlatSqIndex::with_quantizer(index.quantizer().clone(), index.metric());
    flat.add(&ids(index.len()), data).unwrap();
    flat
}

/// Recall of the graph over codes: against exact search on the same codes, and against exact
/// f32 search (what quantisation costs), for 8-bit and fp16, inner product and L2.
#[test]
fn recall_against_exact_search_on_codes_and_on_floats() {
    let (n, d, nq, k) = (4000, 32, 100, 10);
    let data = clustered(n, d, 40, 0.25, 11);
    let queries = clustered(nq, d, 40, 0.25, 12);
    for (kind, kname) in KINDS {
        for (metric, mname) in METRICS {
            let index =
                HnswSqIndex::build(d, metric, kind, params(12, 100, 64), &ids(n), &data).unwrap();
            assert_eq!(index.len(), n);
            let on_codes = flat_of(&index, &data).search(&queries, k).unwrap();
            let f32_exact = FlatIndex::from_vectors(d, metric, &ids(n), &data)
                .unwrap()
                .search(&queries, k)
                .unwrap();
            let got = index.search_with_ef(&queries, k, 64).unwrap();
            let (r_codes, r_f32) = (recall(&on_codes, &got), recall(&f32_exact, &got));
            // Parallel insertion is not deterministic: floors with room (0.97-0.99 measured
            // on codes).
            assert!(
                r_codes >= 0.95,
                "{kname} {mname}: recall {r_codes} on codes"
            );
            let floor = if kind == SqKind::Sq8 { 0.9 } else { 0.93 };
            assert!(r_f32 >= floor, "{kname} {mname}: recall {r_f32} on floats");
            // Scores are the codes' exact scores.
            for (g, e) in got.iter().zip(&on_codes) {
                if g[0].row == e[0].row {
                    assert!((g[0].score - e[0].score).abs() <= 1e-4 * (1.0 + e[0].score.abs()));
                }
            }
            // One query at a time: the same.
            let one = index.search_one_with_ef(&queries[..d], k, 64).unwrap();
            assert_eq!(one, got[0]);
        }
    }
}

/// 8-bit codes take a quarter of the f32 rows' bytes (plus the graph).
#[test]
fn memory_is_codes_and_graph() {
    let (n, d) = (1000, 128);
    let data = clustered(n, d, 10, 0.3, 1);
    let p = params(8, 40, 32);
    let sq = HnswSqIndex::build(d, Metric::InnerProduct, SqKind::Sq8, p, &ids(n), &data).unwrap();
    let f = vecindex::HnswIndex::build(d, Metric::InnerProduct, p, &ids(n), &data).unwrap();
    let graph = f.search_copy_bytes() - n * d * 4;
    assert!(
        sq.memory_bytes() <= n * d + 2 * d * 4 + graph + 64,
        "{}",
        sq.memory_bytes()
    );
    assert!(sq.memory_bytes() >= n * d);
}

/// FAISS builds and writes an `IndexHNSWSQ`; we read it and, at an `ef` covering every point,
/// answer with FAISS's ids and distances. We build from the same vectors and write; FAISS reads
/// our file and answers as we do. Our file read back searches as the index it was written from.
#[test]
fn hnsw_sq_files_match_faiss_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (600, 24, 20, 10);
    let data = clustered(n, d, 6, 0.3, 3);
    let queries: Vec<f32> = clustered(nq, d, 6, 0.3, 4)
        .iter()
        .map(|x| x * 1.2)
        .collect();
    let vpath = vectors_file(dir.path(), "v.f32", &data);
    let ef = 1024;
    for (kind, kname) in KINDS {
        for (metric, mname) in METRICS {
            let theirs = dir.path().join(format!("py_{kname}_{mname}.faiss"));
            faiss(&[
                "write-hnswsq",
                kname,
                mname,
                &vpath,
                &d.to_string(),
                "8",
                "40",
                &ef.to_string(),
                theirs.to_str().unwrap(),
            ]);
            let loaded = HnswSqIndex::read_faiss(&theirs, ReadOptions::default()).unwrap();
            assert_eq!(
                (loaded.dim(), loaded.len(), loaded.metric(), loaded.kind()),
                (d, n, metric, kind)
            );
            assert_eq!((loaded.params().m, loaded.params().ef_search), (8, ef));
            let flat = flat_of(&loaded, &data);
            let dist = faiss_dist(&flat, &queries);
            agrees_with_faiss(&loaded, &theirs, &queries, k, dir.path(), 1e-5, &dist);
            // FAISS's codes are the ones we would have written.
            let ours =
                HnswSqIndex::build(d, metric, kind, params(8, 40, ef), &ids(n), &data).unwrap();
            assert_eq!(ours.quantizer(), loaded.quantizer());

            let path = dir.path().join(format!("ours_{kname}_{mname}.faiss"));
            ours.write_faiss(&path).unwrap();
            agrees_with_faiss(&ours, &path, &queries, k, dir.path(), 1e-5, &dist);
            let back = HnswSqIndex::read_faiss(&path, ReadOptions::default()).unwrap();
            assert_eq!(back.id(7), Some("R000007"));
            assert_eq!(back.search_with_ef(&queries, k, 16).unwrap(), {
                ours.search_with_ef(&queries, k, 16).unwrap()
            });
        }
    }
}

/// At a small `ef` the two searches walk the same FAISS graph nearly alike.
#[test]
fn small_ef_search_of_a_faiss_graph_agrees_with_faiss() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (3000, 32, 100, 10);
    let data = clustered(n, d, 30, 0.3, 21);
    let queries = clustered(nq, d, 30, 0.3, 22);
    let vpath = vectors_file(dir.path(), "v.f32", &data);
    let path = dir.path().join("py.faiss");
    faiss(&[
        "write-hnswsq",
        "sq8",
        "ip",
        &vpath,
        &d.to_string(),
        "16",
        "80",
        "24",
        path.to_str().unwrap(),
    ]);
    let (_, fi) = faiss_search(&path, &queries, d, k, dir.path());
    let loaded = HnswSqIndex::read_faiss(&path, ReadOptions::default()).unwrap();
    let got = loaded.search(&queries, k).unwrap();
    let mut same = 0;
    for (qi, hits) in got.iter().enumerate() {
        let theirs = &fi[qi * k..(qi + 1) * k];
        same += hits
            .iter()
            .filter(|h| theirs.contains(&(h.row as i64)))
            .count();
    }
    let overlap = same as f64 / (nq * k) as f64;
    assert!(overlap >= 0.95, "overlap {overlap}");
}

/// A FAISS graph grows in place: points added after the read are found, the old ones too,
/// and FAISS reads the grown file.
#[test]
fn a_faiss_graph_grows_and_faiss_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let (n1, n2, d) = (500, 300, 16);
    let data = clustered(n1 + n2, d, 8, 0.3, 31);
    let vpath = vectors_file(dir.path(), "v.f32", &data[..n1 * d]);
    let path = dir.path().join("py.faiss");
    faiss(&[
        "write-hnswsq",
        "sq8",
        "l2",
        &vpath,
        &d.to_string(),
        "8",
        "40",
        "64",
        path.to_str().unwrap(),
    ]);
    let mut index = HnswSqIndex::read_faiss(&path, ReadOptions::default()).unwrap();
    let new_ids: Vec<String> = (n1..n1 + n2).map(|i| format!("N{i}")).collect();
    index.add(&new_ids, &data[n1 * d..]).unwrap();
    assert_eq!(index.len(), n1 + n2);
    let hits = index.search_with_ef(&data, 1, 64).unwrap();
    let lost = hits
        .iter()
        .enumerate()
        .filter(|(i, h)| h[0].row != *i && h[0].score < -1e-3)
        .count();
    assert!(lost <= 3, "{lost} points not found");
    let out = dir.path().join("grown.faiss");
    index.write_faiss(&out).unwrap();
    let (_, fi) = faiss_search(&out, &data[n1 * d..(n1 + 20) * d], d, 1, dir.path());
    let found = (0..20).filter(|&i| fi[i] == (n1 + i) as i64).count();
    assert!(found >= 19, "faiss found {found} of 20 new points");
    let back = HnswSqIndex::read_faiss(&out, ReadOptions::default()).unwrap();
    assert_eq!(back.id(n1), Some(format!("N{n1}").as_str()));
}

/// Cosine: an inner-product file over normalised vectors, the sidecar names it cosine.
#[test]
fn cosine_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (300, 12);
    let data: Vec<f32> = clustered(n, d, 5, 0.3, 41)
        .iter()
        .map(|x| x * 3.0)
        .collect();
    let index = HnswSqIndex::build(
        d,
        Metric::Cosine,
        SqKind::Sq8,
        params(8, 40, 64),
        &ids(n),
        &data,
    )
    .unwrap();
    let hits = index.search(&data[..d], 1).unwrap();
    assert_eq!(hits[0][0].row, 0);
    assert!(
        (hits[0][0].score - 1.0).abs() < 0.02,
        "{}",
        hits[0][0].score
    );
    let path = dir.path().join("cos.faiss");
    index.write_faiss(&path).unwrap();
    let back = HnswSqIndex::read_faiss(&path, ReadOptions::default()).unwrap();
    assert_eq!(back.metric(), Metric::Cosine);
    assert_eq!(back.search(&data[..d], 1).unwrap(), hits);
    let rows = ReadOptions {
        ids: IdSource::NoSidecar,
        ..ReadOptions::default()
    };
    assert_eq!(
        HnswSqIndex::read_faiss(&path, rows).unwrap().id(3),
        Some("3")
    );
}

/// An empty index writes a file FAISS reads, and reads back empty.
#[test]
fn empty_index_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = 8;
    let training = clustered(10, d, 2, 0.3, 51);
    let index =
        HnswSqIndex::train(d, Metric::L2, SqKind::Sq8, params(8, 40, 16), &training).unwrap();
    let path = dir.path().join("empty.faiss");
    index.write_faiss(&path).unwrap();
    let back = HnswSqIndex::read_faiss(&path, ReadOptions::default()).unwrap();
    assert_eq!(back.len(), 0);
    assert!(back.search(&training[..d], 3).unwrap()[0].is_empty());
    let (_, fi) = faiss_search(&path, &training[..d], d, 3, dir.path());
    assert!(fi.iter().all(|&i| i == -1));
}

/// Every truncation and many single-byte changes of a file (without its checksum sidecar) are
/// errors or load a valid index, never a panic; with the sidecar a changed byte is
/// `Error::Damaged`.
#[test]
fn damaged_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (40, 8);
    let data = clustered(n, d, 3, 0.3, 61);
    let index = HnswSqIndex::build(
        d,
        Metric::L2,
        SqKind::Sq8,
        params(4, 20, 16),
        &ids(n),
        &data,
    )
    .unwrap();
    let path = dir.path().join("x.faiss");
    index.write_faiss(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let e = HnswSqIndex::read_faiss(&path, ReadOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Damaged { .. }), "{e}");

    let bare = dir.path().join("bare.faiss");
    let rows = ReadOptions {
        ids: IdSource::NoSidecar,
        ..ReadOptions::default()
    };
    for len in 0..good.len() {
        std::fs::write(&bare, &good[..len]).unwrap();
        assert!(
            HnswSqIndex::read_faiss(&bare, rows).is_err(),
            "truncated at {len}"
        );
    }
    for at in 0..good.len().min(4000) {
        for bits in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= bits;
            std::fs::write(&bare, &bad).unwrap();
            if let Ok(loaded) = HnswSqIndex::read_faiss(&bare, rows) {
                // A file that still parses is a usable index.
                let hits = loaded.search_with_ef(&data[..d], 3, 16).unwrap();
                assert!(hits[0].len() <= 3);
            }
        }
    }
}
