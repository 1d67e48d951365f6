//! Our index files: any bytes give an index or a typed error, never a panic; a loaded HNSW
//! index re-saves to a file with the same answers. The checks: `fuzz/checks/vecindex.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/vecindex.rs"]
mod checks;

static QUIET_CAUGHT_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // vecindex turns panics inside hnsw_rs (on dumps its framing checks let through) into
    // errors with catch_unwind; libFuzzer's panic hook would abort before they are caught. A
    // panic that escapes still aborts: libfuzzer-sys catches it around this body.
    QUIET_CAUGHT_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let path = std::env::temp_dir().join(format!("fuzz-vecindex-{}.vix", std::process::id()));
    checks::vecindex_file(data, &path);
});
