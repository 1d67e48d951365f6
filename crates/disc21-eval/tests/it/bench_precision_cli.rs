//! `disc21-eval bench --precision bf16 --compare-f32`: the reduced-precision run's embeddings
//! compared, image by image, with the same pipeline's in f32.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_disc21-eval");

/// The encoder tests' tiny random-weight CLIP, with a preprocessor config sized to its 32-pixel
/// input.
fn tiny_clip(dir: &Path) -> PathBuf {
    let src = embed_torch::fixtures::generate("clip", false)
        .unwrap()
        .join("tiny_quick_p8");
    let dst = dir.join("clip");
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let pre = serde_json::json!({
        "size": {"shortest_edge": 32},
        "crop_size": {"height": 32, "width": 32},
        "do_center_crop": true,
    });
    std::fs::write(dst.join("preprocessor_config.json"), pre.to_string()).unwrap();
    dst
}

fn bench(weights: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args([
            "bench",
            "--model",
            "clip",
            "--device",
            "cpu",
            "--n-images",
            "6",
        ])
        .args(["--batch-size", "3", "--model-iters", "1", "--weights"])
        .arg(weights)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn compare_f32_reports_how_close_bf16_embeddings_are() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_clip(dir.path());
    let json = dir.path().join("bench.json");
    let o = bench(
        &weights,
        &[
            "--precision",
            "bf16",
            "--compare-f32",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // Warned about exactly when this CPU has no bf16 instructions (libtorch then emulates it).
    assert_eq!(
        stderr.contains("no AVX512_BF16 instructions"),
        embed_torch::Precision::Bf16.native_on_cpu() == Some(false),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| bf16 vs f32 embeddings: cosine mean / min |"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let a = &v["agreement_with_f32"];
    assert_eq!(a["rows"], 6, "{a}");
    let (mean, min) = (
        a["mean_cosine"].as_f64().unwrap(),
        a["min_cosine"].as_f64().unwrap(),
    );
    // bf16 keeps 8 significant bits: close to f32, but not equal.
    assert!(min > 0.99 && min <= mean && mean < 1.0, "{a}");
    assert_eq!(a["identical"], 0, "bf16 rows equal to f32 ones: {a}");
    assert!(a["self_top1"].as_u64().unwrap() <= 6);
}

#[test]
fn compare_f32_needs_a_reduced_precision() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_clip(dir.path());
    let o = bench(&weights, &["--compare-f32"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("--precision f16 or bf16"), "{stderr}");
}

#[test]
fn half_precision_without_cpu_support_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_clip(dir.path());
    let o = bench(&weights, &["--precision", "f16"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(
        stderr.contains("no AVX512_FP16 instructions"),
        embed_torch::Precision::F16.native_on_cpu() == Some(false),
        "{stderr}"
    );
    // --quiet silences it with everything else.
    let o = bench(&weights, &["--precision", "f16", "--quiet"]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("AVX512"));
}
