//! Flat scalar-quantised indexes against the project venv's `faiss-cpu`: files written by
//! either side load in the other, byte for byte the same, with the same search results; damaged
//! files are errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compressed;

use compressed::*;
use vecindex::faiss_io::{IdSource, ReadOptions};
use vecindex::sq::{FlatSqIndex, SqKind, SqOptions};
use vecindex::{Error, Metric, VectorIndex};

const KINDS: [(SqKind, &str); 2] = [(SqKind::Sq8, "sq8"), (SqKind::Fp16, "fp16")];
const METRICS: [(Metric, &str); 2] = [(Metric::InnerProduct, "ip"), (Metric::L2, "l2")];

/// FAISS trains, encodes and writes; we read the file and answer as FAISS does on it. We then
/// build from the same vectors and write a file byte-identical to FAISS's (same ranges, same
/// codes), which FAISS searches with the same results as ours.
#[test]
fn sq_files_match_faiss_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (1000, 40, 25, 10);
    let data = clustered(n, d, 8, 0.3, 3);
    // Values outside the training range clamp.
    let queries: Vec<f32> = clustered(nq, d, 8, 0.3, 4)
        .iter()
        .map(|x| x * 1.3)
        .collect();
    let vpath = vectors_file(dir.path(), "v.f32", &data);
    for (kind, kname) in KINDS {
        for (metric, mname) in METRICS {
            let theirs = dir.path().join(format!("py_{kname}_{mname}.faiss"));
            faiss(&[
                "write-sq",
                kname,
                mname,
                &vpath,
                &d.to_string(),
                theirs.to_str().unwrap(),
            ]);
            let loaded = FlatSqIndex::read_faiss(&theirs, ReadOptions::default()).unwrap();
            assert_eq!(
                (loaded.dim(), loaded.len(), loaded.metric()),
                (d, n, metric)
            );
            assert_eq!(loaded.codes().quantizer().kind(), kind);
            let dist = faiss_dist(&loaded, &queries);
            let (got, _) =
                agrees_with_faiss(&loaded, &theirs, &queries, k, dir.path(), 1e-5, &dist);
            // One query at a time: the same.
            let one = loaded.search(&queries[..d], k).unwrap();
            assert_eq!(one[0], got[0]);

            let ours = FlatSqIndex::build(d, metric, SqOptions { kind }, &ids(n), &data).unwrap();
            let path = dir.path().join(format!("ours_{kname}_{mname}.faiss"));
            ours.write_faiss(&path).unwrap();
            assert!(
                std::fs::read(&path).unwrap() == std::fs::read(&theirs).unwrap(),
                "{kname} {mname}: our file differs from FAISS's"
            );
            let dist = faiss_dist(&ours, &queries);
            let (got, _) = agrees_with_faiss(&ours, &path, &queries, k, dir.path(), 1e-5, &dist);
            // The sidecar carries our ids back.
            let back = FlatSqIndex::read_faiss(&path, ReadOptions::default()).unwrap();
            assert_eq!(back.id(7), Some("R000007"));
            assert_eq!(back.search(&queries, k).unwrap(), got);
        }
    }
}

/// k above the number of vectors: FAISS pads with -1, we return every vector.
#[test]
fn sq_search_with_k_above_len_returns_all() {
    let dir = tempfile::tempdir().unwrap();
    let d = 8;
    let data = clustered(3, d, 2, 0.3, 5);
    let queries = clustered(6, d, 2, 0.3, 6);
    for (kind, _) in KINDS {
        let index = FlatSqIndex::build(d, Metric::L2, SqOptions { kind }, &ids(3), &data).unwrap();
        let path = dir.path().join("small.faiss");
        index.write_faiss(&path).unwrap();
        let (fd, fi) = faiss_search(&path, &queries, d, 5, dir.path());
        let got = index.search(&queries, 5).unwrap();
        assert!(got.iter().all(|h| h.len() == 3));
        compare_hits(
            &index,
            &got,
            |r| r as i64,
            5,
            (&fd, &fi),
            1e-5,
            faiss_dist(&index, &queries),
        );
    }
}

fn expect_format_error(bytes: &[u8], dir: &std::path::Path) {
    let path = dir.join("bad.faiss");
    std::fs::write(&path, bytes).unwrap();
    let options = ReadOptions {
        mmap: false,
        ids: IdSource::NoSidecar,
    };
    match FlatSqIndex::read_faiss(&path, options) {
        Err(Error::Format { .. }) => {}
        other => panic!("expected a format error, got {other:?}"),
    }
}

/// Every truncation, a wrong fourcc, a qtype we do not read, a code size or code count that
/// disagrees with the header, and trailing bytes are format errors.
#[test]
fn damaged_sq_files_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = 4;
    let data = clustered(5, d, 2, 0.3, 7);
    let index = FlatSqIndex::build(
        d,
        Metric::InnerProduct,
        SqOptions::default(),
        &ids(5),
        &data,
    )
    .unwrap();
    let path = dir.path().join("ok.faiss");
    index.write_faiss(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    for n in 0..good.len() {
        expect_format_error(&good[..n], dir.path());
    }
    let patch = |at: usize, v: &[u8]| {
        let mut b = good.clone();
        b[at..at + v.len()].copy_from_slice(v);
        b
    };
    // Offsets: fourcc 0, header 4..37, qtype 37, rangestat 41, arg 45, d 49, code_size 57,
    // trained count 65, values 73.
    expect_format_error(&patch(0, b"IxSq"), dir.path());
    expect_format_error(&patch(37, &1i32.to_le_bytes()), dir.path());
    expect_format_error(&patch(49, &5u64.to_le_bytes()), dir.path());
    expect_format_error(&patch(57, &8u64.to_le_bytes()), dir.path());
    expect_format_error(&patch(65, &u64::MAX.to_le_bytes()), dir.path());
    let codes_at = 73 + 8 * d;
    expect_format_error(&patch(codes_at, &16u64.to_le_bytes()), dir.path());
    let mut longer = good.clone();
    longer.push(0);
    expect_format_error(&longer, dir.path());
    // A NaN in the trained ranges.
    expect_format_error(&patch(73, &f32::NAN.to_le_bytes()), dir.path());
}
