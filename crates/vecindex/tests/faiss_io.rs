//! Round trips through the project venv's `faiss-cpu`, and damaged FAISS files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use vecindex::faiss_io::{IdSource, ReadOptions, sidecar_path};
use vecindex::{Error, FlatIndex, Metric, VectorIndex};

fn faiss(args: &[&str]) {
    let out = Command::new(python())
        .arg(faiss_script())
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "faiss helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn faiss_search(
    index: &Path,
    queries: &[f32],
    d: usize,
    k: usize,
    dir: &Path,
) -> (Vec<f32>, Vec<i64>) {
    let q = dir.join("q.f32");
    write_f32(&q, queries);
    let prefix = dir.join("res");
    faiss(&[
        "search",
        index.to_str().unwrap(),
        q.to_str().unwrap(),
        &d.to_string(),
        &k.to_string(),
        prefix.to_str().unwrap(),
    ]);
    (
        read_f32(&dir.join("res.dist.f32")),
        read_i64(&dir.join("res.ids.i64")),
    )
}

/// Our results expressed as FAISS would report them, compared with FAISS's.
fn compare(
    ours: &FlatIndex,
    label: impl Fn(usize) -> i64,
    queries: &[f32],
    k: usize,
    fd: &[f32],
    fi: &[i64],
) {
    let d = ours.dim();
    let got = ours.search(queries, k).unwrap();
    for (qi, hits) in got.iter().enumerate() {
        for (j, h) in hits.iter().enumerate() {
            let (dist, id) = (fd[qi * k + j], fi[qi * k + j]);
            let ours_dist = ours.metric().faiss_distance(h.score);
            assert!(
                (ours_dist - dist).abs() <= 1e-4 * (1.0 + dist.abs()),
                "q{qi} rank {j}: {ours_dist} vs faiss {dist}"
            );
            if label(h.row) != id {
                // Only acceptable for a (near-)tie: FAISS's own score of our row must equal its score at this rank.
                let q = &queries[qi * d..(qi + 1) * d];
                let v = ours.vector(h.row).unwrap();
                let s = ours.metric().faiss_distance(ours.metric().score(q, &v));
                assert!(
                    (s - dist).abs() <= 1e-4 * (1.0 + dist.abs()),
                    "q{qi} rank {j}: row {} vs faiss id {id}",
                    h.row
                );
            }
        }
        // Missing results: FAISS pads with -1.
        for j in hits.len()..k {
            assert_eq!(fi[qi * k + j], -1);
        }
    }
}

#[test]
fn our_files_load_in_faiss_with_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (300, 24, 12, 10);
    let data = clustered(n, d, 5, 0.3, 11);
    let queries = clustered(nq, d, 5, 0.3, 12);
    for metric in [Metric::InnerProduct, Metric::L2] {
        let index = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap();
        let path = dir.path().join(format!("{metric}.faiss"));
        index.write_faiss(&path).unwrap();
        let side = std::fs::read_to_string(sidecar_path(&path)).unwrap();
        assert_eq!(side.lines().collect::<Vec<_>>(), ids(n));
        let (fd, fi) = faiss_search(&path, &queries, d, k, dir.path());
        compare(&index, |r| r as i64, &queries, k, &fd, &fi);
        // IndexIDMap with 64-bit ids.
        let ids64: Vec<i64> = (0..n as i64).map(|i| i * 1_000_003 - 7).collect();
        let mp = dir.path().join(format!("{metric}.idmap.faiss"));
        index.write_faiss_with_ids(&mp, &ids64).unwrap();
        let (fd, fi) = faiss_search(&mp, &queries, d, k, dir.path());
        compare(&index, |r| ids64[r], &queries, k, &fd, &fi);
        // k > n: FAISS pads, we return n hits.
        let small = FlatIndex::from_vectors(d, metric, &ids(3), &data[..3 * d]).unwrap();
        let sp = dir.path().join("small.faiss");
        small.write_faiss(&sp).unwrap();
        let (fd, fi) = faiss_search(&sp, &queries, d, 5, dir.path());
        compare(&small, |r| r as i64, &queries, 5, &fd, &fi);
    }
}

