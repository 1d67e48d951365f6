//! IVF-PQ against the project venv's `faiss-cpu`: a file FAISS trains and writes is searched
//! here with FAISS's results (same ids, same distances to float tolerance), a file we train and
//! write is searched by FAISS with ours; damaged files are errors; recall against exact search.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compressed;

use compressed::*;
use vecindex::faiss_io::{IdSource, ReadOptions};
use vecindex::ivf::{IvfPqIndex, IvfPqOptions};
use vecindex::{Error, FlatIndex, Metric, VectorIndex};

const METRICS: [(Metric, &str); 2] = [(Metric::InnerProduct, "ip"), (Metric::L2, "l2")];

fn faiss_dist<'a>(index: &'a IvfPqIndex, queries: &'a [f32]) -> impl Fn(usize, usize) -> f32 + 'a {
    move |qi, row| {
        let d = index.dim();
        let v = index.reconstruct(row).unwrap();
        index
            .metric()
            .faiss_distance(index.metric().score(&queries[qi * d..(qi + 1) * d], &v))
    }
}

fn options() -> IvfPqOptions {
    IvfPqOptions {
        nlist: 16,
        m: 8,
        nprobe: 5,
        ..Default::default()
    }
}

#[test]
fn ivfpq_files_match_faiss_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (3000, 32, 40, 10);
    let data = clustered(n, d, 20, 0.4, 31);
    let queries = clustered(nq, d, 20, 0.4, 32);
    let vpath = vectors_file(dir.path(), "v.f32", &data);
    for (metric, mname) in METRICS {
        let theirs = dir.path().join(format!("py_{mname}.ivfpq"));
        faiss(&[
            "write-ivfpq",
            mname,
            &vpath,
            &d.to_string(),
            "16",
            "8",
            "5",
            theirs.to_str().unwrap(),
        ]);
        let loaded = IvfPqIndex::read_faiss(&theirs, ReadOptions::default()).unwrap();
        assert_eq!(
            (loaded.dim(), loaded.len(), loaded.metric()),
            (d, n, metric)
        );
        assert_eq!((loaded.nlist(), loaded.m(), loaded.nprobe()), (16, 8, 5));
        let dist = faiss_dist(&loaded, &queries);
        let (_, swaps) = agrees_with_faiss(&loaded, &theirs, &queries, k, dir.path(), 1e-4, dist);
        assert!(swaps <= nq * k / 20, "{mname}: {swaps} tie swaps");

        let ours = IvfPqIndex::build(d, metric, options(), &ids(n), &data).unwrap();
        let path = dir.path().join(format!("ours_{mname}.ivfpq"));
        ours.write_faiss(&path).unwrap();
        let dist = faiss_dist(&ours, &queries);
        let (got, swaps) = agrees_with_faiss(&ours, &path, &queries, k, dir.path(), 1e-4, dist);
        assert!(swaps <= nq * k / 20, "{mname}: {swaps} tie swaps");
        let back = IvfPqIndex::read_faiss(&path, ReadOptions::default()).unwrap();
        assert_eq!(back.id(3), Some("R000003"));
        assert_eq!(back.search(&queries, k).unwrap(), got);
    }
}

/// Recall@10 against exact search grows with nprobe, and with every list visited it is within
/// 0.05 of the recall of an index FAISS trained on the same data (our training is as good).
#[test]
fn ivfpq_recall_against_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (4000, 32, 50, 10);
    let data = clustered(n, d, 30, 0.5, 41);
    let queries = clustered(nq, d, 30, 0.5, 42);
    let vpath = vectors_file(dir.path(), "v.f32", &data);
    for (metric, mname) in METRICS {
        let exact = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap();
        let truth = exact.search(&queries, k).unwrap();
        let index = IvfPqIndex::build(d, metric, options(), &ids(n), &data).unwrap();
        let theirs = dir.path().join("py.ivfpq");
        faiss(&[
            "write-ivfpq",
            mname,
            &vpath,
            &d.to_string(),
            "16",
            "8",
            "5",
            theirs.to_str().unwrap(),
        ]);
        let faiss_trained = IvfPqIndex::read_faiss(&theirs, ReadOptions::default()).unwrap();
        let recall_of = |index: &IvfPqIndex, nprobe| {
            let got = index.search_with_nprobe(&queries, k, nprobe).unwrap();
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
        let (r1, r16) = (recall_of(&index, 1), recall_of(&index, 16));
        let faiss16 = recall_of(&faiss_trained, 16);
        assert!(
            r16 > r1 && r16 >= faiss16 - 0.05,
            "{metric}: recall {r1} at nprobe 1, {r16} at 16; FAISS-trained {faiss16}"
        );
    }
}

fn expect_format_error(bytes: &[u8], dir: &std::path::Path) {
    let path = dir.join("bad.ivfpq");
    std::fs::write(&path, bytes).unwrap();
    let options = ReadOptions {
        mmap: false,
        ids: IdSource::NoSidecar,
    };
    match IvfPqIndex::read_faiss(&path, options) {
        Err(Error::Format { .. }) => {}
        other => panic!("expected a format error, got {other:?}"),
    }
}

/// Every truncation, a wrong fourcc, and trailing bytes are format errors.
#[test]
fn damaged_ivfpq_files_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (300, 8);
    let data = clustered(n, d, 4, 0.4, 51);
    let index = IvfPqIndex::build(
        d,
        Metric::L2,
        IvfPqOptions {
            nlist: 4,
            m: 2,
            nprobe: 2,
            ..Default::default()
        },
        &ids(n),
        &data,
    )
    .unwrap();
    let path = dir.path().join("ok.ivfpq");
    index.write_faiss(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    for cut in (0..good.len()).step_by(7) {
        expect_format_error(&good[..cut], dir.path());
    }
    let mut b = good.clone();
    b[..4].copy_from_slice(b"IwSq");
    expect_format_error(&b, dir.path());
    let mut b = good.clone();
    b.push(1);
    expect_format_error(&b, dir.path());
}

/// The fuzz seeds FAISS wrote load: two lists full (`full` sizes), and four lists of which two
/// hold vectors (FAISS then writes the sizes sparse, `sprs`).
#[test]
fn faiss_written_full_and_sparse_lists_load() {
    let seeds =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/faiss_file");
    let options = ReadOptions {
        mmap: false,
        ids: IdSource::NoSidecar,
    };
    let full = IvfPqIndex::read_faiss(&seeds.join("ivfpq_l2.faiss"), options).unwrap();
    assert_eq!(
        (full.len(), full.nlist(), full.metric()),
        (6, 2, Metric::L2)
    );
    let mut sparse = IvfPqIndex::read_faiss(&seeds.join("ivfpq_ip_sparse.faiss"), options).unwrap();
    assert_eq!(
        (sparse.len(), sparse.nlist(), sparse.metric()),
        (2, 4, Metric::InnerProduct)
    );
    sparse.set_nprobe(4);
    assert_eq!(sparse.search(&[0.5, 0.5], 5).unwrap()[0].len(), 2);
    // Written back, the sparse layout again, and the same bytes as FAISS's.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.faiss");
    let mut back = sparse.clone();
    back.set_nprobe(1);
    back.write_faiss(&path).unwrap();
    assert!(
        std::fs::read(&path).unwrap()
            == std::fs::read(seeds.join("ivfpq_ip_sparse.faiss")).unwrap()
    );
}
