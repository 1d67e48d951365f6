//! Collections whose index is compressed (8-bit or half-float codes, HNSW over 8-bit codes,
//! IVF-PQ): written as FAISS files, recorded in collection.json, searched, appended to with the
//! quantisers they were trained with, and merged from shards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use embed_collection::{Collection, Dtype, IndexSpec, merge_shards};
use vecindex::IndexType;

const DIM: usize = 16;

fn specs() -> [IndexSpec; 4] {
    let hnsw = vecindex::HnswParams::default();
    [
        IndexSpec::Sq8,
        IndexSpec::F16,
        IndexSpec::HnswSq8 {
            m: hnsw.m,
            ef_construction: hnsw.ef_construction,
            ef_search: hnsw.ef_search,
            seed: hnsw.seed,
        },
        // Every list probed: the search is exhaustive over the codes.
        IndexSpec::IvfPq {
            nlist: 4,
            m: 4,
            nprobe: 4,
            niter: 10,
            seed: 1,
        },
    ]
}

/// Each kind is recorded, opens as that kind from a FAISS file (no sidecars in the folder),
/// finds stored rows first, and keeps its kind and quantiser through an append.
#[test]
fn every_compressed_kind_is_recorded_searched_and_appended_to() {
    for spec in specs() {
        let dir = tempfile::tempdir().unwrap();
        let i = info(DIM, spec, Dtype::F32);
        let m = build(dir.path(), i.clone(), 300, 3, 128);
        assert_eq!(m.index, spec);
        let json = std::fs::read_to_string(dir.path().join("collection.json")).unwrap();
        assert!(
            json.contains(&format!("\"kind\": \"{}\"", spec.kind())),
            "{spec:?}: {json}"
        );
        for side in ["image.index.ids", "image.index.meta.json"] {
            assert!(!dir.path().join(side).exists(), "{spec:?}: {side} left");
        }
        let head = std::fs::read(dir.path().join("image.index")).unwrap();
        let fourcc = match spec.kind() {
            IndexType::Sq8 | IndexType::F16 => b"IxSQ",
            IndexType::HnswSq8 => b"IHNs",
            IndexType::IvfPq => b"IwPQ",
            k => panic!("{k}"),
        };
        assert_eq!(&head[..4], fourcc, "{spec:?}");

        let c = Collection::open(dir.path()).unwrap();
        assert_eq!(c.index().kind(), spec.kind());
        let stored = normalised(&vectors(300, DIM, 3), DIM);
        for row in [0, 150, 299] {
            let hits = c.search(&stored[row * DIM..(row + 1) * DIM], 3).unwrap();
            assert_eq!(hits[0].row, row, "{spec:?}");
        }

        let new_rows = rows(300, 40);
        let mut w = c.append(i.clone()).unwrap();
        w.set_options(opts(128)).unwrap();
        let v = vectors(40, DIM, 4);
        w.push_batch(&new_rows, &v).unwrap();
        let m = w.finish().unwrap();
        assert_eq!((m.rows, m.index), (340, spec));
        let c = Collection::open(dir.path()).unwrap();
        assert_eq!((c.len(), c.index().kind()), (340, spec.kind()));
        let added = normalised(&v, DIM);
        for j in [0, 39] {
            let hits = c.search(&added[j * DIM..(j + 1) * DIM], 3).unwrap();
            assert_eq!(hits[0].row, 300 + j, "{spec:?}");
        }
        // The old rows' codes did not change: the quantiser was kept, not retrained.
        let tail = std::fs::read(dir.path().join("image.index")).unwrap();
        if spec.kind() == IndexType::Sq8 {
            // IxSQ: the header and the trained ranges come first; the codes of the first
            // 300 rows follow them unchanged.
            let codes_end = tail.len() - 40 * DIM;
            let old_codes_end = head.len();
            assert_eq!(
                &tail[codes_end - 300 * DIM..codes_end],
                &head[old_codes_end - 300 * DIM..old_codes_end],
                "the first rows' codes are the same bytes after the append"
            );
        }
    }
}

