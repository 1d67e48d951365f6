//! `embed`: the cache keys on the weights the model runs, not on the name given for them, and
//! a run stopped by the failure rate lists its failures and keeps its finished work.

use std::path::Path;
use std::process::{Command, Output};

use crate::{BIN, make_images, ok, tiny_clip};

fn embed(cache: &Path, hub: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("embed")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--keep-cache", "--device", "cpu", "--batch-size", "2"])
        .env("HF_HUB_CACHE", hub)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Lays out `files` as snapshot `rev` of `org/name` in a Hugging Face hub cache and points
/// `refs/main` at it.
fn snapshot(hub: &Path, rev: &str, files: &Path) {
    let repo = hub.join("models--test--tiny-clip");
    let snap = repo.join("snapshots").join(rev);
    std::fs::create_dir_all(&snap).unwrap();
    for e in std::fs::read_dir(files).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), snap.join(e.file_name())).unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), rev).unwrap();
}

/// The "N computed" count of `embed`'s status line.
fn computed(stderr: &str) -> usize {
    let at = stderr.find(" computed in ").expect(stderr);
    stderr[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_new_snapshot_of_a_model_id_is_embedded_again() {
    let dir = tempfile::tempdir().unwrap();
    let (images, hub, cache) = (
        dir.path().join("im"),
        dir.path().join("hub"),
        dir.path().join("c"),
    );
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 5);
    let weights = tiny_clip(&dir.path().join("w1"));
    snapshot(&hub, "rev1", &weights);
    let run = |out: &str| {
        embed(
            &cache,
            &hub,
            &[
                "--model",
                "clip",
                "--weights",
                "test/tiny-clip",
                "--images",
                images.to_str().unwrap(),
                "--out",
                dir.path().join(out).to_str().unwrap(),
            ],
        )
    };
    assert_eq!(computed(&ok(&run("a.npy"))), 5);
    // The same snapshot again: everything comes from the cache.
    assert_eq!(computed(&ok(&run("b.npy"))), 0);
    // A new snapshot under the same id, one weight changed: nothing stale is reused.
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
    snapshot(&hub, "rev2", &changed);
    assert_eq!(computed(&ok(&run("c.npy"))), 5);
}

#[test]
fn too_many_failures_lists_them_keeps_the_work_and_says_how_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 6);
    for i in 0..4 {
        std::fs::write(images.join(format!("zz_bad{i}.jpg")), b"not an image").unwrap();
    }
    let out = dir.path().join("e.npy");
    let cache = dir.path().join("cache");
    let args = |rate: &str| {
        vec![
            "--test-model".to_string(),
            "2".into(),
            "--images".into(),
            images.to_string_lossy().into_owned(),
            "--out".into(),
            out.to_string_lossy().into_owned(),
            "--chunk-size".into(),
            "2".into(),
            "--max-failure-rate".into(),
            rate.into(),
        ]
    };
    let tight = args("0.1");
    let stopped = embed(&cache, dir.path(), &strs(&tight));
    assert_eq!(stopped.status.code(), Some(1));
    let err = String::from_utf8_lossy(&stopped.stderr);
    assert!(err.contains("--max-failure-rate"), "{err}");
    assert!(err.contains("e.skipped.csv"), "{err}");
    assert!(!out.exists(), "no embeddings are written for a stopped run");
    let listed = std::fs::read_to_string(dir.path().join("e.skipped.csv")).unwrap();
    let bad: Vec<&str> = listed.lines().skip(1).collect();
    assert!(!bad.is_empty(), "{listed}");
    assert!(bad.iter().all(|l| l.contains("zz_bad")), "{listed}");
    // The images before the stop were kept: the rerun with a higher limit computes only the
    // rest.
    let loose = args("0.5");
    let resumed = embed(&cache, dir.path(), &strs(&loose));
    let err = ok(&resumed);
    assert!(computed(&err) < 10, "{err}");
    let listed = std::fs::read_to_string(dir.path().join("e.skipped.csv")).unwrap();
    assert_eq!(listed.lines().count(), 1 + 4, "{listed}");
    assert!(out.exists());
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
