//! Re-ranking compressed results with the f32 vectors of a `.npy` written by NumPy, and the
//! `.npy` reader's checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compressed;

use std::path::Path;
use std::process::Command;

use compressed::*;
use vecindex::ivf::{IvfPqIndex, IvfPqOptions};
use vecindex::npy::NpyF32;
use vecindex::rerank::{RerankOptions, Reranked};
use vecindex::sq::{FlatSqIndex, SqOptions};
use vecindex::{Error, FlatIndex, Metric, VectorIndex};

/// Saves `v` (`n × d`) with `numpy.save`, optionally as another dtype or order.
fn np_save(dir: &Path, name: &str, v: &[f32], d: usize, convert: &str) -> std::path::PathBuf {
    let raw = vectors_file(dir, &format!("{name}.f32"), v);
    let out = dir.join(name);
    let code = format!(
        "import numpy as np; a = np.fromfile('{raw}', dtype='<f4').reshape(-1, {d}); np.save('{}', a{convert})",
        out.display()
    );
    let st = Command::new(python()).args(["-c", &code]).status().unwrap();
    assert!(st.success());
    out
}

/// With every vector as a candidate, re-ranked scores are exact: the same rows and scores
/// as the f32 flat index (both metrics).
#[test]
fn reranking_all_candidates_equals_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (500, 24, 20, 10);
    let data = clustered(n, d, 10, 0.3, 61);
    let queries = clustered(nq, d, 10, 0.3, 62);
    let npy = np_save(dir.path(), "v.npy", &data, d, "");
    for metric in [Metric::InnerProduct, Metric::L2] {
        let exact = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap();
        let sq = FlatSqIndex::build(d, metric, SqOptions::default(), &ids(n), &data).unwrap();
        let vectors = NpyF32::open(&npy).unwrap();
        assert_eq!((vectors.rows(), vectors.cols()), (n, d));
        let reranked = Reranked::new(sq, vectors, RerankOptions { factor: n }).unwrap();
        let want = exact.search(&queries, k).unwrap();
        let got = reranked.search(&queries, k).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.len(), k);
            for (a, b) in g.iter().zip(w) {
                assert!((a.score - b.score).abs() < 1e-5, "{metric}: {a:?} vs {b:?}");
            }
        }
    }
}

/// Re-ranking an IVF-PQ index's candidates raises its recall@10.
#[test]
fn reranking_raises_ivfpq_recall() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (3000, 32, 50, 10);
    let data = clustered(n, d, 20, 0.5, 71);
    let queries = clustered(nq, d, 20, 0.5, 72);
    let npy = np_save(dir.path(), "v.npy", &data, d, "");
    let metric = Metric::InnerProduct;
    let truth = FlatIndex::from_vectors(d, metric, &ids(n), &data)
        .unwrap()
        .search(&queries, k)
        .unwrap();
    let options = IvfPqOptions {
        nlist: 16,
        m: 8,
        nprobe: 8,
        ..Default::default()
    };
    let ivf = IvfPqIndex::build(d, metric, options, &ids(n), &data).unwrap();
    let recall = |got: &[Vec<vecindex::Hit>]| {
        let hit: usize = got
            .iter()
            .zip(&truth)
            .map(|(g, t)| {
                g.iter()
                    .filter(|h| t.iter().any(|x| x.row == h.row))
                    .count()
            })
            .sum();
        hit as f64 / (nq * k) as f64
    };
    let plain = recall(&ivf.search(&queries, k).unwrap());
    let reranked = Reranked::new(
        ivf,
        NpyF32::open(&npy).unwrap(),
        RerankOptions { factor: 10 },
    )
    .unwrap();
    let better = recall(&reranked.search(&queries, k).unwrap());
    assert!(better > plain + 0.1, "recall {plain} -> {better}");
    // A file of another dimension is refused.
    let other = np_save(dir.path(), "w.npy", &data[..10 * d], 16, "");
    let err = Reranked::new(
        reranked.inner().clone(),
        NpyF32::open(&other).unwrap(),
        RerankOptions::default(),
    );
    assert!(matches!(err, Err(Error::DimensionMismatch { .. })));
}

/// Other dtypes, Fortran order, other ranks and wrong sizes are format errors.
#[test]
fn npy_reader_refuses_what_it_cannot_map() {
    let dir = tempfile::tempdir().unwrap();
    let v: Vec<f32> = (0..12).map(|i| i as f32).collect();
    for (name, convert) in [
        ("f8.npy", ".astype('<f8')"),
        ("be.npy", ".astype('>f4')"),
        // F-contiguous: NumPy writes `'fortran_order': True`.
        ("fortran.npy", ".T.copy().T"),
        ("flat.npy", ".ravel()"),
    ] {
        let p = np_save(dir.path(), name, &v, 3, convert);
        assert!(
            matches!(NpyF32::open(&p), Err(Error::Format { .. })),
            "{name}"
        );
    }
    let good = np_save(dir.path(), "ok.npy", &v, 3, "");
    let bytes = std::fs::read(&good).unwrap();
    let mut row = [0.0; 3];
    NpyF32::open(&good).unwrap().row_into(2, &mut row);
    assert_eq!(row, [6.0, 7.0, 8.0]);
    for cut in [0, 5, 9, 40, bytes.len() - 1] {
        let p = dir.path().join("cut.npy");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert!(
            matches!(NpyF32::open(&p), Err(Error::Format { .. })),
            "cut at {cut}"
        );
    }
}