/// A collection merged from shards equals one built in one go, for the compressed kinds
/// (trained on all rows in both cases, built on one thread). Each shard holds at least the 256
/// rows IVF-PQ trains on.
#[test]
fn merged_compressed_shards_equal_an_unsharded_build() {
    for spec in &specs() {
        let root = tempfile::tempdir().unwrap();
        let n = 601;
        let whole = root.path().join("whole");
        build(&whole, info(DIM, *spec, Dtype::F32), n, 9, 1000);
        let all = rows(0, n);
        let v = vectors(n, DIM, 9);
        let mut shards = Vec::new();
        for (k, range) in [(0, 0..300), (1, 300..n)] {
            let dir = root.path().join(format!("shard_{k}"));
            let mut i = info(DIM, *spec, Dtype::F32);
            i.source = Some(embed_collection::Source {
                list_digest: "sha256:list".into(),
                list_len: n as u64,
                shard: Some(embed_collection::ShardSpec { index: k, count: 2 }),
            });
            let mut w = embed_collection::CollectionWriter::create(&dir, i).unwrap();
            w.set_options(opts(1000)).unwrap();
            w.push_batch(&all[range.clone()], &v[range.start * DIM..range.end * DIM])
                .unwrap();
            w.finish().unwrap();
            shards.push(dir);
        }
        let merged = root.path().join("merged");
        merge_shards(&shards, &merged, opts(1000)).unwrap();
        let (a, b) = (
            Collection::open(&merged).unwrap(),
            Collection::open(&whole).unwrap(),
        );
        assert_eq!(a.manifest().index, *spec);
        let queries = vectors(10, DIM, 77);
        let ha = a.search_batch(&queries, 5).unwrap();
        let hb = b.search_batch(&queries, 5).unwrap();
        for (x, y) in ha.iter().zip(&hb) {
            let rx: Vec<(usize, f32)> = x.iter().map(|h| (h.row, h.score)).collect();
            let ry: Vec<(usize, f32)> = y.iter().map(|h| (h.row, h.score)).collect();
            assert_eq!(rx, ry, "{spec:?}");
        }
    }
}

/// Finishing a collection with an HNSW index reports the insertion, up to every row.
#[test]
fn finishing_an_hnsw_collection_reports_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        embed_collection::CollectionWriter::create(dir.path(), info(DIM, specs()[2], Dtype::F32))
            .unwrap();
    w.push_batch(&rows(0, 50), &vectors(50, DIM, 1)).unwrap();
    let last = std::sync::Mutex::new((0, 0));
    w.finish_with_progress(&|done, total| *last.lock().unwrap() = (done, total))
        .unwrap();
    assert_eq!(*last.lock().unwrap(), (50, 50));
}

/// With exact re-ranking every compressed kind returns the rows and scores of an exact (flat)
/// collection of the same vectors, in both shard dtypes (the rows are read across three
/// shards); factor 1 turns it off again.
#[test]
fn reranked_searches_equal_exact_search() {
    let (n, k) = (300, 5);
    let queries = vectors(20, DIM, 9);
    for dtype in [Dtype::F32, Dtype::F16] {
        let flat_dir = tempfile::tempdir().unwrap();
        build(
            flat_dir.path(),
            info(DIM, IndexSpec::Flat, dtype),
            n,
            3,
            128,
        );
        let exact = Collection::open(flat_dir.path())
            .unwrap()
            .search_batch(&queries, k)
            .unwrap()
            .iter()
            .map(|hits| hits.iter().map(|h| (h.row, h.score)).collect::<Vec<_>>())
            .collect::<Vec<_>>();
        for spec in specs() {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), info(DIM, spec, dtype), n, 3, 128);
            let mut c = Collection::open(dir.path()).unwrap();
            let plain = c.search_batch(&queries, k).unwrap();
            let plain: Vec<Vec<(usize, f32)>> = plain
                .iter()
                .map(|hits| hits.iter().map(|h| (h.row, h.score)).collect())
                .collect();
            c.set_rerank(30).unwrap();
            assert_eq!(c.rerank_factor(), 30);
            let reranked = c.search_batch(&queries, k).unwrap();
            for (q, (got, want)) in reranked.iter().zip(&exact).enumerate() {
                let rows: Vec<usize> = got.iter().map(|h| h.row).collect();
                let want_rows: Vec<usize> = want.iter().map(|h| h.0).collect();
                assert_eq!(rows, want_rows, "{spec:?} {dtype}: query {q}");
                for (h, w) in got.iter().zip(want) {
                    assert!(
                        (h.score - w.1).abs() < 1e-5,
                        "{spec:?} {dtype}: {} vs {}",
                        h.score,
                        w.1
                    );
                }
            }
            c.set_rerank(1).unwrap();
            assert_eq!(c.rerank_factor(), 1);
            let again: Vec<Vec<(usize, f32)>> = c
                .search_batch(&queries, k)
                .unwrap()
                .iter()
                .map(|hits| hits.iter().map(|h| (h.row, h.score)).collect())
                .collect();
            assert_eq!(again, plain, "{spec:?} {dtype}: factor 1");
        }
    }
}
