//! The host path (any `Embedder`, no libtorch): order, skips, failure limits, batch and worker
//! invariance, ids, image sizes, progress, and the resumable cache.

use std::path::PathBuf;

use embed_core::Embedder;
use embed_pipeline::{
    CacheKey, CacheOptions, ExtractOptions, Model, PipelineError, ResizeOn, extract,
    extract_cached, list_images,
};

use crate::common::{make_images, model, opts, reference};

#[test]
fn keeps_order_skips_bad_files_and_is_batch_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let bad_names = make_images(dir.path(), 23, 1);
    let paths = list_images(dir.path()).unwrap();
    assert_eq!(paths.len(), 27);
    let m = model();
    let (want, good, bad) = reference(&m, &paths);
    assert_eq!(
        bad.iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        bad_names
    );
    for (workers, batch) in [(1, 1), (2, 4), (3, 5), (4, 64), (7, 2)] {
        let out = extract(Model::Host(&m), &paths, &opts(workers, batch)).unwrap();
        assert_eq!(out.embeddings, want, "workers {workers} batch {batch}");
        let ids: Vec<String> = good
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(out.ids, ids);
        let skipped: Vec<PathBuf> = out.skipped.iter().map(|s| s.path.clone()).collect();
        assert_eq!(skipped, bad);
        assert!(
            out.skipped
                .iter()
                .all(|s| !s.reason.is_empty() && paths[s.index] == s.path)
        );
        assert_eq!(out.indices.len() + out.skipped.len(), paths.len());
    }
}

#[test]
fn normalises_rows() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 6, 2);
    let paths = list_images(dir.path()).unwrap();
    let m = model();
    let raw = extract(Model::Host(&m), &paths, &opts(2, 4)).unwrap();
    let unit = extract(
        Model::Host(&m),
        &paths,
        &ExtractOptions {
            normalize: true,
            ..opts(2, 4)
        },
    )
    .unwrap();
    let mut expect = raw.embeddings.clone();
    embed_core::l2_normalize_rows(&mut expect);
    assert_eq!(unit.embeddings, expect);
    for row in unit.embeddings.rows() {
        let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5 || n == 0.0, "norm {n}");
    }
}

#[test]
fn failure_limits() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 16, 3); // 4 bad of 20 = 0.2
    let paths = list_images(dir.path()).unwrap();
    let m = model();
    let ok = ExtractOptions {
        max_failure_rate: 0.2,
        ..opts(2, 3)
    };
    assert_eq!(
        extract(Model::Host(&m), &paths, &ok).unwrap().skipped.len(),
        4
    );
    let tight = ExtractOptions {
        max_failure_rate: 0.19,
        ..opts(2, 3)
    };
    match extract(Model::Host(&m), &paths, &tight) {
        Err(PipelineError::TooManyFailures {
            failures,
            total: 20,
            ..
        }) => {
            // Every failure so far, with its position, path and reason, in input order.
            assert!(failures.len() >= 4, "{failures:?}");
            assert!(failures.windows(2).all(|w| w[0].index < w[1].index));
            for f in &failures {
                assert_eq!(paths[f.index], f.path);
                assert!(!f.reason.is_empty());
            }
        }
        other => panic!("expected TooManyFailures, got {other:?}"),
    }
    let strict = ExtractOptions {
        strict: true,
        ..opts(2, 3)
    };
    match extract(Model::Host(&m), &paths, &strict) {
        Err(PipelineError::Strict { path, .. }) => {
            assert!(
                path.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("bad_")
            )
        }
        other => panic!("expected Strict, got {other:?}"),
    }
    assert!(
        extract(
            Model::Host(&m),
            &paths,
            &ExtractOptions {
                batch_size: 0,
                ..opts(1, 1)
            }
        )
        .is_err()
    );
}

#[test]
fn device_resize_needs_the_device_transfer() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 2, 7);
    let paths = list_images(dir.path()).unwrap();
    let m = model();
    let err = extract(
        Model::Host(&m),
        &paths,
        &ExtractOptions {
            resize_on: ResizeOn::Device,
            ..opts(1, 2)
        },
    )
    .unwrap_err();
    assert!(matches!(err, PipelineError::InvalidOption(_)), "{err}");
}

