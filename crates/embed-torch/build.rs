//! Keeps `libtorch_cuda.so` linked into every binary that uses this crate.
//!
//! `torch-sys` asks for `-ltorch_cuda`, but no symbol of it is referenced directly, so a linker
//! running with `--as-needed` (the default on Debian and Ubuntu) drops it and CUDA is never
//! initialised, even on a GPU machine. The `as-needed` link modifier that would fix this is
//! nightly-only (rust-lang/rust#99424), so instead, when the libtorch in use has
//! `libtorch_cuda.so`, this script sets `cfg(embed_torch_cuda)` and the crate takes the address
//! of one of its C functions on every model load and device parse (`src/cuda_link.rs`): a real
//! reference, which makes the linker record the library as needed.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(embed_torch_cuda)");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        return;
    };
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-cfg=embed_torch_cuda");
    }
}
