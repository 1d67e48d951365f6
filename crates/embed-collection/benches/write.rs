//! The cost of writing a collection: 10,000 × 768 rows pushed in batches of 256, then
//! `finish` (npy shards, Parquet metadata, the flat FAISS index, checksums, the fsyncs and the
//! commit), in float32 and float16; and of opening it again with full verification.
//! `cargo bench -p embed-collection --bench write`
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use embed_collection::{
    Collection, CollectionInfo, CollectionWriter, Dtype, ImageRow, IndexSpec, WriteOptions,
};
use rand::{Rng, SeedableRng};

const ROWS: usize = 10_000;
const DIM: usize = 768;

fn info(dtype: Dtype) -> CollectionInfo {
    CollectionInfo {
        model_id: "bench".into(),
        weights_digest: "sha256:00".into(),
        preprocessing: "clip".into(),
        dim: DIM,
        metric: vecindex::Metric::InnerProduct,
        dtype,
        index: IndexSpec::Flat,
        source: None,
        tool: "bench".into(),
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let vectors: Vec<f32> = (0..ROWS * DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let rows: Vec<ImageRow> = (0..ROWS)
        .map(|i| ImageRow {
            image_path: format!("images/part{:03}/R{i:06}.jpg", i % 100),
            id: format!("R{i:06}"),
            width: 640,
            height: 480,
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("collection_write_10000x768");
    g.sample_size(10);
    for dtype in [Dtype::F32, Dtype::F16] {
        let dir = tmp.path().join(dtype.to_string());
        g.bench_function(format!("{dtype}"), |b| {
            b.iter(|| {
                let mut w = CollectionWriter::replace(&dir, info(dtype)).unwrap();
                w.set_options(WriteOptions {
                    rows_per_file: 4096,
                    hnsw_threads: 1,
                })
                .unwrap();
                for start in (0..ROWS).step_by(256) {
                    let end = (start + 256).min(ROWS);
                    w.push_batch(&rows[start..end], &vectors[start * DIM..end * DIM])
                        .unwrap();
                }
                w.finish().unwrap()
            })
        });
        g.bench_function(format!("open_{dtype}"), |b| {
            b.iter(|| Collection::open(&dir).unwrap().len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
