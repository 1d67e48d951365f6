//! Reliability of DINOv2's `config.json` handling: missing, unreadable, not
//! JSON, wrong types, values no model can take. `loading.rs` already covers heads not dividing
//! the width, bad activations, eps, non-square sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embed_dinov2::{Dinov2Config, Dinov2Embedder, Pooling};
use embed_torch::{Precision, TorchOptions};
use serde_json::json;

fn cpu() -> TorchOptions {
    TorchOptions {
        device: tch::Device::Cpu,
        precision: Precision::F32,
    }
}

fn refuse(dir: &std::path::Path) -> String {
    match Dinov2Embedder::from_dir(dir, "x", Pooling::default(), cpu()) {
        Ok(_) => panic!("loaded from {}", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// A fresh folder under the system temp dir, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn missing_unreadable_or_invalid_config_json_is_an_error_naming_the_file() {
    let dir = Scratch::new("dinov2-reliability-config");
    // Missing.
    let e = refuse(dir.path());
    assert!(e.contains("config.json"), "{e}");
    // A directory where the file should be.
    std::fs::create_dir(dir.path().join("config.json")).unwrap();
    let e = refuse(dir.path());
    assert!(e.contains("config.json"), "{e}");
    std::fs::remove_dir(dir.path().join("config.json")).unwrap();
    // Not JSON, truncated JSON, not UTF-8, empty, JSON but not an object.
    for bytes in [
        &b"model_type: clip"[..],
        b"{\"model_type\": \"clip\", \"hidden_size\": ",
        b"{\"model_type\": \"cl\xffip\"}",
        b"",
        b"[1, 2, 3]",
        b"null",
    ] {
        std::fs::write(dir.path().join("config.json"), bytes).unwrap();
        let e = refuse(dir.path());
        assert!(
            e.contains("config.json") || e.contains("model_type"),
            "{:?}: {e}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn impossible_values_are_refused_before_any_weight_is_read() {
    let mut failures = Vec::new();
    for (bad, needle) in [
        (
            json!({"model_type": "dinov2", "hidden_size": 0}),
            "hidden_size",
        ),
        (
            json!({"model_type": "dinov2", "num_hidden_layers": 100000}),
            "num_hidden_layers",
        ),
        (
            json!({"model_type": "dinov2", "num_attention_heads": 1000}),
            "num_attention_heads",
        ),
        (
            json!({"model_type": "dinov2", "image_size": 10, "patch_size": 14}),
            "patch_size",
        ),
        (
            json!({"model_type": "dinov2", "mlp_ratio": 1e300}),
            "mlp_ratio",
        ),
        (
            json!({"model_type": "dinov2", "mlp_ratio": 0.0}),
            "mlp_ratio",
        ),
        (
            json!({"model_type": "dinov2", "num_register_tokens": -2}),
            "num_register_tokens",
        ),
    ] {
        let e = match Dinov2Config::from_json(bad.clone()) {
            Ok(c) => format!("accepted as {c:?}"),
            Err(e) => e.to_string(),
        };
        if !e.contains(needle) {
            failures.push(format!("{bad}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// An image size that is not a multiple of the patch size is what `transformers` accepts too:
/// the patch convolution (stride = patch) drops the remainder, so the grid is the floor.
#[test]
fn image_size_not_a_multiple_of_the_patch_floors_the_grid_as_transformers_does() {
    let d = Dinov2Config::from_json(json!({"model_type": "dinov2", "hidden_size": 64,
        "num_attention_heads": 4, "image_size": 30, "patch_size": 8}))
    .unwrap();
    assert_eq!(d.grid(), 3);
}

/// Values of the wrong JSON type are refused with a typed configuration error (the message
/// does not name the field: see embed-clip's `errors_name_the_field`).
#[test]
fn wrong_json_types_are_refused() {
    for bad in [
        json!({"model_type": "dinov2", "use_swiglu_ffn": "yes"}),
        json!({"model_type": "dinov2", "hidden_size": [768]}),
        json!({"model_type": "dinov2", "mlp_ratio": "4"}),
    ] {
        let e = Dinov2Config::from_json(bad.clone())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid model configuration") && e.contains("invalid type"),
            "{bad}: {e}"
        );
    }
}
