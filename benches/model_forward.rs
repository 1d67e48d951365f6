//! Model-only forward pass on CPU, f32, batch 8 at 224×224: the Rust encoders (`embed-clip`,
//! `embed-dinov2`) against `transformers` on the same libtorch, measured in the same run; also in
//! bf16 where the CPU has instructions for it (AVX512_BF16: `Precision::native_on_cpu`).
//!
//! `cargo bench -p image-sim-benches --bench model_forward`
//!
//! Full-size random-weight checkpoints (CLIP ViT-B/32, DINOv2-base) are generated once by
//! `tests/python/encoders_fixtures.py --full`; `tests/python/encoders_time_forward.py` times
//! transformers with the same thread count. Criterion reports the Rust timings; a summary line
//! per model prints medians and minima of 20 timed runs each (two alternating
//! rounds of 10, after warm-ups) and the ratios transformers / Rust (above 1.0 = Rust faster).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use embed_clip::ClipEmbedder;
use embed_dinov2::{Dinov2Embedder, Pooling};
use embed_torch::fixtures::{generate, python, script};
use embed_torch::{Precision, TorchEmbedder, TorchOptions};
use tch::{Device, Kind, Tensor};

const BATCH: i64 = 8;
const ITERS: usize = 10;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn python_times(dir: &Path, family: &str, threads: i32, precision: Precision) -> Vec<f64> {
    let dtype = match precision {
        Precision::F32 => "float32",
        Precision::F16 => "float16",
        Precision::Bf16 => "bfloat16",
    };
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
        .args(["--threads", &threads.to_string(), "--dtype", dtype])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap()).unwrap();
    v["times_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect()
}

fn bench_model(c: &mut Criterion, name: &str, family: &str, model: &dyn TorchEmbedder, dir: &Path) {
    let _guard = tch::no_grad_guard();
    let precision = Precision::of_kind(model.kind()).unwrap_or_default();
    let x = Tensor::randn([BATCH, 3, 224, 224], (Kind::Float, Device::Cpu)).to_kind(model.kind());
    for _ in 0..2 {
        drop(model.embed_tensor(&x).unwrap());
    }
    let mut group = c.benchmark_group("model_forward");
    group.sample_size(10);
    group.bench_function(format!("{name}/rust/batch8_{precision}_cpu"), |b| {
        b.iter(|| model.embed_tensor(&x).unwrap())
    });
    group.finish();
    // Same-run comparison with transformers at the same thread count, in alternating rounds
    // (Rust, Python, Rust, Python) so a change of machine load hits both; medians and minima.
    let threads = tch::get_num_threads();
    let (mut rust, mut py) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        rust.extend((0..ITERS).map(|_| {
            let t0 = Instant::now();
            drop(model.embed_tensor(&x).unwrap());
            t0.elapsed().as_secs_f64()
        }));
        py.extend(python_times(dir, family, threads, precision));
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (rust_min, py_min) = (min(&rust), min(&py));
    let (rust_med, py_med) = (median(rust), median(py));
    println!(
        "{name}: batch {BATCH}, {precision}, CPU, {threads} threads, {} runs each: median rust {:.1} ms, \
         transformers {:.1} ms, ratio transformers/rust {:.3}x; best rust {:.1} ms ({:.1} img/s), \
         transformers {:.1} ms ({:.1} img/s), ratio {:.3}x",
        2 * ITERS,
        rust_med * 1e3,
        py_med * 1e3,
        py_med / rust_med,
        rust_min * 1e3,
        BATCH as f64 / rust_min,
        py_min * 1e3,
        BATCH as f64 / py_min,
        py_min / rust_min
    );
}

fn benches(c: &mut Criterion) {
    let mut precisions = vec![Precision::F32];
    // Emulated half precision is several times slower than f32: not worth timing.
    if Precision::Bf16.native_on_cpu() == Some(true) {
        precisions.push(Precision::Bf16);
    }
    let clip_dir = generate("clip", true).unwrap().join("full_vit_b32");
    let dino_dir = generate("dinov2", true).unwrap().join("full_base");
    for precision in precisions {
        let options = TorchOptions {
            device: Device::Cpu,
            precision,
        };
        let clip = ClipEmbedder::from_dir(&clip_dir, "clip-vit-b32-random", options).unwrap();
        bench_model(c, "clip_vit_b32", "clip", &clip, &clip_dir);
        drop(clip);
        let dino =
            Dinov2Embedder::from_dir(&dino_dir, "dinov2-base-random", Pooling::Mean, options)
                .unwrap();
        bench_model(c, "dinov2_base", "dinov2", &dino, &dino_dir);
    }
}

criterion_group!(model_forward, benches);
criterion_main!(model_forward);