#[test]
fn cache_resumes_only_missing_chunks() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 20, 5); // 24 files, chunks of 5: 5 chunks, the last of 4
    let paths = list_images(dir.path()).unwrap();
    let m = model();
    let cache_dir = tempfile::tempdir().unwrap();
    let key = CacheKey {
        model_id: m.model_id().into(),
        ..CacheKey::default()
    };
    let cache = CacheOptions {
        root: cache_dir.path().to_path_buf(),
        chunk_size: 5,
    };
    let o = ExtractOptions {
        normalize: true,
        ..opts(2, 3)
    };
    let plain = extract(Model::Host(&m), &paths, &o).unwrap();
    let first = extract_cached(Model::Host(&m), &paths, &o, &key, &cache).unwrap();
    assert_eq!(first.stats.processed, 24);
    assert_eq!(first.embeddings, plain.embeddings);
    assert_eq!(first.ids, plain.ids);
    assert_eq!(first.skipped, plain.skipped);
    let again = extract_cached(Model::Host(&m), &paths, &o, &key, &cache).unwrap();
    assert_eq!(again.stats.processed, 0);
    assert_eq!(again.embeddings, plain.embeddings);
    // Lose chunk 1, damage chunk 4: exactly those are redone.
    let sub = std::fs::read_dir(cache_dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(sub.join("chunk-00000001.bin")).unwrap();
    let c4 = sub.join("chunk-00000004.bin");
    let mut bytes = std::fs::read(&c4).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&c4, bytes).unwrap();
    let resumed = extract_cached(Model::Host(&m), &paths, &o, &key, &cache).unwrap();
    assert_eq!(resumed.stats.processed, 5 + 4);
    assert_eq!(resumed.embeddings, plain.embeddings);
    assert_eq!(resumed.ids, plain.ids);
    assert_eq!(resumed.skipped, plain.skipped);
    // Another key never reads these chunks.
    let other = CacheKey {
        weights_hash: "other".into(),
        ..key.clone()
    };
    let fresh = extract_cached(Model::Host(&m), &paths, &o, &other, &cache).unwrap();
    assert_eq!(fresh.stats.processed, 24);
}

/// Two files with the same stem would give two rows the same id: refused before any work, by
/// `extract` and `extract_cached` alike, naming both files.
#[test]
fn duplicate_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 3, 11);
    let png = std::fs::read(dir.path().join("img0001.png")).unwrap();
    std::fs::write(dir.path().join("img0001.jpeg"), &png).unwrap();
    let paths = list_images(dir.path()).unwrap();
    let m = model();
    let check = |err: PipelineError| match err {
        PipelineError::DuplicateId { first, second, id } => {
            assert_eq!(id, "img0001");
            assert_ne!(first, second);
            assert!(err_names_both(&first, &second));
        }
        other => panic!("expected DuplicateId, got {other:?}"),
    };
    check(extract(Model::Host(&m), &paths, &opts(1, 2)).unwrap_err());
    let cache = tempfile::tempdir().unwrap();
    let err = extract_cached(
        Model::Host(&m),
        &paths,
        &opts(1, 2),
        &CacheKey::default(),
        &CacheOptions {
            root: cache.path().to_path_buf(),
            chunk_size: 4,
        },
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("img0001.png") && message.contains("img0001.jpeg"),
        "{message}"
    );
    check(err);
    // Nothing was computed or cached.
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

fn err_names_both(first: &std::path::Path, second: &std::path::Path) -> bool {
    let names = [first, second].map(|p| p.file_name().unwrap().to_string_lossy().into_owned());
    names.contains(&"img0001.png".to_string()) && names.contains(&"img0001.jpeg".to_string())
}

/// Each row carries the size of its image as stored in the file, whatever the crop.
#[test]
fn rows_carry_their_images_sizes() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 9, 12);
    let paths = list_images(dir.path()).unwrap();
    let m = model();
    let out = extract(Model::Host(&m), &paths, &opts(2, 4)).unwrap();
    assert_eq!(out.sizes.len(), out.ids.len());
    for (&i, &(w, h)) in out.indices.iter().zip(&out.sizes) {
        // By content: some files are PNGs named .jpg.
        let img = image::load_from_memory(&std::fs::read(&paths[i]).unwrap()).unwrap();
        assert_eq!(
            (w, h),
            (img.width(), img.height()),
            "{}",
            paths[i].display()
        );
    }
}

/// The progress callback sees every batch: counts rise to the total, failures are counted.
#[test]
fn progress_reports_every_batch() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 10, 13);
    let paths = list_images(dir.path()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let m = model();
    let options = ExtractOptions {
        progress: Some(embed_pipeline::ProgressFn::new(move |r| {
            sink.lock().unwrap().push((r.done, r.total, r.failed));
        })),
        ..opts(2, 3)
    };
    extract(Model::Host(&m), &paths, &options).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), paths.len().div_ceil(3));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(*seen.last().unwrap(), (paths.len(), paths.len(), 4));
}

/// A model that says it runs on an accelerator is not fed `f32` host batches in silence.
#[test]
fn an_accelerator_model_is_refused_on_the_host_path() {
    struct OnGpu(embed_pipeline::test_model::GridMeanEmbedder);
    impl Embedder for OnGpu {
        fn model_id(&self) -> &str {
            self.0.model_id()
        }
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn preprocess_spec(&self) -> &embed_core::PreprocessSpec {
            self.0.preprocess_spec()
        }
        fn embed_batch(
            &self,
            pixels: ndarray::ArrayView4<'_, f32>,
        ) -> embed_core::Result<ndarray::Array2<f32>> {
            self.0.embed_batch(pixels)
        }
        fn on_accelerator(&self) -> bool {
            true
        }
    }
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 2, 14);
    let paths = list_images(dir.path()).unwrap();
    let m = OnGpu(model());
    let err = extract(Model::Host(&m), &paths, &opts(1, 2)).unwrap_err();
    assert!(
        matches!(&err, PipelineError::InvalidOption(msg) if msg.contains("Model::Torch")),
        "{err}"
    );
    assert_eq!(Model::Host(&m).default_batch_size(), 256);
}
