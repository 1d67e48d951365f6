//! A reference to `libtorch_cuda.so` so `--as-needed` linkers keep it (see `build.rs`).

#[cfg(embed_torch_cuda)]
unsafe extern "C" {
    // Never called: only its address is taken. Any exported C symbol of libtorch_cuda works.
    fn aoti_torch_create_cuda_guard();
}

/// Makes the binary depend on `libtorch_cuda.so` when libtorch has one (a no-op otherwise).
#[inline(never)]
pub(crate) fn keep_cuda_linked() {
    #[cfg(embed_torch_cuda)]
    std::hint::black_box(aoti_torch_create_cuda_guard as unsafe extern "C" fn());
}