#[test]
fn faiss_files_load_here_with_faiss_results() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq, k) = (257, 16, 9, 7);
    let data = clustered(n, d, 4, 0.5, 21);
    let queries = clustered(nq, d, 4, 0.5, 22);
    let vpath = dir.path().join("v.f32");
    write_f32(&vpath, &data);
    for (name, metric) in [("ip", Metric::InnerProduct), ("l2", Metric::L2)] {
        let path = dir.path().join(format!("py_{name}.faiss"));
        faiss(&[
            "write",
            name,
            vpath.to_str().unwrap(),
            &d.to_string(),
            path.to_str().unwrap(),
        ]);
        let (fd, fi) = faiss_search(&path, &queries, d, k, dir.path());
        for mmap in [false, true] {
            let ours = FlatIndex::read_faiss(
                &path,
                ReadOptions {
                    mmap,
                    ids: IdSource::Auto,
                },
            )
            .unwrap();
            assert_eq!(
                (ours.dim(), ours.len(), ours.metric(), ours.is_mapped()),
                (d, n, metric, mmap)
            );
            assert_eq!(
                ours.id(5),
                Some("5"),
                "row numbers as ids without a sidecar"
            );
            compare(&ours, |r| r as i64, &queries, k, &fd, &fi);
        }
        // IndexIDMap written by FAISS.
        let ids64: Vec<i64> = (0..n as i64).map(|i| 10 * i + 3).collect();
        let ipath = dir.path().join("ids.i64");
        std::fs::write(
            &ipath,
            ids64
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let mp = dir.path().join(format!("py_{name}_map.faiss"));
        faiss(&[
            "write",
            name,
            vpath.to_str().unwrap(),
            &d.to_string(),
            mp.to_str().unwrap(),
            ipath.to_str().unwrap(),
        ]);
        let (fd, fi) = faiss_search(&mp, &queries, d, k, dir.path());
        let ours = FlatIndex::read_faiss(&mp, ReadOptions::default()).unwrap();
        assert_eq!(ours.id(2), Some("23"));
        compare(
            &ours,
            |r| ours.id(r).unwrap().parse().unwrap(),
            &queries,
            k,
            &fd,
            &fi,
        );
    }
}

fn expect_format_error(path: &Path) {
    for mmap in [false, true] {
        match FlatIndex::read_faiss(
            path,
            ReadOptions {
                mmap,
                ids: IdSource::NoSidecar,
            },
        ) {
            Err(Error::Format { .. }) => {}
            other => panic!("expected a format error, got {other:?}"),
        }
    }
}

#[test]
fn damaged_faiss_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (5usize, 3usize);
    let data: Vec<f32> = (0..n * d).map(|i| i as f32).collect();
    let good = dir.path().join("good.faiss");
    let index = FlatIndex::from_vectors(d, Metric::InnerProduct, &ids(n), &data).unwrap();
    index.write_faiss(&good).unwrap();
    let mp = dir.path().join("good_map.faiss");
    index.write_faiss_with_ids(&mp, &[1, 2, 3, 4, 5]).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let map_bytes = std::fs::read(&mp).unwrap();
    let bad = dir.path().join("bad.faiss");
    let patch = |src: &[u8], at: usize, val: &[u8]| {
        let mut b = src.to_vec();
        b[at..at + val.len()].copy_from_slice(val);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("fourcc", patch(&bytes, 0, b"IxHN")),
        ("IxFl", patch(&bytes, 0, b"IxFl")),
        ("fourcc/metric mismatch", patch(&bytes, 0, b"IxF2")),
        ("metric 2", patch(&bytes, 33, &2i32.to_le_bytes())),
        ("is_trained 2", patch(&bytes, 32, &[2])),
        ("d negative", patch(&bytes, 4, &(-3i32).to_le_bytes())),
        (
            "d too big",
            patch(&bytes, 4, &((1 << 20) + 1i32).to_le_bytes()),
        ),
        ("d zero", patch(&bytes, 4, &0i32.to_le_bytes())),
        ("ntotal negative", patch(&bytes, 8, &(-1i64).to_le_bytes())),
        ("ntotal huge", patch(&bytes, 8, &(i64::MAX).to_le_bytes())),
        (
            "ntotal overflow with d",
            patch(
                &patch(&bytes, 8, &(1i64 << 61).to_le_bytes()),
                4,
                &(1i32 << 20).to_le_bytes(),
            ),
        ),
        ("float count", patch(&bytes, 37, &16u64.to_le_bytes())),
        (
            "float count huge",
            patch(&bytes, 37, &u64::MAX.to_le_bytes()),
        ),
        ("truncated", bytes[..bytes.len() - 1].to_vec()),
        ("truncated header", bytes[..20].to_vec()),
        ("trailing", [bytes.clone(), vec![0]].concat()),
        ("NaN vector", patch(&bytes, 45, &f32::NAN.to_le_bytes())),
        ("map: inner fourcc", patch(&map_bytes, 37, b"IxMp")),
        (
            "map: inner ntotal",
            patch(&map_bytes, 37 + 8, &4i64.to_le_bytes()),
        ),
        (
            "map: id count",
            patch(&map_bytes, map_bytes.len() - 48, &6u64.to_le_bytes()),
        ),
        (
            "map: truncated ids",
            map_bytes[..map_bytes.len() - 8].to_vec(),
        ),
        (
            "map: duplicate ids",
            patch(&map_bytes, map_bytes.len() - 8, &4i64.to_le_bytes()),
        ),
    ];
    for (name, b) in cases {
        std::fs::write(&bad, &b).unwrap();
        eprintln!("case {name}");
        expect_format_error(&bad);
    }
    // Sidecar with the wrong number of ids.
    std::fs::write(&bad, &bytes).unwrap();
    std::fs::write(sidecar_path(&bad), "a\nb\n").unwrap();
    assert!(matches!(
        FlatIndex::read_faiss(&bad, ReadOptions::default()),
        Err(Error::Format { .. })
    ));
    assert!(
        FlatIndex::read_faiss(
            &bad,
            ReadOptions {
                mmap: false,
                ids: IdSource::NoSidecar
            }
        )
        .is_ok()
    );
}
