//! The opt-in fast JPEG mode (`--fast-jpeg`, DCT-domain downscaled decoding) from the command
//! line: `embed` gives embeddings close to, but not equal to, the exact ones and never resumes
//! from an exact run's cache; `bench` measures both paths and how closely they agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_disc21-eval");

/// JPEGs whose shorter side (960) is over twice CLIP's 448-px fast-mode floor, so they decode
/// at half size in fast mode; with detail at several scales, so the two paths differ.
fn make_jpegs(dir: &Path, n: u32) {
    for i in 0..n {
        let (w, h) = (1000 + 17 * i, 960);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32, y as f32);
            let r = 128.0 + 90.0 * (fx * 0.013 * (i + 1) as f32).sin() * (fy * 0.021).cos();
            let g = 128.0 + 60.0 * ((fx + fy) * 0.31).sin() + 30.0 * (fy * 0.002).cos();
            let b = if ((x / (37 + i)) + (y / 53)) % 2 == 0 {
                50.0
            } else {
                200.0
            };
            image::Rgb([r as u8, g as u8, b as u8])
        });
        img.save_with_format(dir.join(format!("P{i:03}.jpg")), image::ImageFormat::Jpeg)
            .unwrap();
    }
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "command failed: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read_npy(path: &Path) -> Vec<f32> {
    let a = embed_core::npy::read_f32_file(path).unwrap();
    a.iter().copied().collect()
}

#[test]
fn embed_fast_jpeg_is_close_to_exact_and_cached_apart() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    make_jpegs(&images, 3);
    let cache = dir.path().join("cache");
    let embed = |out: &str, extra: &[&str]| {
        let o = Command::new(BIN)
            .args(["embed", "--test-model", "4", "--workers", "2", "--images"])
            .arg(&images)
            .arg("--out")
            .arg(dir.path().join(out))
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--keep-cache")
            .args(extra)
            .output()
            .unwrap();
        ok(&o);
        read_npy(&dir.path().join(out))
    };
    let exact = embed("exact.npy", &[]);
    let fast = embed("fast.npy", &["--fast-jpeg"]);
    // A second cache folder: the fast run did not resume from the exact one's chunks.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
    assert_ne!(exact, fast, "--fast-jpeg must take the downscaled path");
    let dim = exact.len() / 3;
    for (e, f) in exact.chunks(dim).zip(fast.chunks(dim)) {
        let cos = embed_core::cosine_similarity(e, f).unwrap();
        assert!(cos > 0.999, "fast embedding far from exact: cosine {cos}");
    }
    // Same arguments again: resumed from the fast run's cache, same bytes.
    assert_eq!(embed("fast2.npy", &["--fast-jpeg"]), fast);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
}

#[test]
fn bench_fast_jpeg_reports_both_paths_and_their_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("figures.json");
    let o = Command::new(BIN)
        .args([
            "bench",
            "--test-model",
            "4",
            "--fast-jpeg",
            "--workers",
            "2",
        ])
        .args(["--photo-size", "900-1000", "--n-images", "5", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let table = ok(&o);
    assert!(table.contains("fast JPEG vs exact embeddings"), "{table}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let a = &v["fast_jpeg"]["agreement_with_exact"];
    assert_eq!(a["rows"], 5);
    let (mean, min) = (
        a["mean_cosine"].as_f64().unwrap(),
        a["min_cosine"].as_f64().unwrap(),
    );
    assert!(min <= mean && mean <= 1.0 + 1e-12, "{a}");
    assert!(min > 0.99, "{a}");
    assert!(
        mean < 1.0 - 1e-9,
        "the fast path must differ from the exact one: {a}"
    );
    assert_eq!(
        a["identical"], 0,
        "all images are large enough for the fast mode: {a}"
    );
    assert_eq!(a["self_top1"], 5, "{a}");
    assert!(
        v["fast_jpeg"]["rust"]["decode_preprocess"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    let bad = Command::new(BIN)
        .args(["bench", "--test-model", "4", "--photo-size", "900"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("LO-HI"));
}
