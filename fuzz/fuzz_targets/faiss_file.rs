//! FAISS flat and IndexIDMap files, read into memory and memory-mapped: any bytes give an
//! index or a typed error, never a panic. The checks: `fuzz/checks/vecindex.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Shared by several targets, each of which calls only its own check.
#[allow(dead_code)]
#[path = "../checks/vecindex.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("fuzz-faiss-{}.faiss", std::process::id()));
    checks::faiss_file(data, &path);
});
