//! Preprocessing parity with `transformers`' PIL image processors, against the live Python
//! reference: tests/python/preprocess_reference.py generates images of many formats, modes and
//! sizes and the tensors `CLIPImageProcessor` / `BitImageProcessor` (DINOv2 settings) make of them.
//!
//! The bar: every value bit-identical, for PNG and JPEG inputs of every layout, size and aspect
//! ratio generated (elongated pictures in both orientations included, whose resize Pillow runs
//! in the other pass order). BMP, TIFF, GIF and WebP inputs are decoded as a sanity check and
//! reported, not held to the bar.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use embed_core::{DecodeOptions, PreprocessSpec, decode_file, npy};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let py = workspace_root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh to create the project's Python environment",
        py.display()
    );
    py
}

fn reference_dir() -> PathBuf {
    // Keyed by the generator's contents, so an edited generator never meets stale references.
    let script = workspace_root().join("tests/python/preprocess_reference.py");
    let text = std::fs::read(&script).unwrap();
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let dir = workspace_root().join(format!(
        "target/test-fixtures/preprocess-reference-{hash:016x}"
    ));
    if !dir.join("manifest.json").exists() {
        let status = Command::new(python())
            .arg(&script)
            .arg(&dir)
            .status()
            .expect("running the Python reference");
        assert!(status.success(), "preprocess_reference.py failed");
    }
    dir
}

#[derive(Default)]
struct Tally {
    values: usize,
    exact: usize,
    worst_levels: f64,
}

#[test]
fn preprocessing_matches_transformers() {
    let dir = reference_dir();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let specs = [
        (
            "clip",
            PreprocessSpec::from_file(
                &dir.join("clip/preprocessor_config.json"),
                PreprocessSpec::clip(),
            )
            .unwrap(),
        ),
        (
            "dinov2",
            PreprocessSpec::from_file(
                &dir.join("dinov2/preprocessor_config.json"),
                PreprocessSpec::dinov2(),
            )
            .unwrap(),
        ),
    ];
    // The config files say what the class defaults say.
    assert_eq!(specs[0].1, PreprocessSpec::clip());
    assert_eq!(specs[1].1, PreprocessSpec::dinov2());

    let mut by_kind: std::collections::BTreeMap<String, Tally> = Default::default();
    let mut failures = Vec::new();
    let mut windows = 0;
    let images = manifest["images"].as_array().unwrap();
    assert!(images.len() > 100, "reference set is too small");
    for entry in images {
        let file = dir.join(entry["file"].as_str().unwrap());
        let kind = entry["kind"].as_str().unwrap().to_string();
        let parity = entry["bar"].as_str() == Some("parity");
        let image = decode_file(&file, &DecodeOptions::default())
            .unwrap_or_else(|e| panic!("decoding {}: {e}", file.display()));
        for (tag, spec) in &specs {
            let reference = npy::read_f32_file(&dir.join(entry[*tag].as_str().unwrap())).unwrap();
            let ours = spec.preprocess(&image).unwrap();
            // Decoding only what the spec reads gives the same tensor, bit for bit.
            let only = DecodeOptions {
                window_for: Some(spec.geometry()),
                ..DecodeOptions::default()
            };
            let part = decode_file(&file, &only).unwrap();
            windows += usize::from(part.is_window());
            assert_eq!(
                spec.preprocess(&part).unwrap(),
                ours,
                "window decode of {}",
                file.display()
            );
            assert_eq!(reference.shape(), &[1, 3, 224, 224], "{}", file.display());
            assert_eq!(ours.shape(), &[3, 224, 224]);
            let std = spec.normalize.unwrap().1;
            let plane = 224 * 224;
            let (mut exact, mut worst) = (0usize, 0f64);
            for (i, (a, b)) in ours.iter().zip(reference.iter()).enumerate() {
                if a.to_bits() == b.to_bits() {
                    exact += 1;
                }
                let levels = f64::from((a - b).abs()) * 255.0 * std[i / plane];
                worst = worst.max(levels);
            }
            let t = by_kind.entry(format!("{kind:<18} {tag}")).or_default();
            t.values += ours.len();
            t.exact += exact;
            t.worst_levels = t.worst_levels.max(worst);
            let frac = exact as f64 / ours.len() as f64;
            if parity && exact != ours.len() {
                failures.push(format!(
                    "{} [{tag}]: {:.4}% exact, worst {:.3} levels",
                    file.display(),
                    100.0 * frac,
                    worst
                ));
            }
        }
    }
    eprintln!(
        "{:<26} {:>10} {:>10}",
        "kind / model", "exact %", "max lvls"
    );
    for (k, t) in &by_kind {
        eprintln!(
            "{k:<26} {:>10.4} {:>10.3}",
            100.0 * t.exact as f64 / t.values as f64,
            t.worst_levels
        );
    }
    // Most reference JPEGs are larger than what the crops read.
    eprintln!("{windows} window decodes, all equal to the whole decode");
    assert!(windows > 20, "only {windows} window decodes");
    assert!(
        failures.is_empty(),
        "parity bar missed:\n{}",
        failures.join("\n")
    );
}
