//! Exact search throughput: batched queries (matrix product + top-k) and single-query latency.
//! Prints a table; `scripts/bench_vecindex.sh` runs it next to faiss-cpu's `IndexFlatIP`.
//!
//! `cargo bench -p image-sim-benches --bench flat_search` (env: `VECINDEX_BENCH_N` = 100000,
//! `VECINDEX_BENCH_NQ` = 1000, `VECINDEX_BENCH_D` = 768, `VECINDEX_BENCH_K` = 10; threads: the
//! rayon pool, `RAYON_NUM_THREADS`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use rand::{Rng, SeedableRng};
use vecindex::{FlatIndex, Metric, VectorIndex};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unit_rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    for row in v.chunks_exact_mut(d) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let (n, nq, d, k) = (
        env("VECINDEX_BENCH_N", 100_000),
        env("VECINDEX_BENCH_NQ", 1000),
        env("VECINDEX_BENCH_D", 768),
        env("VECINDEX_BENCH_K", 10),
    );
    let threads = rayon::current_num_threads();
    let data = unit_rows(n, d, 1);
    let queries = unit_rows(nq, d, 2);
    let ids: Vec<String> = (0..n).map(|i| format!("R{i:06}")).collect();
    println!(
        "vecindex FlatIndex: n = {n}, nq = {nq}, d = {d}, k = {k}, threads = {threads}, kernels {}",
        vecindex::kernels::simd_level()
    );
    println!(
        "| metric | batched {nq} queries (best of 3) | queries/s | GFLOP/s | single query (median of 100) |"
    );
    println!("|---|---|---|---|---|");
    for metric in [Metric::InnerProduct, Metric::L2] {
        let index = FlatIndex::from_vectors(d, metric, &ids, &data).unwrap();
        let _ = index.search(&queries[..8 * d], k).unwrap();
        let mut best = f64::INFINITY;
        let mut checksum = 0.0f64;
        for _ in 0..3 {
            let t = Instant::now();
            let res = index.search(&queries, k).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            checksum += res.iter().map(|r| r[0].score as f64).sum::<f64>();
        }
        let mut lat: Vec<f64> = queries
            .chunks_exact(d)
            .take(100)
            .map(|q| {
                let t = Instant::now();
                let r = index.search_one(q, k).unwrap();
                let e = t.elapsed().as_secs_f64();
                checksum += r[0].score as f64;
                e
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        let gflops = 2.0 * nq as f64 * n as f64 * d as f64 / best / 1e9;
        println!(
            "| {metric} | {best:.3} s | {:.0} | {gflops:.0} | {:.2} ms |",
            nq as f64 / best,
            lat[lat.len() / 2] * 1e3
        );
        eprintln!("(checksum {checksum:.3})");
    }
}
