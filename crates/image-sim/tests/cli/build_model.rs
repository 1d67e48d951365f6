//! `build` and `query` with a real encoder (the tests' tiny random-weight CLIP): `query` loads
//! the model the collection records, and other weights under the same family are refused.

use crate::{BIN, make_images, ok, tiny_clip};

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn query_uses_the_recorded_model_and_other_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 5);
    let weights = tiny_clip(&dir.path().join("w1"));
    let coll = dir.path().join("c");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let build = |w: &std::path::Path| {
        run(&[
            "build",
            "--model",
            "clip",
            "--weights",
            &s(w),
            "--device",
            "cpu",
            "--images",
            &s(&images),
            "--out",
            &s(&coll),
        ])
    };
    ok(&build(&weights));
    let out = run(&[
        "query",
        &s(&coll),
        &s(&images.join("img001.png")),
        "--k",
        "2",
        "--json",
        "--device",
        "cpu",
    ]);
    ok(&out);
    let answers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = &answers[0]["hits"][0];
    assert_eq!(top["image_path"], "img001.png");
    assert!(
        (top["similarity"].as_f64().unwrap() - 1.0).abs() < 1e-4,
        "{answers}"
    );

    // Other weights of the same family: refused, the collection unchanged.
    let changed = dir.path().join("w2");
    std::fs::create_dir_all(&changed).unwrap();
    for f in [
        "config.json",
        "preprocessor_config.json",
        "model.safetensors",
    ] {
        std::fs::copy(weights.join(f), changed.join(f)).unwrap();
    }
    let st = changed.join("model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x40;
    std::fs::write(&st, bytes).unwrap();
    let refused = build(&changed);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("was built with") && err.contains("weights digest"),
        "{err}"
    );

    // The recorded weights changed on disk: the query says so instead of answering.
    std::fs::copy(&st, weights.join("model.safetensors")).unwrap();
    let stale = run(&[
        "query",
        &s(&coll),
        &s(&images.join("img001.png")),
        "--device",
        "cpu",
    ]);
    assert_eq!(stale.status.code(), Some(1));
    let err = String::from_utf8_lossy(&stale.stderr);
    assert!(err.contains("not the ones"), "{err}");
}
