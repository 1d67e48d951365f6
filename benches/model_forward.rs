//! Model-only forward pass on CPU, f32, batch 8 at 224×224: the Rust encoders (`embed-clip`,
//! `embed-dinov2`) against `transformers` on the same libtorch, measured in the same run.
//!
//! `cargo bench -p image-sim-benches --bench model_forward`
//!
//! Full-size random-weight checkpoints (CLIP ViT-B/32, DINOv2-base) are generated once by
//! `tests/python/encoders_fixtures.py --full`; `tests/python/encoders_time_forward.py` times
//! transformers with the same thread count. Criterion reports the Rust timings; a summary line
//! per model prints both medians (10 timed runs after 2 warm-ups each) and the ratio
//! transformers / Rust (above 1.0 = Rust faster).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use embed_clip::ClipEmbedder;
use embed_dinov2::{Dinov2Embedder, Pooling};
use embed_torch::fixtures::{generate, python, script};
use embed_torch::{TorchEmbedder, TorchOptions};
use tch::{Device, Kind, Tensor};

const BATCH: i64 = 8;
const ITERS: usize = 10;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn python_median(dir: &Path, family: &str, threads: i32) -> f64 {
    let out = Command::new(python().unwrap())
        .arg(script("encoders_time_forward.py"))
        .arg(dir)
        .args([
            "--family",
            family,
            "--batch",
            &BATCH.to_string(),
            "--iters",
            &ITERS.to_string(),
        ])
        .args(["--threads", &threads.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap()).unwrap();
    v["median_s"].as_f64().unwrap()
}

fn bench_model(c: &mut Criterion, name: &str, family: &str, model: &dyn TorchEmbedder, dir: &Path) {
    let _guard = tch::no_grad_guard();
    let x = Tensor::randn([BATCH, 3, 224, 224], (Kind::Float, Device::Cpu));
    for _ in 0..2 {
        model.embed_tensor(&x).unwrap();
    }
    let mut group = c.benchmark_group("model_forward");
    group.sample_size(10);
    group.bench_function(format!("{name}/rust/batch8_f32_cpu"), |b| {
        b.iter(|| model.embed_tensor(&x).unwrap())
    });
    group.finish();
    // Same-run comparison: Rust median, then transformers' median with the same thread count.
    let rust = median(
        (0..ITERS)
            .map(|_| {
                let t0 = Instant::now();
                model.embed_tensor(&x).unwrap();
                t0.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let threads = tch::get_num_threads();
    let py = python_median(dir, family, threads);
    println!(
        "{name}: batch {BATCH}, f32, CPU, {threads} threads: rust {:.1} ms ({:.1} img/s), transformers {:.1} ms ({:.1} img/s), ratio transformers/rust = {:.3}x",
        rust * 1e3,
        BATCH as f64 / rust,
        py * 1e3,
        BATCH as f64 / py,
        py / rust
    );
}

fn benches(c: &mut Criterion) {
    let options = TorchOptions {
        device: Device::Cpu,
        precision: embed_torch::Precision::F32,
    };
    let clip_dir = generate("clip", true).unwrap().join("full_vit_b32");
    let clip = ClipEmbedder::from_dir(&clip_dir, "clip-vit-b32-random", options).unwrap();
    bench_model(c, "clip_vit_b32", "clip", &clip, &clip_dir);
    drop(clip);
    let dino_dir = generate("dinov2", true).unwrap().join("full_base");
    let dino =
        Dinov2Embedder::from_dir(&dino_dir, "dinov2-base-random", Pooling::Mean, options).unwrap();
    bench_model(c, "dinov2_base", "dinov2", &dino, &dino_dir);
}

criterion_group!(model_forward, benches);
criterion_main!(model_forward);
