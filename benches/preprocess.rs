//! Decode + preprocess, one image at a time on one core, against `transformers`' PIL processor
//! on the same files in the same run.
//!
//! `cargo bench --bench preprocess` prints criterion's figures, then a table of milliseconds per
//! image (best of several rounds) for PIL/HF (via `.venv/bin/python`) and for us, with ratios.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use criterion::{Criterion, black_box};
use embed_core::{DecodeOptions, PreprocessSpec, decode_bytes};
use rand::SeedableRng;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python(args: &[&str]) -> String {
    let py = root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/setup.sh",
        py.display()
    );
    let out = Command::new(py)
        .arg(root().join("tests/python/preprocess_bench.py"))
        .args(args)
        .current_dir(root().join("tests/python"))
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn best_ms_per_image(blobs: &[Vec<u8>], rounds: usize, mut f: impl FnMut(&[u8])) -> f64 {
    for b in blobs {
        f(b);
    }
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        for b in blobs {
            f(b);
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    1000.0 * best / blobs.len() as f64
}

/// Best-of-5 ms per image of decoding with `opts` and preprocessing into one reused batch slot.
fn into_slot(blobs: &[Vec<u8>], spec: &PreprocessSpec, opts: &DecodeOptions) -> f64 {
    let mut slot = spec
        .preprocess(&decode_bytes(&blobs[0], opts).unwrap())
        .unwrap();
    best_ms_per_image(blobs, 5, |b| {
        let img = decode_bytes(b, opts).unwrap();
        spec.preprocess_into(&img, slot.view_mut()).unwrap();
        black_box(&slot);
    })
}

/// The default decode options, decoding only what `spec` reads.
fn window(spec: &PreprocessSpec) -> DecodeOptions {
    DecodeOptions {
        window_for: Some(spec.geometry()),
        ..DecodeOptions::default()
    }
}

fn main() {
    let dir = root().join("target/bench-data/preprocess-jpegs");
    if !dir.join("img_031.jpg").exists() {
        python(&["make", dir.to_str().unwrap(), "--count", "32"]);
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let blobs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let opts = DecodeOptions::default();
    let clip = PreprocessSpec::clip();
    let dino = PreprocessSpec::dinov2();

    let mut c = Criterion::default().configure_from_args().sample_size(20);
    let mut g = c.benchmark_group("jpeg_500x400_one_core");
    g.bench_function("decode", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % blobs.len();
            black_box(decode_bytes(&blobs[i], &opts).unwrap())
        })
    });
    for (name, spec) in [("decode+clip", &clip), ("decode+dinov2", &dino)] {
        g.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % blobs.len();
                let img = decode_bytes(&blobs[i], &opts).unwrap();
                black_box(spec.preprocess(&img).unwrap())
            })
        });
    }
    let decoded: Vec<_> = blobs
        .iter()
        .map(|b| decode_bytes(b, &opts).unwrap())
        .collect();
    for (name, spec) in [
        ("preprocess-only+clip", &clip),
        ("preprocess-only+dinov2", &dino),
    ] {
        g.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % decoded.len();
                black_box(spec.preprocess(&decoded[i]).unwrap())
            })
        });
    }
    g.finish();

    // Camera-sized photo-like JPEGs, exact decoding against the opt-in DCT-domain downscale
    // (`--fast-jpeg`): what the fast mode saves where it applies.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let large: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            let img = disc21_eval::generate::photo_like(&mut rng, 2400, 1800);
            let mut buf = std::io::Cursor::new(Vec::new());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90)
                .encode_image(&img)
                .unwrap();
            buf.into_inner()
        })
        .collect();
    let mut g = c.benchmark_group("jpeg_2400x1800_one_core");
    g.sample_size(10);
    for (name, spec) in [("clip", &clip), ("dinov2", &dino)] {
        let fast = DecodeOptions {
            jpeg_dct_downscale_min_side: spec.fast_jpeg_min_side(),
            ..opts
        };
        for (mode, o) in [
            ("exact", opts),
            ("exact_window", window(spec)),
            ("fast_jpeg", fast),
        ] {
            g.bench_function(format!("decode+{name} {mode}"), |b| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % large.len();
                    let img = decode_bytes(&large[i], &o).unwrap();
                    black_box(spec.preprocess(&img).unwrap())
                })
            });
        }
    }
    g.finish();

    // Same files, same run: the Python reference, then us, as best-of-5 ms per image.
    let py: serde_json::Value =
        serde_json::from_str(python(&["time", dir.to_str().unwrap()]).trim()).unwrap();
    let ours = [
        (
            "decode",
            best_ms_per_image(&blobs, 5, |b| {
                drop(black_box(decode_bytes(b, &opts).unwrap()))
            }),
        ),
        (
            "decode_clip",
            best_ms_per_image(&blobs, 5, |b| {
                drop(black_box(
                    clip.preprocess(&decode_bytes(b, &opts).unwrap()).unwrap(),
                ))
            }),
        ),
        (
            "decode_dinov2",
            best_ms_per_image(&blobs, 5, |b| {
                drop(black_box(
                    dino.preprocess(&decode_bytes(b, &opts).unwrap()).unwrap(),
                ))
            }),
        ),
        // The extraction pipeline's path (`embed_paths`, `disc21-eval`): each image is
        // preprocessed into a batch slot that outlives it, so no output array per image.
        ("decode_clip_into", into_slot(&blobs, &clip, &opts)),
        ("decode_dinov2_into", into_slot(&blobs, &dino, &opts)),
        // What the pipeline does since window decoding: libjpeg-turbo decodes only the part
        // the spec reads (same values).
        (
            "decode_clip_window",
            into_slot(&blobs, &clip, &window(&clip)),
        ),
        (
            "decode_dinov2_window",
            into_slot(&blobs, &dino, &window(&dino)),
        ),
    ];
    println!(
        "\nms per 500×400 JPEG, one core, best of 5 rounds over {} files",
        blobs.len()
    );
    println!(
        "{:<28} {:>10} {:>10} {:>8}",
        "step", "python", "rust", "speed-up"
    );
    let keys = [
        "decode_ms",
        "clip_ms",
        "dinov2_ms",
        "clip_ms",
        "dinov2_ms",
        "clip_ms",
        "dinov2_ms",
    ];
    for ((label, ms), key) in ours.iter().zip(keys) {
        let p = py[key].as_f64().unwrap();
        let what = match *label {
            "decode" => "decode (PIL vs turbojpeg)",
            "decode_clip" => "decode + CLIP processor",
            "decode_dinov2" => "decode + DINOv2 processor",
            "decode_clip_into" => "decode + CLIP, batch slot",
            "decode_dinov2_into" => "decode + DINOv2, batch slot",
            "decode_clip_window" => "window + CLIP, batch slot",
            _ => "window + DINOv2, batch slot",
        };
        println!("{what:<28} {p:>10.3} {ms:>10.3} {:>7.2}×", p / ms);
    }
}
