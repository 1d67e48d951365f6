//! What a compressed index does to copy detection, scored the way the benchmark scores it.
//!
//! Generates a DISC21-shaped set of unit vectors: `REFS` references around `CLUSTERS` centres
//! (the generator of the HNSW benchmarks), `COPIES` queries that are copies of a reference
//! (the reference plus Gaussian noise of a strength drawn per query, so that some copies are
//! easy and some are lost among the reference's cluster neighbours) and `DISTRACTORS` queries
//! with no copy (new points around the same centres, the queries that make µAP hard). Then
//! searches the same queries with the exact flat index and with each compressed kind, and
//! writes into `OUT`:
//! - `ground_truth.csv` and `refs.npy` (the f32 vectors the re-ranking reads);
//! - `predictions_<kind>.csv`: the top `K` of every query with its score, the file
//!   `disc21-eval metrics --predictions P --ground-truth G` scores (µAP, accuracy, top-k);
//! - and prints a markdown table of how each kind's results differ from the exact ones: top-1
//!   agreement, recall@K against exact, and the shift of the top-1 score (mean, largest), the
//!   number that moves a copy-detection threshold.
//!
//! `scripts/bench_quality.sh` runs it and scores every kind.
//!
//! `cargo run --release -p vecindex --example copy_detection_quality -- OUT`
//! (env: `REFS` 150000, `COPIES` 1500, `DISTRACTORS` 6000, `DIM` 768, `CLUSTERS` 1000,
//! `SIGMA` 0.05 spread per coordinate within a cluster, `NOISE` "0.02,0.12" range of the copies'
//! noise per coordinate, `K` 10, `EFS` "64,256" for HNSW-SQ8, `NPROBES` "16,64" for IVF-PQ,
//! `RERANK` 10 candidates per result for IVF-PQ re-ranking).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use vecindex::ivf::IvfPqIndex;
use vecindex::npy::NpyF32;
use vecindex::rerank::{RerankOptions, Reranked};
use vecindex::sq::{FlatSqIndex, SqKind, SqOptions};
use vecindex::{FlatIndex, Hit, HnswParams, HnswSqIndex, IndexType, Metric, Plan, VectorIndex};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .ok()
                .expect("a comma-separated list of numbers")
        })
        .collect()
}

/// A 2-D little-endian f32 `.npy` (version 1.0), as numpy writes it.
fn write_npy(path: &Path, rows: usize, dim: usize, data: &[f32]) {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    // Magic (6) + version (2) + length (2) + dictionary + newline, padded to 64 bytes.
    let len = (10 + dict.len() + 1).div_ceil(64) * 64 - 10;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(b"\x93NUMPY\x01\x00").unwrap();
    out.write_all(&(len as u16).to_le_bytes()).unwrap();
    out.write_all(format!("{dict:<width$}\n", width = len - 1).as_bytes())
        .unwrap();
    for x in data {
        out.write_all(&x.to_le_bytes()).unwrap();
    }
    out.flush().unwrap();
}

/// The generated set: reference vectors, query vectors, and the reference row each query
/// copies (`None` for a distractor).
struct CopySet {
    dim: usize,
    refs: Vec<f32>,
    queries: Vec<f32>,
    truth: Vec<Option<usize>>,
}

fn generate() -> CopySet {
    let n_refs: usize = env("REFS", 150_000);
    let n_copies: usize = env("COPIES", 1_500).min(n_refs);
    let n_distractors: usize = env("DISTRACTORS", 6_000);
    let dim: usize = env("DIM", 768);
    let clusters: usize = env("CLUSTERS", 1_000);
    let sigma: f32 = env("SIGMA", 0.05);
    let noise: Vec<f32> = env_list("NOISE", "0.02,0.12");
    let (lo, hi) = (noise[0], noise[noise.len() - 1]);
    // References and distractors share the centres: one draw, split.
    let all = common::clustered(n_refs + n_distractors, dim, clusters, sigma, 7);
    let (refs, distractors) = all.split_at(n_refs * dim);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut queries = Vec::with_capacity((n_copies + n_distractors) * dim);
    let mut truth = Vec::with_capacity(n_copies + n_distractors);
    for _ in 0..n_copies {
        let row = rng.gen_range(0..n_refs);
        let strength = rng.gen_range(lo..=hi);
        let v: Vec<f32> = refs[row * dim..(row + 1) * dim]
            .iter()
            .map(|x| x + strength * common::gauss(&mut rng))
            .collect();
        queries.extend(common::normalise(v));
        truth.push(Some(row));
    }
    queries.extend_from_slice(distractors);
    truth.extend(std::iter::repeat_n(None, n_distractors));
    CopySet {
        dim,
        refs: refs.to_vec(),
        queries,
        truth,
    }
}

fn ref_id(row: usize) -> String {
    format!("R{row:06}")
}

fn query_id(q: usize) -> String {
    format!("Q{q:05}")
}

fn write_ground_truth(path: &Path, truth: &[Option<usize>]) {
    let mut s = String::from("query_id,reference_id\n");
    for (q, t) in truth.iter().enumerate() {
        let r = t.map(ref_id).unwrap_or_default();
        writeln!(s, "{},{r}", query_id(q)).unwrap();
    }
    std::fs::write(path, s).unwrap();
}

fn write_predictions(path: &Path, hits: &[Vec<Hit>]) {
    let mut s = String::from("query_id,reference_id,score\n");
    for (q, list) in hits.iter().enumerate() {
        for h in list {
            writeln!(s, "{},{},{}", query_id(q), ref_id(h.row), h.score).unwrap();
        }
    }
    std::fs::write(path, s).unwrap();
}

