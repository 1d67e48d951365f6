//! `build` and `query` with a real encoder (the tests' tiny random-weight CLIP): `query` loads
//! the model the collection records, and other weights under the same family are refused.

use std::path::{Path, PathBuf};

use crate::{BIN, make_images, ok, tiny_clip};

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Five small images in `dir`/im.
fn five_images(dir: &Path) -> PathBuf {
    let images = dir.join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 5);
    images
}

/// `build --model clip` of `images` with `weights` on the CPU into `out`, plus `extra`.
fn build(weights: &Path, images: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let (w, i, o) = (s(weights), s(images), s(out));
    let mut args = vec![
        "build",
        "--model",
        "clip",
        "--weights",
        &w,
        "--device",
        "cpu",
        "--images",
        &i,
        "--out",
        &o,
    ];
    args.extend(extra);
    run(&args)
}

#[test]
fn query_uses_the_recorded_model_and_other_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let images = five_images(dir.path());
    let weights = tiny_clip(&dir.path().join("w1"));
    let coll = dir.path().join("c");
    ok(&build(&weights, &images, &coll, &[]));
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
    let refused = build(&changed, &images, &coll, &[]);
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

/// Hits of a `query --json` answer as (query, row) -> similarity.
fn similarities(out: &std::process::Output) -> std::collections::BTreeMap<(String, u64), f64> {
    let answers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut all = std::collections::BTreeMap::new();
    for a in answers.as_array().unwrap() {
        for h in a["hits"].as_array().unwrap() {
            let key = (
                a["query"].as_str().unwrap().to_string(),
                h["row"].as_u64().unwrap(),
            );
            all.insert(key, h["similarity"].as_f64().unwrap());
        }
    }
    all
}

#[test]
fn query_with_rerank_on_an_8_bit_collection_gives_the_flat_collections_similarities() {
    let dir = tempfile::tempdir().unwrap();
    let images = five_images(dir.path());
    let weights = tiny_clip(&dir.path().join("w"));
    let build = |kind: &str| build(&weights, &images, &dir.path().join(kind), &["--kind", kind]);
    ok(&build("flat"));
    let err = ok(&build("sq8"));
    assert!(err.contains("query --rerank"), "no re-ranking hint: {err}");
    let query = |coll: &str, extra: &[&str]| {
        let mut args = vec!["query".to_string(), s(&dir.path().join(coll))];
        args.extend((0..5).map(|i| s(&images.join(format!("img{i:03}.png")))));
        args.extend(["--k", "5", "--json", "--device", "cpu"].map(String::from));
        args.extend(extra.iter().map(|a| a.to_string()));
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        ok(&out);
        similarities(&out)
    };
    // k = 5 of 5 rows: every row is a hit of every query, so only the scores can differ.
    let exact = query("flat", &[]);
    let reranked = query("sq8", &["--rerank", "2"]);
    let approximate = query("sq8", &[]);
    assert_eq!(exact.len(), 25);
    assert_eq!(
        exact.keys().collect::<Vec<_>>(),
        reranked.keys().collect::<Vec<_>>()
    );
    for (key, e) in &exact {
        assert!(
            (reranked[key] - e).abs() < 1e-5,
            "{key:?}: {} vs {e}",
            reranked[key]
        );
    }
    assert!(
        exact.iter().any(|(key, e)| approximate[key] != *e),
        "the 8-bit codes scored exactly without re-ranking: the comparison shows nothing"
    );
}
