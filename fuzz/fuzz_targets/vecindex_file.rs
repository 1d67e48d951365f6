//! Our index files: any bytes give an index or a typed error, never a panic; a loaded HNSW
//! index re-saves to a file with the same answers. The checks: `fuzz/checks/vecindex.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Shared by several targets, each of which calls only its own check.
#[allow(dead_code)]
#[path = "../checks/vecindex.rs"]
mod checks;

// vecindex reads the embedded HNSW dump with its own parser (no `hnsw_rs`, no caught panics):
// any panic is a finding, and libFuzzer's panic hook reports it.
fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("fuzz-vecindex-{}.vix", std::process::id()));
    checks::vecindex_file(data, &path);
});
