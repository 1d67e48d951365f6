//! Strict loading and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embed_dinov2::{Dinov2Config, Dinov2Embedder, Pooling};
use embed_torch::fixtures::generate;
use embed_torch::{Precision, TorchOptions};

fn load_err(case: &str, precision: Precision) -> String {
    let root = generate("dinov2", false).unwrap();
    let options = TorchOptions {
        device: tch::Device::Cpu,
        precision,
    };
    match Dinov2Embedder::from_dir(&root.join(case), case, Pooling::Mean, options) {
        Ok(_) => panic!("{case}: loaded, expected an error"),
        Err(e) => e.to_string(),
    }
}

const VICTIM: &str = "encoder.layer.0.norm1.weight";

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
    // mask_token is known (checked and skipped): it is not listed.
    assert!(!e.contains("mask_token"), "{e}");
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
    let root = generate("dinov2", false).unwrap();
    Dinov2Embedder::from_dir(
        &root.join("broken_f16_overflow"),
        "ok",
        Pooling::Mean,
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
fn config_validation_and_defaults() {
    let reg = Dinov2Config::from_json(serde_json::json!({"model_type": "dinov2_with_registers"}))
        .unwrap();
    assert_eq!(
        (reg.patch_size, reg.num_register_tokens, reg.image_size),
        (16, 4, 224)
    );
    let plain = Dinov2Config::from_json(
        serde_json::json!({"model_type": "dinov2", "num_register_tokens": 4}),
    )
    .unwrap();
    assert_eq!(
        (
            plain.patch_size,
            plain.num_register_tokens,
            plain.image_size
        ),
        (14, 0, 224)
    );
    let giant = Dinov2Config {
        image_size: 518,
        ..Dinov2Config::giant()
    };
    assert_eq!(giant.intermediate_size(), 4096); // (int(6144 * 2 / 3) + 7) // 8 * 8
    assert_eq!(Dinov2Config::base().intermediate_size(), 3072);
    for (bad, needle) in [
        (
            serde_json::json!({"model_type": "dinov2", "hidden_act": "tanhh"}),
            "hidden_act",
        ),
        (
            serde_json::json!({"model_type": "dinov2", "layer_norm_eps": 0.0}),
            "layer_norm_eps",
        ),
        (
            serde_json::json!({"model_type": "dinov2", "hidden_size": 100, "num_attention_heads": 12}),
            "num_attention_heads",
        ),
        (
            serde_json::json!({"model_type": "dinov2", "mlp_ratio": -1}),
            "mlp_ratio",
        ),
        (serde_json::json!({"model_type": "clip"}), "not DINOv2"),
        (
            serde_json::json!({"model_type": "dinov2", "patch_size": [14, 16]}),
            "square",
        ),
    ] {
        let e = Dinov2Config::from_json(bad.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }
}
