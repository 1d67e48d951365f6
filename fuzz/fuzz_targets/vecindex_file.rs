//! Our index files: any bytes give an index or a typed error, never a panic. The first byte
//! picks flat or HNSW and whether to repair the checksum, so the fuzzer gets past the CRC and
//! reaches the parser (and, for HNSW, the reader of the embedded `hnsw_rs` dump). A loaded index
//! is searched; a loaded HNSW index is also saved again, and that file must load to the same
//! answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vecindex::{FlatIndex, HnswIndex, VectorIndex};

static QUIET_CAUGHT_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // vecindex turns panics inside hnsw_rs (on dumps its framing checks let through) into
    // errors with catch_unwind; libFuzzer's panic hook would abort before they are caught. A
    // panic that escapes still aborts: libfuzzer-sys catches it around this body.
    QUIET_CAUGHT_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    let repair = mode & 1 == 1;
    if repair && bytes.len() >= 4 {
        let n = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
    }
    let path = std::env::temp_dir().join(format!("fuzz-vecindex-{}.vix", std::process::id()));
    std::fs::write(&path, &bytes).expect("write the input");
    if mode & 2 == 0 {
        if let Ok(index) = FlatIndex::load(&path) {
            search(&index);
        }
    } else if let Ok(index) = HnswIndex::load(&path) {
        search(&index);
        let q = vec![0.25; index.dim()];
        let first = index.search_with_ef(&q, 3, 1).expect("valid query");
        // Written back from the flat copy (our own dump writer): must load to the same answers.
        index.save(&path).expect("re-save a loaded index");
        let again = HnswIndex::load(&path).expect("load a re-saved index");
        assert_eq!(again.search_with_ef(&q, 3, 1).expect("valid query"), first);
        assert_eq!(again.search(&q, 5).expect("valid query"), index.search(&q, 5).expect("valid query"));
    }
});

fn search(index: &impl VectorIndex) {
    let q = vec![0.25; index.dim()];
    let hits = index
        .search(&q, 5)
        .expect("a valid query on a loaded index");
    assert_eq!(hits[0].len(), index.len().min(5));
    for h in &hits[0] {
        assert!(index.id(h.row).is_some());
    }
}
