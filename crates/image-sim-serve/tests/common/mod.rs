//! Fixtures: small images, collections of them written with `CollectionWriter` and embedded
//! with the host test model, and a running service on a free loopback port.

#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};
use std::time::Duration;

use embed_collection::{CollectionInfo, CollectionWriter, Dtype, ImageRow, IndexSpec};
use embed_core::{DecodeOptions, Embedder, PreprocessSpec, embed_paths};
use embed_pipeline::test_model::GridMeanEmbedder;
use image_sim_serve::{CollectionSpec, ServeConfig, Server};

/// The two test models: a CLIP-preprocessed 2×2 grid and a DINOv2-preprocessed 3×3 grid.
pub fn model(grid: usize) -> GridMeanEmbedder {
    let spec = if grid == 2 {
        PreprocessSpec::clip()
    } else {
        PreprocessSpec::dinov2()
    };
    GridMeanEmbedder::new(spec, grid)
}

/// A picture with its own colours and layout: quadrants coloured from `i`.
pub fn picture(i: u32, w: u32, h: u32) -> image::RgbImage {
    let c = |k: u32| -> u8 { ((i * 97 + k * 61) % 251) as u8 };
    image::RgbImage::from_fn(w, h, |x, y| {
        let q = u32::from(x >= w / 2) + 2 * u32::from(y >= h / 2);
        image::Rgb([c(q), c(q + 4), c(q + 8)])
    })
}

/// Writes `n` reference images `R000000.png`... under `root/refs/`, and the query
/// `Q00000.jpg` (a JPEG copy of reference 3) under `root/queries/`. Returns the reference paths.
pub fn images(root: &Path, n: u32) -> Vec<PathBuf> {
    let refs = root.join("refs");
    std::fs::create_dir_all(&refs).unwrap();
    let paths: Vec<PathBuf> = (0..n)
        .map(|i| {
            let p = refs.join(format!("R{i:06}.png"));
            picture(i, 64 + i % 5 * 8, 48 + i % 3 * 8).save(&p).unwrap();
            p
        })
        .collect();
    let q = root.join("queries");
    std::fs::create_dir_all(&q).unwrap();
    picture(3, 80, 60).save(q.join("Q00000.jpg")).unwrap();
    paths
}

/// A collection of `paths` (image paths relative to `root`) embedded with `model(grid)`.
pub fn collection(dir: &Path, root: &Path, paths: &[PathBuf], grid: usize, index: IndexSpec) {
    let m = model(grid);
    let mut v = embed_paths(&m, paths, 8, &DecodeOptions::default()).unwrap();
    embed_core::l2_normalize_rows(&mut v);
    let info = CollectionInfo {
        model_id: m.model_id().to_string(),
        weights_digest: "sha256:00".into(),
        preprocessing: serde_json::json!("test"),
        dim: m.dim(),
        metric: vecindex::Metric::InnerProduct,
        dtype: Dtype::F32,
        index,
        source: None,
        tool: "image-sim-serve tests".into(),
    };
    let rows: Vec<ImageRow> = paths
        .iter()
        .map(|p| {
            let img = image::open(p).unwrap();
            ImageRow {
                image_path: p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                id: p.file_stem().unwrap().to_string_lossy().into_owned(),
                width: img.width(),
                height: img.height(),
            }
        })
        .collect();
    let mut w = CollectionWriter::create(dir, info).unwrap();
    w.push_batch(&rows, v.as_slice().unwrap()).unwrap();
    w.finish().unwrap();
}

/// A spec serving `dir` with `model(grid)` (optionally slowed down per batch).
pub fn spec(dir: &Path, root: Option<&Path>, grid: usize, delay: Duration) -> CollectionSpec {
    let s = CollectionSpec::new(
        dir,
        Box::new(move || Ok(Box::new(model(grid).with_delay(delay)) as _)),
    )
    .unwrap();
    match root {
        Some(r) => s.with_image_root(r),
        None => s,
    }
}

/// The test configuration: a free loopback port, no signal handling.
pub fn config() -> ServeConfig {
    ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        handle_signals: false,
        ..ServeConfig::default()
    }
}

/// A temp folder with 12 images and two collections of them, `clip` (2×2 grid, flat) and
/// `dino` (3×3 grid, HNSW).
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub paths: Vec<PathBuf>,
    pub clip: PathBuf,
    pub dino: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("images");
        let paths = images(&root, 12);
        let clip = tmp.path().join("clip");
        let dino = tmp.path().join("dino");
        collection(&clip, &root, &paths, 2, IndexSpec::Flat);
        collection(&dino, &root, &paths, 3, IndexSpec::hnsw_default());
        Self {
            tmp,
            root,
            paths,
            clip,
            dino,
        }
    }

    /// Both collections with their images, no delay.
    pub fn specs(&self) -> Vec<CollectionSpec> {
        vec![
            spec(&self.clip, Some(&self.root), 2, Duration::ZERO),
            spec(&self.dino, Some(&self.root), 3, Duration::ZERO),
        ]
    }

    pub fn start(&self, config: ServeConfig) -> Server {
        Server::start(config, self.specs()).unwrap()
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
