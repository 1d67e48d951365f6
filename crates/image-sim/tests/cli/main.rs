//! The `image-sim` command line, run as a user runs it: help and exit codes, the split between
//! the binary without libtorch and the one with it, `embed`'s cache and failure handling, and
//! collections (`build`, `query`, `merge-shards`, `slurm-script`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod binaries;
mod build;
mod build_model;
mod embed;
mod index_kinds;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary users call.
pub const BIN: &str = env!("CARGO_BIN_EXE_image-sim");

/// Runs `image-sim ARGS` with logs off.
pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The command's standard error, after checking it succeeded.
pub fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "failed: {err}");
    err
}

/// `n` small PNGs of different sizes in `dir`.
pub fn make_images(dir: &Path, n: usize) {
    for i in 0..n {
        let (w, h) = (20 + 7 * i as u32, 50 - 3 * i as u32);
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 9 + i as u32) as u8, (y * 5) as u8, (x ^ y) as u8])
        })
        .save(dir.join(format!("img{i:03}.png")))
        .unwrap();
    }
}

/// The encoder tests' tiny random-weight CLIP, with a preprocessor config sized to its 32-pixel
/// input, copied into `dst`.
pub fn tiny_clip(dst: &Path) -> PathBuf {
    let src = embed_torch::fixtures::generate("clip", false)
        .unwrap()
        .join("tiny_quick_p8");
    std::fs::create_dir_all(dst).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let pre = serde_json::json!({
        "size": {"shortest_edge": 32},
        "crop_size": {"height": 32, "width": 32},
        "do_center_crop": true,
    });
    std::fs::write(dst.join("preprocessor_config.json"), pre.to_string()).unwrap();
    dst.to_path_buf()
}
