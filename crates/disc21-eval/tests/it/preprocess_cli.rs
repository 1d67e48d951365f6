//! `disc21-eval preprocess` writes exactly what `transformers` computes for the same file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn preprocess_matches_the_python_processor_bit_for_bit() {
    let py = root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/setup.sh",
        py.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let image = root().join("assets/sample_a.jpg");
    for model in ["clip", "dinov2"] {
        let ours = dir.path().join(format!("{model}.npy"));
        let status = Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
            .args(["preprocess", "--model", model])
            .arg(&image)
            .arg("--out")
            .arg(&ours)
            .status()
            .unwrap();
        assert!(status.success());
        // Refuses to clobber without --force.
        let again = Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
            .args(["preprocess", "--model", model])
            .arg(&image)
            .arg("--out")
            .arg(&ours)
            .output()
            .unwrap();
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

        let script = r#"
import sys, numpy as np
from PIL import Image
from transformers import BitImageProcessorPil, CLIPImageProcessorPil
model, image, ours = sys.argv[1:4]
proc = CLIPImageProcessorPil() if model == "clip" else BitImageProcessorPil(
    size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
ref = proc(images=Image.open(image), return_tensors="np")["pixel_values"].astype(np.float32)
got = np.load(ours)
assert got.shape == ref.shape == (1, 3, 224, 224), (got.shape, ref.shape)
assert got.dtype == np.float32
print(int((got.view(np.uint32) == ref.view(np.uint32)).sum()), got.size)
"#;
        let out = Command::new(&py)
            .arg("-c")
            .arg(script)
            .arg(model)
            .arg(&image)
            .arg(&ours)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut nums = text.split_whitespace().map(|v| v.parse::<usize>().unwrap());
        let (equal, total) = (nums.next().unwrap(), nums.next().unwrap());
        assert_eq!(
            equal, total,
            "{model}: only {equal} of {total} values bit-identical"
        );
    }
}

#[test]
fn bench_json_is_not_clobbered_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("figures.json");
    std::fs::write(&json, "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
        .args(["bench", "--model", "clip", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "{}");
}
