//! The CPU-side pieces of the extraction pipeline: batch assembly (decode + preprocess on the
//! worker threads into the batch ring, ordered hand-over to the model thread) with a model that
//! costs nothing, at 1 and 2 workers; and the 8-bit → `f32` normalisation the device path runs
//! in libtorch (here on the CPU).
//!
//! `cargo bench -p image-sim-benches --bench pipeline`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

use criterion::{Criterion, Throughput, black_box};
use embed_core::PreprocessSpec;
use embed_pipeline::test_model::GridMeanEmbedder;
use embed_pipeline::{ExtractOptions, Model, extract, normalize_u8_nhwc};
use rand::{Rng, SeedableRng};

/// 32 synthetic JPEGs, 360–640 px (as the Python baseline makes them), in a temporary folder.
fn images(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    (0..32)
        .map(|i| {
            let (h, w) = (rng.gen_range(360..640u32), rng.gen_range(360..640u32));
            let base =
                image::RgbImage::from_fn(w / 8 + 1, h / 8 + 1, |_, _| image::Rgb(rng.r#gen()));
            let img = image::imageops::resize(&base, w, h, image::imageops::FilterType::Triangle);
            let p = dir.join(format!("img{i:03}.jpg"));
            img.save(&p).unwrap();
            p
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let dir = std::env::temp_dir().join(format!("pipeline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths = images(&dir);
    let model = GridMeanEmbedder::new(PreprocessSpec::clip(), 1);
    let mut g = c.benchmark_group("batch_assembly");
    g.throughput(Throughput::Elements(paths.len() as u64));
    for workers in [1usize, 2] {
        let opts = ExtractOptions {
            workers,
            batch_size: 8,
            ..ExtractOptions::default()
        };
        g.bench_function(
            format!("decode_preprocess_32_jpegs_{workers}_workers"),
            |b| b.iter(|| black_box(extract(Model::Host(&model), &paths, &opts).unwrap())),
        );
    }
    g.finish();

    let mut g = c.benchmark_group("device_normalize");
    g.throughput(Throughput::Elements(8));
    let pixels = tch::Tensor::randint(
        256,
        [8i64, 224, 224, 3],
        (tch::Kind::Uint8, tch::Device::Cpu),
    );
    let spec = PreprocessSpec::clip();
    g.bench_function("u8_nhwc_to_f32_nchw_batch8_cpu", |b| {
        b.iter(|| black_box(normalize_u8_nhwc(&pixels, &spec).unwrap()))
    });
    g.finish();
    c.final_summary();
    let _ = std::fs::remove_dir_all(&dir);
}
