//! Strict loading and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embed_clip::{ClipEmbedder, ClipVisionConfig};
use embed_torch::fixtures::generate;
use embed_torch::{Precision, TorchOptions};

fn load_err(case: &str, precision: Precision) -> String {
    let root = generate("clip", false).unwrap();
    let options = TorchOptions {
        device: tch::Device::Cpu,
        precision,
    };
    match ClipEmbedder::from_dir(&root.join(case), case, options) {
        Ok(_) => panic!("{case}: loaded, expected an error"),
        Err(e) => e.to_string(),
    }
}

const VICTIM: &str = "vision_model.encoder.layers.0.layer_norm1.weight";

#[test]
fn missing_tensor_is_named() {
    let e = load_err("broken_missing", Precision::F32);
    assert!(e.contains("no tensor") && e.contains(VICTIM), "{e}");
}

#[test]
fn misshaped_tensor_is_named_even_if_broadcastable() {
    let e = load_err("broken_misshaped", Precision::F32);
    assert!(
        e.contains(VICTIM) && e.contains("[1, 32]") && e.contains("[32]"),
        "{e}"
    );
}

#[test]
fn unexpected_tensor_is_named() {
    let e = load_err("broken_unexpected", Precision::F32);
    assert!(
        e.contains("unexpected") && e.contains("extra.weight"),
        "{e}"
    );
    // The text tower is skipped knowingly: it is not listed.
    assert!(!e.contains("text_model"), "{e}");
}

#[test]
fn integer_dtype_is_rejected() {
    let e = load_err("broken_int_dtype", Precision::F32);
    assert!(e.contains(VICTIM) && e.contains("I32"), "{e}");
}

#[test]
fn nan_weight_is_rejected() {
    let e = load_err("broken_nan", Precision::F32);
    assert!(e.contains(VICTIM) && e.contains("NaN"), "{e}");
}

#[test]
fn f16_overflow_is_rejected_but_f32_accepts_it() {
    let e = load_err("broken_f16_overflow", Precision::F16);
    assert!(e.contains(VICTIM) && e.contains("conversion"), "{e}");
    let root = generate("clip", false).unwrap();
    ClipEmbedder::from_dir(
        &root.join("broken_f16_overflow"),
        "ok",
        TorchOptions::default(),
    )
    .unwrap();
}

#[test]
fn heads_must_divide_width() {
    let e = load_err("broken_bad_heads", Precision::F32);
    assert!(
        e.contains("num_attention_heads") && e.contains("config.json"),
        "{e}"
    );
}

#[test]
fn config_validation() {
    let ok = serde_json::json!({"model_type": "clip_vision_model", "hidden_size": 64, "num_attention_heads": 4,
        "image_size": [32, 32], "patch_size": 8, "hidden_act": "gelu", "projection_dim": 16});
    let c = ClipVisionConfig::from_json(ok).unwrap();
    assert_eq!(
        (c.image_size, c.grid(), c.num_positions(), c.layer_norm_eps),
        (32, 4, 17, 1e-5)
    );
    for (bad, needle) in [
        (
            serde_json::json!({"model_type": "clip_vision_model", "hidden_act": "tanhh"}),
            "hidden_act",
        ),
        (
            serde_json::json!({"model_type": "clip_vision_model", "layer_norm_eps": -1.0}),
            "layer_norm_eps",
        ),
        (
            serde_json::json!({"model_type": "clip_vision_model", "patch_size": 300}),
            "patch_size",
        ),
        (
            serde_json::json!({"model_type": "clip_vision_model", "image_size": [32, 48]}),
            "square",
        ),
        (serde_json::json!({"model_type": "dinov2"}), "not a CLIP"),
        (
            serde_json::json!({"model_type": "clip", "vision_config": {"hidden_size": 0}}),
            "hidden_size",
        ),
    ] {
        let e = ClipVisionConfig::from_json(bad.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }
    // Full CLIPModel: the projection width is the top-level one; vision_config_dict overrides.
    let full = serde_json::json!({"model_type": "clip", "projection_dim": 768,
        "vision_config": {"patch_size": 16}, "vision_config_dict": {"patch_size": 14, "image_size": 336}});
    let c = ClipVisionConfig::from_json(full).unwrap();
    assert_eq!(
        (
            c.projection_dim,
            c.patch_size,
            c.image_size,
            c.full_clip_model
        ),
        (768, 14, 336, true)
    );
}

#[test]
fn missing_model_id_lists_places_and_how_to_download() {
    let dir = tempfile_dir();
    let e = embed_torch::resolve_model_in("nobody/no-such-model", std::slice::from_ref(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("models--nobody--no-such-model")
            && e.contains("hf download nobody/no-such-model"),
        "{e}"
    );
    // A cache laid out like huggingface_hub's is found, and the id is kept.
    let root = generate("clip", false).unwrap();
    let snap = dir.join("models--org--tiny/snapshots/abc123");
    std::fs::create_dir_all(&snap).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(root.join("tiny_quick_p8").join(f), snap.join(f)).unwrap();
    }
    std::fs::create_dir_all(dir.join("models--org--tiny/refs")).unwrap();
    std::fs::write(dir.join("models--org--tiny/refs/main"), "abc123").unwrap();
    let found = embed_torch::resolve_model_in("org/tiny", std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        (found.dir.clone(), found.model_id.as_str()),
        (snap.clone(), "org/tiny")
    );
    let by_path = embed_torch::resolve_model_in(snap.to_str().unwrap(), &[]).unwrap();
    assert_eq!(by_path.model_id, "org/tiny");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = embed_torch::fixtures::workspace_root()
        .join("target")
        .join(format!("encoders-hub-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
