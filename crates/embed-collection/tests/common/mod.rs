//! Helpers shared by the integration tests: collections of random unit vectors.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use embed_collection::{
    CollectionInfo, CollectionWriter, Dtype, ImageRow, IndexSpec, Manifest, WriteOptions,
};
use rand::{Rng, SeedableRng};

pub fn info(dim: usize, index: IndexSpec, dtype: Dtype) -> CollectionInfo {
    CollectionInfo {
        model_id: "test/random".into(),
        weights_digest: "sha256:abcd".into(),
        preprocessing: serde_json::json!({"resize": 224, "crop": 224}),
        dim,
        metric: vecindex::Metric::InnerProduct,
        dtype,
        index,
        source: None,
        tool: "embed-collection tests".into(),
    }
}

/// Rows `first..first+n` of a list: `dir{i%7}/img {i}.jpg`, id `R{i:06}`.
pub fn rows(first: usize, n: usize) -> Vec<ImageRow> {
    (first..first + n)
        .map(|i| ImageRow {
            image_path: format!("dir{}/img {i}.jpg", i % 7),
            id: format!("R{i:06}"),
            width: 100 + i as u32,
            height: 50 + (i as u32 % 13),
        })
        .collect()
}

/// `n` random vectors (not normalised: the writer normalises), seeded.
pub fn vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

pub fn opts(rows_per_file: usize) -> WriteOptions {
    WriteOptions {
        rows_per_file,
        hnsw_threads: 1,
    }
}

/// Writes a collection of `n` rows (seeded vectors) in batches of 37.
pub fn build(dir: &Path, info: CollectionInfo, n: usize, seed: u64, per_file: usize) -> Manifest {
    let mut w = CollectionWriter::replace(dir, info.clone()).unwrap();
    w.set_options(opts(per_file)).unwrap();
    let (r, v) = (rows(0, n), vectors(n, info.dim, seed));
    for start in (0..n).step_by(37) {
        let end = (start + 37).min(n);
        w.push_batch(&r[start..end], &v[start * info.dim..end * info.dim])
            .unwrap();
    }
    w.finish().unwrap()
}

pub fn normalised(v: &[f32], dim: usize) -> Vec<f32> {
    v.chunks_exact(dim)
        .flat_map(|r| {
            let n = r.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            r.iter().map(move |&x| (f64::from(x) / n) as f32)
        })
        .collect()
}
