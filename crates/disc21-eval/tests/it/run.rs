//! The benchmark end to end: exact copies are found by any deterministic embedder (accuracy
//! 1.0), the report is complete, the embedding cache is reused, outputs are not overwritten
//! without `--force`, and `disc21-eval run` completes with small random-weight checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use disc21_eval::benchmark::{BenchModel, RunOptions, run_benchmark};
use disc21_eval::dataset::{EvalSet, Layout, LayoutOverrides, Protocol};
use disc21_eval::generate::{GenerateOptions, QueryKind, generate};
use disc21_eval::report::{
    GalleryOptions, MachineInfo, REPORT_FILES, ReportError, ReportInfo, write_report,
};
use embed_core::{Embedder, PreprocessSpec};
use embed_pipeline::Model;
use embed_pipeline::test_model::GridMeanEmbedder;
use ndarray::{Array2, ArrayView4, Axis};

/// A joint 4×4×4 colour histogram of the preprocessed pixels: deterministic, weightless.
struct HistogramEmbedder {
    spec: PreprocessSpec,
}

impl Embedder for HistogramEmbedder {
    fn model_id(&self) -> &str {
        "test/colour-histogram-64"
    }
    fn dim(&self) -> usize {
        64
    }
    fn preprocess_spec(&self) -> &PreprocessSpec {
        &self.spec
    }
    fn embed_batch(&self, pixels: ArrayView4<'_, f32>) -> embed_core::Result<Array2<f32>> {
        let mut out = Array2::zeros((pixels.len_of(Axis(0)), 64));
        for (img, mut row) in pixels.axis_iter(Axis(0)).zip(out.rows_mut()) {
            let (_, h, w) = img.dim();
            // Normalised values lie in about [-2.2, 2.7]; four bins per channel.
            let bin = |v: f32| (((v + 2.2) / 4.9 * 4.0) as usize).min(3);
            for y in 0..h {
                for x in 0..w {
                    let b =
                        bin(img[[0, y, x]]) * 16 + bin(img[[1, y, x]]) * 4 + bin(img[[2, y, x]]);
                    row[b] += 1.0;
                }
            }
        }
        Ok(out)
    }
}

fn info() -> ReportInfo {
    ReportInfo {
        machine: MachineInfo::detect("cpu"),
        command: "test".into(),
        started_unix: 0,
        wall_seconds: 0.0,
    }
}

