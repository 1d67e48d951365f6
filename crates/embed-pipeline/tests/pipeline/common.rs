//! Helpers shared by the pipeline tests: images with bad files among them, a weightless model,
//! and a sequential reference to compare against.

use std::path::{Path, PathBuf};

use embed_core::{DecodeOptions, Embedder, PreprocessSpec};
use embed_pipeline::ExtractOptions;
use embed_pipeline::test_model::GridMeanEmbedder;
use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};

/// Writes `good` small images (PNG and JPEG, varied sizes) and four bad files (a folder, an
/// empty file, text, a truncated PNG) into `dir`; returns the names of the bad ones.
pub fn make_images(dir: &Path, good: usize, seed: u64) -> Vec<String> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for i in 0..good {
        let (w, h) = (rng.gen_range(16..90u32), rng.gen_range(16..90u32));
        let (a, b) = (rng.r#gen::<u8>(), rng.r#gen::<u8>());
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                a.wrapping_add((x * 3) as u8),
                b.wrapping_add((y * 5) as u8),
                (x ^ y) as u8,
            ])
        });
        // PNG bytes, some named `.jpg`: decoding goes by content.
        let ext = if i % 3 == 0 { "jpg" } else { "png" };
        img.save_with_format(
            dir.join(format!("img{i:04}.{ext}")),
            image::ImageFormat::Png,
        )
        .unwrap();
    }
    std::fs::write(dir.join("bad_empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("bad_text.png"), b"this is not an image").unwrap();
    let png = std::fs::read(dir.join("img0001.png")).unwrap();
    std::fs::write(dir.join("bad_truncated.png"), &png[..png.len() / 3]).unwrap();
    std::fs::create_dir(dir.join("bad_dir.jpg")).unwrap();
    vec![
        "bad_dir.jpg".into(),
        "bad_empty.jpg".into(),
        "bad_text.png".into(),
        "bad_truncated.png".into(),
    ]
}

pub fn model() -> GridMeanEmbedder {
    GridMeanEmbedder::new(PreprocessSpec::clip(), 3)
}

/// Each image alone, decoded and preprocessed on this thread.
pub fn reference(
    embedder: &dyn Embedder,
    paths: &[PathBuf],
) -> (Array2<f32>, Vec<PathBuf>, Vec<PathBuf>) {
    let mut rows = Vec::new();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for p in paths {
        let image = embed_core::decode_file(p, &DecodeOptions::default());
        let Ok(image) = image else {
            bad.push(p.clone());
            continue;
        };
        let Ok(x) = embedder.preprocess_spec().preprocess(&image) else {
            bad.push(p.clone());
            continue;
        };
        let x = x.insert_axis(Axis(0));
        rows.push(embedder.embed_batch(x.view()).unwrap().row(0).to_owned());
        good.push(p.clone());
    }
    let views: Vec<_> = rows.iter().map(|r| r.view().insert_axis(Axis(0))).collect();
    (ndarray::concatenate(Axis(0), &views).unwrap(), good, bad)
}

pub fn opts(workers: usize, batch: usize) -> ExtractOptions {
    ExtractOptions {
        workers,
        batch_size: batch,
        normalize: false,
        max_failure_rate: 0.5,
        ..ExtractOptions::default()
    }
}