/// How one kind's results differ from the exact ones.
struct Shift {
    top1_same: f64,
    recall: f64,
    mean_abs: f64,
    max_abs: f64,
    mean_signed: f64,
}

fn shift(exact: &[Vec<Hit>], got: &[Vec<Hit>], k: usize) -> Shift {
    let (mut same, mut found, mut sum_abs, mut sum, mut max_abs) = (0, 0, 0.0f64, 0.0f64, 0.0f64);
    for (e, g) in exact.iter().zip(got) {
        same += usize::from(e[0].row == g[0].row);
        found += e
            .iter()
            .take(k)
            .filter(|h| g.iter().any(|x| x.row == h.row))
            .count();
        let d = f64::from(g[0].score) - f64::from(e[0].score);
        sum += d;
        sum_abs += d.abs();
        max_abs = max_abs.max(d.abs());
    }
    let n = exact.len() as f64;
    Shift {
        top1_same: same as f64 / n,
        recall: found as f64 / (n * k as f64),
        mean_abs: sum_abs / n,
        max_abs,
        mean_signed: sum / n,
    }
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: copy_detection_quality OUT"),
    );
    std::fs::create_dir_all(&out).unwrap();
    let k: usize = env("K", 10);
    let efs: Vec<usize> = env_list("EFS", "64,256");
    let nprobes: Vec<usize> = env_list("NPROBES", "16,64");
    let rerank: usize = env("RERANK", 10);

    let t = Instant::now();
    let set = generate();
    let (dim, n) = (set.dim, set.refs.len() / set.dim);
    let nq = set.truth.len();
    eprintln!(
        "generated {n} references, {nq} queries ({} copies), d {dim} in {:.1} s",
        set.truth.iter().flatten().count(),
        t.elapsed().as_secs_f64()
    );
    let ids: Vec<String> = (0..n).map(ref_id).collect();
    write_ground_truth(&out.join("ground_truth.csv"), &set.truth);
    let npy = out.join("refs.npy");
    write_npy(&npy, n, dim, &set.refs);

    let metric = Metric::InnerProduct;
    let mut rows = Vec::new();
    let mut run = |name: &str, build_s: f64, memory: usize, index: &dyn Fn() -> Vec<Vec<Hit>>| {
        let t = Instant::now();
        let hits = index();
        let search_s = t.elapsed().as_secs_f64();
        write_predictions(&out.join(format!("predictions_{name}.csv")), &hits);
        eprintln!("{name}: built in {build_s:.1} s, searched in {search_s:.2} s");
        rows.push((name.to_string(), build_s, memory, search_s, hits));
    };

    let t = Instant::now();
    let flat = FlatIndex::from_vectors(dim, metric, &ids, &set.refs).unwrap();
    let built = t.elapsed().as_secs_f64();
    run("flat", built, n * dim * 4, &|| {
        flat.search(&set.queries, k).unwrap()
    });

    let t = Instant::now();
    let sq8 = FlatSqIndex::build(
        dim,
        metric,
        SqOptions { kind: SqKind::Sq8 },
        &ids,
        &set.refs,
    )
    .unwrap();
    let built = t.elapsed().as_secs_f64();
    run("sq8", built, n * dim, &|| {
        sq8.search(&set.queries, k).unwrap()
    });

    let t = Instant::now();
    let mut hnsw = HnswSqIndex::build(
        dim,
        metric,
        SqKind::Sq8,
        HnswParams::default(),
        &ids,
        &set.refs,
    )
    .unwrap();
    let built = t.elapsed().as_secs_f64();
    for &ef in &efs {
        hnsw.set_ef_search(ef).unwrap();
        let memory = hnsw.memory_bytes();
        run(&format!("hnsw-sq8-ef{ef}"), built, memory, &|| {
            hnsw.search(&set.queries, k).unwrap()
        });
    }

    // The parameters `image-sim index --kind ivfpq` takes for this size.
    let options = Plan::of(IndexType::IvfPq, n, dim, HnswParams::default()).ivfpq;
    eprintln!("IVF-PQ: nlist {}, m {}", options.nlist, options.m);
    let t = Instant::now();
    let ivf = IvfPqIndex::build(dim, metric, options, &ids, &set.refs).unwrap();
    let built = t.elapsed().as_secs_f64();
    let memory = ivf.memory_bytes();
    let mut reranked = Reranked::new(
        ivf,
        NpyF32::open(&npy).unwrap(),
        RerankOptions { factor: rerank },
    )
    .unwrap();
    for &nprobe in &nprobes {
        reranked.inner_mut().set_nprobe(nprobe);
        run(&format!("ivfpq-np{nprobe}"), built, memory, &|| {
            reranked.inner().search(&set.queries, k).unwrap()
        });
        run(
            &format!("ivfpq-np{nprobe}-rerank{rerank}"),
            built,
            memory,
            &|| reranked.search(&set.queries, k).unwrap(),
        );
    }

    let exact = rows[0].4.clone();
    println!(
        "| kind | build s | memory / f32 | search s | top-1 = exact | recall@{k} vs exact | \
         top-1 score shift: mean abs | largest abs | mean signed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, build_s, memory, search_s, hits) in &rows {
        let s = shift(&exact, hits, k);
        println!(
            "| {name} | {build_s:.1} | {:.3} | {search_s:.2} | {:.4} | {:.4} | {:.2e} | {:.2e} | {:+.2e} |",
            *memory as f64 / (n * dim * 4) as f64,
            s.top1_same,
            s.recall,
            s.mean_abs,
            s.max_abs,
            s.mean_signed,
        );
    }
}