#[test]
fn exact_copies_reach_accuracy_one_and_the_cache_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = GenerateOptions {
        references: 24,
        queries: 16,
        copy_fraction: 0.75,
        seed: 5,
        query_kind: QueryKind::Exact,
        min_side: 64,
        max_side: 160,
        ..GenerateOptions::default()
    };
    generate(&data, &opts).unwrap();
    let layout = Layout::detect(&data, &LayoutOverrides::default()).unwrap();
    let official = EvalSet::load(layout, Protocol::Official).unwrap();
    assert_eq!(official.queries.len(), 16);

    let hist = HistogramEmbedder {
        spec: PreprocessSpec::clip(),
    };
    let grid = GridMeanEmbedder::new(PreprocessSpec::dinov2(), 3);
    let models = [
        BenchModel {
            name: "histogram".into(),
            model: Model::Host(&hist),
            weights: "none".into(),
            weights_hash: "0".into(),
            extra: String::new(),
            random_weights: false,
        },
        BenchModel {
            name: "gridmean".into(),
            model: Model::Host(&grid),
            weights: "none".into(),
            weights_hash: "0".into(),
            extra: String::new(),
            random_weights: false,
        },
    ];
    let mut options = RunOptions::new(dir.path().join("cache"));
    options.chunk_size = 8;
    let result = run_benchmark(&official, &models, &options).unwrap();
    for m in &result.models {
        let x = &m.metrics;
        assert_eq!(x.n_queries, 12, "{}", m.name);
        assert_eq!(x.accuracy, 1.0, "{}: {x:?}", m.name);
        assert_eq!(x.recall_at_1, 1.0, "{}", m.name);
        assert_eq!(x.n_predictions, 16 * 10, "{}", m.name);
        assert_eq!(m.extract_references.computed, 24);
        // The copy is the best match of its query, with score 1 (same pixels).
        assert!(m.ranked.iter().all(|r| r.len() == 10));
        assert!(x.micro_ap > 0.5 && x.micro_ap <= 1.0);
    }

    let report = dir.path().join("report");
    write_report(
        &report,
        &official,
        &result,
        &info(),
        &GalleryOptions::default(),
        false,
    )
    .unwrap();
    for f in REPORT_FILES {
        let len = std::fs::metadata(report.join(f)).unwrap().len();
        assert!(len > 100, "{f} is {len} bytes");
    }
    // The charts are PNGs of the report's size with something drawn on the white background
    // (axes, labels, bars), not a blank buffer.
    for f in ["pr_curves.png", "accuracy.png", "throughput.png"] {
        let chart = image::open(report.join(f)).unwrap().to_rgb8();
        assert_eq!(chart.dimensions(), (900, 600), "{f}");
        let dark = chart
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c < 128))
            .count();
        assert!(dark > 1_000, "{f}: {dark} dark pixels");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["models"][0]["metrics"]["accuracy"], 1.0);
    assert_eq!(json["dataset"]["queries"], 16);
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("| histogram | gridmean |"), "{md}");
    let gallery = image::open(report.join("gallery.png")).unwrap();
    assert!(gallery.width() > 1000 && gallery.height() > 300);
    let preds = disc21_eval::metrics::read_predictions(&report.join("predictions_histogram.csv"));
    assert_eq!(preds.unwrap().len(), 160);

    // Not overwritten without force.
    let again = write_report(
        &report,
        &official,
        &result,
        &info(),
        &GalleryOptions::default(),
        false,
    );
    assert!(matches!(again, Err(ReportError::Exists(_))));

    // A second run reads every embedding from the cache and scores the same.
    let second = run_benchmark(&official, &models, &options).unwrap();
    for (a, b) in result.models.iter().zip(&second.models) {
        assert_eq!(b.extract_references.computed, 0);
        assert_eq!(b.extract_queries.computed, 0);
        assert_eq!(a.metrics, b.metrics);
    }
}

#[test]
fn cli_run_with_random_weight_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    // The encoder tests' tiny checkpoints, with a preprocessor config sized to their input
    // (the fixtures have none, and the default 224 does not fit a 32-pixel CLIP).
    let checkpoint = |family: &str, case: &str, side: u32| {
        let src = embed_torch::fixtures::generate(family, false)
            .unwrap()
            .join(case);
        let dst = dir.path().join(format!("{family}-{case}"));
        std::fs::create_dir_all(&dst).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(src.join(f), dst.join(f)).unwrap();
        }
        let pre = serde_json::json!({
            "size": {"shortest_edge": side},
            "crop_size": {"height": side, "width": side},
            "do_center_crop": true,
        });
        std::fs::write(dst.join("preprocessor_config.json"), pre.to_string()).unwrap();
        dst
    };
    let clip = checkpoint("clip", "tiny_quick_p8", 32);
    let dinov2 = checkpoint("dinov2", "tiny_gelu_ls", 56);
    let data = dir.path().join("data");
    let opts = GenerateOptions {
        references: 16,
        queries: 10,
        seed: 9,
        min_side: 64,
        max_side: 160,
        ..GenerateOptions::default()
    };
    generate(&data, &opts).unwrap();
    let out = dir.path().join("report");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
            .arg("run")
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .arg("--weights-clip")
            .arg(&clip)
            .arg("--weights-dinov2")
            .arg(&dinov2)
            .args([
                "--device",
                "cpu",
                "--batch-size",
                "4",
                "--gallery-queries",
                "3",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    for stage in [
        "extract references",
        "extract queries",
        "queries/s",
        "metrics",
    ] {
        assert!(stderr.contains(stage), "no `{stage}` line in:\n{stderr}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let models = json["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["name"], "clip");
    assert_eq!(models[1]["name"], "dinov2");
    assert_eq!(models[0]["weights_hash"].as_str().unwrap().len(), 64);
    assert_ne!(models[0]["weights_hash"], models[1]["weights_hash"]);
    assert!(
        models[0]["extract_references"]["images_per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // Refused without --force; with --force and another index the embeddings are reused.
    let refused = run(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let again = run(&["--force", "--index", "hnsw"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("0 computed"), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["models"][0]["search"]["index"], "hnsw");
}
