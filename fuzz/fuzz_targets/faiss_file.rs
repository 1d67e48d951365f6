//! FAISS flat and IndexIDMap files, read into memory and memory-mapped: any bytes give an
//! index or a typed error, never a panic; a loaded index is searched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vecindex::faiss_io::{IdSource, ReadOptions};
use vecindex::{FlatIndex, VectorIndex};

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("fuzz-faiss-{}.faiss", std::process::id()));
    std::fs::write(&path, data).expect("write the input");
    for mmap in [false, true] {
        let options = ReadOptions {
            mmap,
            ids: IdSource::NoSidecar,
        };
        if let Ok(index) = FlatIndex::read_faiss(&path, options) {
            let q = vec![0.5; index.dim()];
            let hits = index
                .search(&q, 4)
                .expect("a valid query on a loaded index");
            assert_eq!(hits[0].len(), index.len().min(4));
        }
    }
});
