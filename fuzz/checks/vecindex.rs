//! The checks of the `vecindex_file` and `faiss_file` fuzz targets, shared with the seed replay
//! that plain `cargo test` runs (`crates/vecindex/tests/reliability_fuzz_seeds.rs`): both
//! include this file as a module, so the two cannot drift apart.

use std::path::Path;

use vecindex::faiss_io::{IdSource, ReadOptions};
use vecindex::ivf::IvfPqIndex;
use vecindex::sq::FlatSqIndex;
use vecindex::{FlatIndex, HnswIndex, HnswSqIndex, VectorIndex};

/// Our index files: any bytes give an index or a typed error, never a panic. The first byte
/// picks flat (bit 1 clear) or HNSW (set) and whether to repair the checksum (bit 0), so that
/// inputs get past the CRC to the parser (and, for HNSW, the reader of the embedded `hnsw_rs`
/// dump); the rest is written to `path`. A loaded index is searched; a loaded HNSW index is
/// also saved again (beside `path`), and that file must load to the same answers (its graph
/// distance, metric and dump written back as they were read), and it takes a new point.
pub fn vecindex_file(data: &[u8], path: &Path) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    if mode & 1 == 1 && bytes.len() >= 4 {
        let n = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(path, &bytes).expect("write the input");
    if mode & 2 == 0 {
        if let Ok(index) = FlatIndex::load(path) {
            search(&index, 5);
        }
    } else if let Ok(index) = HnswIndex::load(path) {
        search(&index, 5);
        let q = vec![0.25; index.dim()];
        let first = index.search_with_ef(&q, 3, 1).expect("valid query");
        // Written back from the loaded graph (our own dump writer): the same answers.
        let resaved = path.with_extension("resaved.vix");
        index.save(&resaved).expect("re-save a loaded index");
        let again = HnswIndex::load(&resaved).expect("load a re-saved index");
        assert_eq!(again.search_with_ef(&q, 3, 1).expect("valid query"), first);
        assert_eq!(
            again.search(&q, 5).expect("valid query"),
            index.search(&q, 5).expect("valid query")
        );
        // The loaded graph takes a new point (or refuses it with a typed error: its id may
        // be taken) and is searched again.
        let mut grown = again;
        if grown.add(&["\u{1}added"], &q).is_ok() {
            search(&grown, 5);
        }
    }
}

/// FAISS flat and IndexIDMap files at `path` (holding `data`), read into memory and
/// memory-mapped, and the compressed ones (`IndexScalarQuantizer` `IxSQ`, `IndexIVFPQ`
/// `IwPQ`, `IndexHNSWSQ` `IHNs`): any bytes give an index or a typed error, never a panic; a
/// loaded index is searched (an IVF-PQ index with every list visited too); a loaded HNSW
/// index is written back (beside `path`) and read again to the same answers, and takes a new
/// point.
pub fn faiss_file(data: &[u8], path: &Path) {
    std::fs::write(path, data).expect("write the input");
    for mmap in [false, true] {
        let options = ReadOptions {
            mmap,
            ids: IdSource::NoSidecar,
        };
        if let Ok(index) = FlatIndex::read_faiss(path, options) {
            search(&index, 4);
        }
    }
    let options = ReadOptions {
        mmap: false,
        ids: IdSource::NoSidecar,
    };
    if let Ok(index) = FlatSqIndex::read_faiss(path, options) {
        search(&index, 4);
        search_batch(&index, 4);
    }
    if let Ok(mut index) = IvfPqIndex::read_faiss(path, options) {
        // Every list visited: every vector is a candidate.
        index.set_nprobe(index.nlist());
        search(&index, 4);
        search_batch(&index, 4);
    }
    if let Ok(index) = HnswSqIndex::read_faiss(path, options) {
        search_graph(&index, 4);
        let q = vec![0.25; index.dim()];
        let first = index.search_with_ef(&q, 3, 8).expect("valid query");
        let rewritten = path.with_extension("rewritten.faiss");
        index
            .write_faiss(&rewritten)
            .expect("write a loaded index back");
        let again = HnswSqIndex::read_faiss(&rewritten, options).expect("read a rewritten index");
        assert_eq!(again.search_with_ef(&q, 3, 8).expect("valid query"), first);
        let mut grown = again;
        if grown.add(&["\u{1}added"], &q).is_ok() {
            search_graph(&grown, 4);
        }
    }
}

/// A valid query on a loaded graph answers at most `min(k, len)` hits (a damaged graph may
/// not reach every point), best first, whose rows have ids.
fn search_graph(index: &impl VectorIndex, k: usize) {
    let q = vec![0.25; index.dim()];
    let hits = index
        .search(&q, k)
        .expect("a valid query on a loaded index");
    assert!(hits[0].len() <= index.len().min(k));
    assert!(hits[0].windows(2).all(|w| w[0].score >= w[1].score));
    for h in &hits[0] {
        assert!(index.id(h.row).is_some());
    }
}

/// A batch of two queries on a loaded index answers two lists of hits whose rows have ids.
fn search_batch(index: &impl VectorIndex, k: usize) {
    let mut q = vec![0.25; 2 * index.dim()];
    q[0] = -1.0;
    let hits = index
        .search(&q, k)
        .expect("a valid query batch on a loaded index");
    assert_eq!(hits.len(), 2);
    for h in hits.iter().flatten() {
        assert!(index.id(h.row).is_some());
    }
}

/// A valid query on a loaded index answers `min(k, len)` hits whose rows have ids.
fn search(index: &impl VectorIndex, k: usize) {
    let q = vec![0.25; index.dim()];
    let hits = index
        .search(&q, k)
        .expect("a valid query on a loaded index");
    assert_eq!(hits[0].len(), index.len().min(k));
    for h in &hits[0] {
        assert!(index.id(h.row).is_some());
    }
}
