//! Keeps `libtorch_cuda.so` linked into every binary that uses this crate.
//!
//! `torch-sys` asks for `-ltorch_cuda`, but no symbol of it is referenced directly, so a linker
//! running with `--as-needed` (the default on Debian and Ubuntu) drops it and CUDA is never
//! initialised, even on a GPU machine. A link modifier that propagates to dependents fixes that.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        return;
    };
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    for lib in ["torch_cuda", "torch_hip"] {
        if lib_dir.join(format!("lib{lib}.so")).exists() {
            println!("cargo:rustc-link-lib=dylib:-as-needed={lib}");
        }
    }
}
